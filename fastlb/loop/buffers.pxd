# The buffer pool: a side holds a buffer only while bytes wait in it, so an idle
# connection costs no buffer.  Implemented in buffers.pxi.

from libc.stdint cimport uint32_t, uint64_t, int64_t

cdef struct BufPool:
    char **free_bufs        # buffers given back, ready for reuse
    int len
    int cap
    uint32_t size           # tune.bufsize: every buffer has this size
    int64_t limit           # tune.buffers.limit: buffers all workers may hold, 0: no limit
    uint64_t *total         # shared memory: the buffers all workers have allocated (atomic)
    uint64_t *share         # ... and this worker's share of them (its slot)
    uint64_t *used          # this worker's buffers in use, and its allocations that
    uint64_t *failed        # failed (the limit reached, or no memory): show pools

cdef char *pool_get(BufPool *pool) noexcept nogil
cdef void pool_put(BufPool *pool, char *buf) noexcept nogil
cdef bint pool_available(BufPool *pool) noexcept nogil
cdef void pool_free(BufPool *pool) noexcept nogil
