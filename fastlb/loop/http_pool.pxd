# Idle server connections: the pool and lending (http-reuse).
# Included by core.pxd; implemented in http_pool.pxi.

cdef bint http_park_server(Worker w, Session *s)
cdef bint http_take_idle(Worker w, int idx, Session *s, int srv)
cdef bint http_adopt(Worker w, int idx, Session *s, int srv, int fd)
cdef void http_lend(Worker w, int idx, Session *s)
cdef void http_unlend(Worker w, Session *s)
cdef bint http_take_lent(Worker w, int idx, Session *s, int srv)
cdef void purge_idle(Worker w)
cdef void idle_event(Worker w, uint32_t k, int fd, uint32_t events)
cdef void http_drop_server(Worker w, Session *s)
cdef void http_close_server_side(Worker w, Session *s)
