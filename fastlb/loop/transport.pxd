# Byte I/O of one connection side (see transport.pxi for the design).
# Included by core.pxd; implemented in transport.pxi.

cdef void side_close(Worker w, Side *side)
cdef int side_open_pipe(Worker w, Side *side)
cdef int64_t buffered(Side *side)
cdef int side_read(Worker w, Side *side)
cdef void side_consume(Worker w, Side *side, int64_t n)
cdef int64_t side_send(Worker w, Side *dst, const char *data, int64_t n)
