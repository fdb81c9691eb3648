# balance first (HAProxy's lb_fas): fill servers one after the other, by numeric id.

from libc.stdint cimport uint32_t, uint64_t, int64_t
from fastlb.includes.system cimport fl_atomic_load


cdef inline int first_pick(const int *eligible, int n, const uint32_t *shm_index,
                           const int64_t *maxconn, uint64_t *cur, int avoid) noexcept nogil:
    """balance first: the lowest id that still has room (``avoid``, a server that just
    failed, only when no other has)."""
    cdef int i, server
    cdef bint avoid_ok = False
    for i in range(n):
        server = eligible[i]
        if not maxconn[server] or <int64_t>fl_atomic_load(cur + shm_index[server]) < maxconn[server]:
            if server != avoid:
                return server
            avoid_ok = True
    return avoid if avoid_ok else -1
