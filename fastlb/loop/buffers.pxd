# The buffer pool: a side holds a buffer only while bytes wait in it, so an idle
# connection costs no buffer.  Implemented in buffers.pxi.

from libc.stdint cimport uint32_t

cdef struct BufPool:
    char **free_bufs        # buffers given back, ready for reuse
    int len
    int cap
    uint32_t size           # tune.bufsize: every buffer has this size

cdef char *pool_get(BufPool *pool) noexcept nogil
cdef void pool_put(BufPool *pool, char *buf) noexcept nogil
cdef void pool_free(BufPool *pool) noexcept nogil
