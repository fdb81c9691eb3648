"""The process maxconn a configuration implies, below every layer that shows or enforces
it: the workers enforce it together, the statistics show it."""
from __future__ import annotations

import resource


def backend_fullconn(config, proxy, maxconn: int) -> int:
    """``fullconn``, else HAProxy's default: a tenth of the maxconn of the frontends that
    may use the backend (at least 1).  ``maxconn``: the process's (a frontend's default)."""
    if proxy.fullconn:
        return proxy.fullconn
    total = 0
    for fe in config.frontends:
        names = {name for name, _, _ in fe.switching_rules}
        if fe is proxy or fe.default_backend == proxy.name or proxy.name in names:
            total += fe.maxconn or maxconn
    return (total + 9) // 10 if total else 1


def default_maxconn(config) -> int:
    """The process maxconn: ``global maxconn``, else HAProxy's figure from the descriptor
    limit (half the descriptors, less a margin)."""
    if config.global_.maxconn:
        return config.global_.maxconn
    soft = config.global_.ulimit_n or resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return max(1, (soft - 30) // 2)
