# The buffer pool.  Interface: buffers.pxd.

cdef char *pool_get(BufPool *pool) noexcept nogil:
    """A buffer of pool.size bytes, or NULL when memory is exhausted."""
    if pool.len > 0:
        pool.len -= 1
        return pool.free_bufs[pool.len]
    return <char *>malloc(pool.size)


cdef void pool_put(BufPool *pool, char *buf) noexcept nogil:
    cdef char **grown
    if buf == NULL:
        return
    if pool.len == pool.cap:
        if pool.cap >= 4096:
            free(buf)
            return
        grown = <char **>realloc(pool.free_bufs, (pool.cap * 2 if pool.cap else 64) * sizeof(char *))
        if grown == NULL:
            free(buf)
            return
        pool.free_bufs = grown
        pool.cap = pool.cap * 2 if pool.cap else 64
    pool.free_bufs[pool.len] = buf
    pool.len += 1


cdef void pool_free(BufPool *pool) noexcept nogil:
    cdef int i
    for i in range(pool.len):
        free(pool.free_bufs[i])
    free(pool.free_bufs)
    pool.free_bufs = NULL
    pool.len = pool.cap = 0
