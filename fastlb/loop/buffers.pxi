# The buffer pool.  Interface: buffers.pxd.
#
# Each worker caches the buffers it is given back, so that the common path allocates
# nothing.  Under tune.buffers.limit the limit is one for all workers (HAProxy's is per
# process, and fastlb's workers play its threads): the count of allocated buffers lives
# in shared memory, and a limited pool caches nothing, so that a buffer one worker gives
# back can be had by another.  A session that finds no buffer waits (Side.buf_wait, the
# worker's bufwait list) until one is given back, as HAProxy's buffer wait queue.

cdef char *pool_get(BufPool *pool) noexcept nogil:
    """A buffer of pool.size bytes, or NULL when the limit is reached or memory exhausted."""
    cdef char *buf
    cdef int64_t allocated
    if pool.len > 0:
        pool.len -= 1
        pool.used[0] += 1
        return pool.free_bufs[pool.len]
    allocated = <int64_t>fl_atomic_fetch_add(pool.total, 1)
    if pool.limit and allocated >= pool.limit:
        fl_atomic_fetch_sub(pool.total, 1)
        pool.failed[0] += 1
        return NULL
    buf = <char *>malloc(pool.size)
    if buf == NULL:
        fl_atomic_fetch_sub(pool.total, 1)
        pool.failed[0] += 1
        return NULL
    pool.share[0] += 1
    pool.used[0] += 1
    return buf


cdef inline void pool_release(BufPool *pool, char *buf) noexcept nogil:
    free(buf)
    fl_atomic_fetch_sub(pool.total, 1)
    pool.share[0] -= 1


cdef void pool_put(BufPool *pool, char *buf) noexcept nogil:
    cdef char **grown
    if buf == NULL:
        return
    pool.used[0] -= 1
    if pool.limit:
        pool_release(pool, buf)         # for whichever worker needs one next
        return
    if pool.len == pool.cap:
        if pool.cap >= 4096:
            pool_release(pool, buf)
            return
        grown = <char **>realloc(pool.free_bufs, (pool.cap * 2 if pool.cap else 64) * sizeof(char *))
        if grown == NULL:
            pool_release(pool, buf)
            return
        pool.free_bufs = grown
        pool.cap = pool.cap * 2 if pool.cap else 64
    pool.free_bufs[pool.len] = buf
    pool.len += 1


cdef bint pool_available(BufPool *pool) noexcept nogil:
    """Whether pool_get would find a buffer under the limit now."""
    return pool.len > 0 or pool.limit == 0 or <int64_t>fl_atomic_load(pool.total) < pool.limit


cdef void pool_free(BufPool *pool) noexcept nogil:
    cdef int i
    for i in range(pool.len):
        pool_release(pool, pool.free_bufs[i])
    free(pool.free_bufs)
    pool.free_bufs = NULL
    pool.len = pool.cap = 0
