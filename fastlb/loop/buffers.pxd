# The buffer pool: a side holds a buffer only while bytes wait in it.
# Included by core.pxd; implemented in buffers.pxi.

cdef char *buf_get(Worker w)
cdef void buf_put(Worker w, char *buf)
