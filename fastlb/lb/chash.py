"""Consistent hashing (HAProxy's lb_chash): each server owns points on a 32-bit ring.

A server of user weight ``w`` gets ``w x 16`` points (HAProxy's weight scale); point
``n`` of the server with numeric id ``id`` sits at ``full_hash(id x 4096 + n)``.  A
key picks the server owning the point nearest its hash (the lower one on a tie),
so adding or removing a server only moves the keys next to its points.
"""
from __future__ import annotations

WEIGHT_SCALE = 16
EWEIGHT_RANGE = 256 * WEIGHT_SCALE
MASK = 0xFFFFFFFF


def full_hash(a: int) -> int:
    """Bob Jenkins' 32-bit integer avalanche, then a multiply by a prime near 3/4 of 2^32
    to spread the points around the ring (the same function the Cython lookup uses)."""
    a = ((a + 0x7ED55D16) + (a << 12)) & MASK
    a = ((a ^ 0xC761C23C) ^ (a >> 19)) & MASK
    a = ((a + 0x165667B1) + (a << 5)) & MASK
    a = ((a + 0xD3A2646C) ^ (a << 9)) & MASK
    a = ((a + 0xFD7046C5) + (a << 3)) & MASK
    a = ((a ^ 0xB55A4F09) ^ (a >> 16)) & MASK
    return (a * 3221225473) & MASK


def ring(servers: dict[int, tuple[int, int]]) -> tuple[list[int], list[int]]:
    """(sorted point keys, owning server index per point) for ``servers``:
    index -> (numeric server id, user weight)."""
    points = []
    for index, (server_id, weight) in servers.items():
        for n in range(weight * WEIGHT_SCALE):
            points.append((full_hash((server_id * EWEIGHT_RANGE + n) & MASK), index))
    points.sort(key=lambda point: point[0])     # stable: equal keys keep insertion order
    return [key for key, _ in points], [index for _, index in points]
