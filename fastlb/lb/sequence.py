"""Build the smooth weighted round-robin sequence a backend's workers walk."""
from __future__ import annotations

from functools import reduce
from math import gcd


def smooth_weighted_sequence(weights: dict[int, int]) -> list[int]:
    """Order in which servers are picked over one full cycle.

    ``weights`` maps a server index to its weight (0 = never picked).  Weights are
    divided by their GCD, then the smooth algorithm spreads each server's picks
    evenly: equal weights give 0, 1, 2, ... in declaration order, 3:1 gives
    0, 0, 1, 0 rather than 0, 0, 0, 1.
    """
    active = {index: weight for index, weight in weights.items() if weight > 0}
    if not active:
        return []
    divisor = reduce(gcd, active.values())
    active = {index: weight // divisor for index, weight in active.items()}
    total = sum(active.values())
    current = {index: 0 for index in active}
    sequence = []
    for _ in range(total):
        for index, weight in active.items():
            current[index] += weight
        chosen = max(active, key=lambda index: (current[index], -index))
        current[chosen] -= total
        sequence.append(chosen)
    return sequence
