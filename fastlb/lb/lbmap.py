"""Map-based lookup (HAProxy's lb_map): one slot per unit of weight.

Used by ``static-rr`` (walk the slots in order) and by ``hash-type map-based``
(``slots[hash % len(slots)]``).  Weights are first divided by their greatest
common divisor, as HAProxy does, so the table is as short as the ratios allow.
The slots are filled by a weighted "score" walk that favours the first declared
server on ties: with equal weights the table is the servers in declaration
order, and the same weights always give the same table as HAProxy's, so a hash
picks the same server.
"""
from __future__ import annotations

from math import gcd


def effective_weights(weights: dict[int, int]) -> dict[int, int]:
    """User weights divided by their GCD (servers with weight 0 dropped)."""
    used = {index: w for index, w in weights.items() if w > 0}
    divisor = 0
    for w in used.values():
        divisor = gcd(divisor, w)
    return {index: w // divisor for index, w in used.items()} if divisor else {}


def map_table(weights: dict[int, int]) -> list[int]:
    """Server index per slot for ``weights`` (index -> user weight, declaration order)."""
    eweights = effective_weights(weights)
    total = sum(eweights.values())
    if total == 1:
        return list(eweights)
    order = sorted(eweights)
    score = dict.fromkeys(order, 0)
    slots: list[int] = []
    for _ in range(total):
        best, best_value = -1, 0
        for index in order:
            score[index] += eweights[index]
            value = (score[index] + total) // total
            if best < 0 or value > best_value:
                best, best_value = index, value
        slots.append(best)
        score[best] -= total
    return slots
