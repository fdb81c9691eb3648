"""Which servers a backend picks from right now, as the arrays the worker loop walks.

A worker rebuilds these for a backend whenever the backend's table version in shared
memory moves (a server went up or down, into or out of maintenance, or changed weight).
The result depends only on the shared state, so every worker builds the same tables.

As in HAProxy, the active servers that are usable form the group; when none is, the
backup servers do: all of them with ``option allbackups``, else only the first one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .chash import WEIGHT_SCALE, ring
from .lbmap import map_table
from .algorithms import Algorithm
from .sequence import roundrobin_order
from .strategy import TABLE_ELIGIBLE, TABLE_ROUNDROBIN

@dataclass
class ServerView:
    index: int          # position in the backend
    id: int             # numeric id (consistent hashing points, "first" order)
    weight: int         # current user weight
    backup: bool
    usable: bool


@dataclass
class Lookup:
    sequence: list = field(default_factory=list)   # walked in order (prefix once, then cycle)
    prefix: int = 0
    ring_keys: list = field(default_factory=list)  # consistent hashing / random
    ring_servers: list = field(default_factory=list)
    eligible: list = field(default_factory=list)   # leastconn / first: candidates, id order
    weights: list = field(default_factory=list)    # their user weights
    active: int = 0                                # usable active servers (redispatch choice)
    # hash-balance-factor: per server index, its weight in the group (x 16, HAProxy's
    # effective weight; 0 outside it) and the weights of the members before it
    group_weights: list = field(default_factory=list)
    cumulative: list = field(default_factory=list)


def group(servers: list[ServerView], allbackups: bool) -> list[ServerView]:
    chosen = [s for s in servers if s.usable and not s.backup and s.weight > 0]
    if chosen:
        return chosen
    backups = [s for s in servers if s.usable and s.backup and s.weight > 0]
    return backups if allbackups else backups[:1]


def build_lookup(algorithm: Algorithm, consistent: bool, servers: list[ServerView],
                 allbackups: bool) -> Lookup:
    members = group(servers, allbackups)
    weights = {s.index: s.weight for s in members}
    lookup = Lookup(active=sum(1 for s in servers if s.usable and not s.backup and s.weight))
    if algorithm.table == TABLE_ROUNDROBIN:
        prefix, cycle = roundrobin_order(weights)
        lookup.sequence, lookup.prefix = prefix + cycle, len(prefix)
    elif algorithm.table == TABLE_ELIGIBLE:
        ordered = sorted(members, key=lambda s: s.id)
        lookup.eligible = [s.index for s in ordered]
        lookup.weights = [s.weight for s in ordered]
    else:
        lookup.sequence = map_table(weights)
    if consistent and algorithm.hashed:
        lookup.ring_keys, lookup.ring_servers = ring({s.index: (s.id, s.weight) for s in members})
    lookup.group_weights = [0] * len(servers)
    lookup.cumulative = [0] * len(servers)
    total = 0
    for s in members:                       # in declaration order, as HAProxy counts them
        lookup.cumulative[s.index] = total
        lookup.group_weights[s.index] = s.weight * WEIGHT_SCALE
        total += s.weight * WEIGHT_SCALE
    return lookup
