# Weighted round robin shared by all workers: one atomic position per backend walks a
# precomputed smooth sequence (built by fastlb.lb.sequence), so N workers together
# follow the same order one HAProxy process would.

from libc.stdint cimport uint64_t
from fastlb.includes.system cimport fl_atomic_fetch_add


cdef inline int rr_pick(uint64_t *position, int *sequence, int length) nogil:
    cdef uint64_t p = fl_atomic_fetch_add(position, 1)
    return sequence[p % <uint64_t>length]
