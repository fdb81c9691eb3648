"""The process maxconn a configuration implies, below every layer that shows or enforces
it: the workers enforce it together, the statistics show it."""
from __future__ import annotations

import resource


def default_maxconn(config) -> int:
    """The process maxconn: ``global maxconn``, else HAProxy's figure from the descriptor
    limit (half the descriptors, less a margin)."""
    if config.global_.maxconn:
        return config.global_.maxconn
    soft = config.global_.ulimit_n or resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return max(1, (soft - 30) // 2)
