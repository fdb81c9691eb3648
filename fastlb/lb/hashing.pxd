# Hash-based picks (HAProxy's lb_map lookup and lb_chash): the key hash, then the slot
# (map-based) or the nearest ring point (consistent).

from libc.stdint cimport uint8_t, uint32_t


cdef inline uint32_t sdbm(const uint8_t *key, Py_ssize_t n) noexcept nogil:
    """SDBM on bytes in 32-bit unsigned arithmetic, HAProxy's default hash function."""
    cdef uint32_t h = 0
    cdef Py_ssize_t i
    for i in range(n):
        h = key[i] + (h << 6) + (h << 16) - h
    return h


cdef inline uint32_t full_hash(uint32_t a) noexcept nogil:
    """Bob Jenkins' 32-bit integer avalanche (hash-type ... avalanche, ring points)."""
    a = (a + 0x7ed55d16u) + (a << 12)
    a = (a ^ 0xc761c23cu) ^ (a >> 19)
    a = (a + 0x165667b1u) + (a << 5)
    a = (a + 0xd3a2646cu) ^ (a << 9)
    a = (a + 0xfd7046c5u) + (a << 3)
    a = (a ^ 0xb55a4f09u) ^ (a >> 16)
    return a * 3221225473u


cdef inline uint32_t address_hash(const uint8_t *addr, int n) noexcept nogil:
    """balance source: the address's 32-bit big-endian words XORed together."""
    cdef uint32_t h = 0
    cdef int i
    for i in range(0, n - 3, 4):
        h ^= (<uint32_t>addr[i] << 24) | (<uint32_t>addr[i + 1] << 16) | \
             (<uint32_t>addr[i + 2] << 8) | <uint32_t>addr[i + 3]
    return h


cdef inline int map_lookup(const int *slots, int nslots, uint32_t h) noexcept nogil:
    if nslots <= 0:
        return -1
    return slots[h % <uint32_t>nslots]


cdef inline int ring_point(const uint32_t *keys, int n, uint32_t h) noexcept nogil:
    """The index of the ring point nearest ``h`` (the lower one on a tie), -1: none."""
    cdef int lo = 0, hi = n, mid, next_i, prev_i
    if n <= 0:
        return -1
    while lo < hi:                  # first point >= h
        mid = (lo + hi) >> 1
        if keys[mid] < h:
            lo = mid + 1
        else:
            hi = mid
    next_i = lo if lo < n else 0
    prev_i = next_i - 1 if next_i > 0 else n - 1
    if <uint32_t>(h - keys[prev_i]) <= <uint32_t>(keys[next_i] - h):
        return prev_i
    return next_i


cdef inline int ring_lookup(const uint32_t *keys, const int *servers, int n,
                            uint32_t h) noexcept nogil:
    """The server owning the ring point nearest ``h`` (the lower one on a tie)."""
    cdef int point = ring_point(keys, n, h)
    return servers[point] if point >= 0 else -1
