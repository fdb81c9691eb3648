# Weighted round robin shared by all workers: one atomic position per backend walks a
# precomputed order (fastlb.lb.sequence replays HAProxy's lb_fwrr), so N workers
# together follow the order one HAProxy process would.

from libc.stdint cimport uint64_t
from fastlb.includes.system cimport fl_atomic_fetch_add


cdef inline int rr_pick(uint64_t *position, int *sequence, int prefix, int length) noexcept nogil:
    """sequence[:prefix] is walked once, sequence[prefix:length] forever after."""
    cdef uint64_t p = fl_atomic_fetch_add(position, 1)
    if p < <uint64_t>prefix:
        return sequence[p]
    return sequence[prefix + (p - prefix) % <uint64_t>(length - prefix)]
