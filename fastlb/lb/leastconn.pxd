# leastconn (HAProxy's lb_fwlc): the usable server with the fewest current sessions plus
# queued requests per unit of weight, counted across all workers in shared memory.
# Candidates are scanned from a rotating start so that equally loaded servers take
# turns, as HAProxy's tree does when it re-queues a server behind its equals.

from libc.stdint cimport uint32_t, uint64_t, int64_t
from fastlb.includes.system cimport fl_atomic_load


cdef inline int leastconn_pick(const int *eligible, const int *weights, int n,
                               const uint32_t *shm_index, const int64_t *maxconn,
                               uint64_t *cur, uint64_t *queue, uint32_t start,
                               int avoid) noexcept nogil:
    """``avoid`` (a server that just failed, or -1) is chosen only when no other can be."""
    cdef int i, k, server, best = -1
    cdef bint avoid_ok = False
    cdef int64_t load, best_load = 0, used
    for k in range(n):
        i = <int>((start + <uint32_t>k) % <uint32_t>n)
        server = eligible[i]
        used = <int64_t>fl_atomic_load(cur + shm_index[server])
        if maxconn[server] and used >= maxconn[server]:
            continue                # full: its requests would only queue
        if server == avoid:
            avoid_ok = True
            continue
        load = (used + <int64_t>fl_atomic_load(queue + shm_index[server])) * 4096 // weights[i]
        if best < 0 or load < best_load:
            best, best_load = server, load
    return best if best >= 0 or not avoid_ok else avoid

