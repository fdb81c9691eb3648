"""The order in which a weighted round-robin backend picks its servers.

fastlb's workers share one atomic position per backend and walk a precomputed
order (see ``roundrobin.pxd``).  The order is produced by replaying HAProxy's
"fast weighted round robin" (lb_fwrr) for static weights, so a request stream
meets the servers in the same order as with HAProxy:

- each server's effective weight is its weight x 16;
- a server runs in a "current" window ordered by its next position (ties: the
  lighter remainder first), and enters from an "init" list ordered heaviest
  first (ties: declaration order) whenever the window has a hole;
- a server whose next position falls past the window moves to the "next" list,
  which becomes the "init" list when the window is exhausted.

The replay stops as soon as the state at a window switch repeats: the picks
before the first occurrence of that state form a ``prefix`` (walked once), the
picks between the two occurrences a ``cycle`` (walked forever).
"""
from __future__ import annotations

from dataclasses import dataclass, field

WEIGHT_SCALE = 16              # HAProxy's BE_WEIGHT_SCALE
USER_WEIGHT_RANGE = 256
EFFECTIVE_WEIGHT_MAX = USER_WEIGHT_RANGE * WEIGHT_SCALE
MAX_REPLAY = 1 << 20


@dataclass
class _Server:
    index: int
    eweight: int
    npos: int = 0
    rweight: int = 0
    key: int = 0


@dataclass
class _Replay:
    """HAProxy's per-group state: three ordered lists and the window bounds."""
    total: int
    init: list = field(default_factory=list)
    next: list = field(default_factory=list)
    curr: list = field(default_factory=list)
    curr_pos: int = 0
    curr_weight: int = 0
    serial: int = 0            # insertion counter: equal keys keep their insertion order

    def _insert(self, tree: list, server: _Server, key: int) -> None:
        server.key = key
        self.serial += 1
        tree.append((key, self.serial, server))
        tree.sort(key=lambda item: (item[0], item[1]))

    def queue_by_weight(self, tree: list, server: _Server) -> None:
        self._insert(tree, server, EFFECTIVE_WEIGHT_MAX - server.eweight)

    def queue(self, server: _Server) -> None:
        if server.npos >= 2 * self.curr_weight or server.npos >= self.curr_weight + self.total:
            server.npos -= self.curr_weight
            self.queue_by_weight(self.next, server)
        else:
            key = USER_WEIGHT_RANGE * server.npos + \
                (EFFECTIVE_WEIGHT_MAX + server.rweight - server.eweight) // WEIGHT_SCALE
            self._insert(self.curr, server, key)

    def _take(self) -> _Server | None:
        if self.curr and self.curr[0][2].npos <= self.curr_pos:
            return self.curr.pop(0)[2]
        if self.init:
            server = self.init.pop(0)[2]
            server.npos = server.rweight = 0
            return server
        if self.curr:
            return None if self.curr[0][2].npos > self.curr_pos else self.curr.pop(0)[2]
        return None

    def advance(self, server: _Server) -> None:
        start = self.curr_pos if server.npos == 0 else server.npos
        server.npos = start + self.total // server.eweight
        server.rweight += self.total % server.eweight
        if server.rweight >= server.eweight:
            server.rweight -= server.eweight
            server.npos += 1

    def switch(self) -> None:
        self.init, self.next = self.next, self.init
        self.curr_weight = self.total
        self.curr_pos = self.curr_weight

    def state(self) -> tuple:
        return (tuple(s.index for _, _, s in self.init),
                tuple((s.index, s.npos - self.curr_pos, s.rweight) for _, _, s in self.curr),
                tuple((s.index, s.npos, s.rweight) for _, _, s in self.next))


def roundrobin_order(weights: dict[int, int]) -> tuple[list[int], list[int]]:
    """(prefix, cycle) of server indexes for ``weights`` (index -> weight, 0 = unused)."""
    servers = [_Server(index, weight * WEIGHT_SCALE)
               for index, weight in sorted(weights.items()) if weight > 0]
    if not servers:
        return [], []
    replay = _Replay(total=sum(s.eweight for s in servers))
    replay.curr_pos = replay.curr_weight = replay.total
    for server in servers:
        replay.queue_by_weight(replay.init, server)
    picks: list[int] = []
    seen: dict[tuple, int] = {}
    while len(picks) < MAX_REPLAY:
        server = replay._take()
        if server is None:
            replay.switch()
            state = replay.state()
            if state in seen:
                start = seen[state]
                return _simplify(picks[:start], picks[start:])
            seen[state] = len(picks)
            server = replay._take()
            if server is None:
                break
        replay.advance(server)
        replay.curr_pos += 1
        replay.queue(server)
        picks.append(server.index)
    return [], picks


def _shortest_period(cycle: list[int]) -> list[int]:
    for period in range(1, len(cycle) + 1):
        if len(cycle) % period == 0 and cycle == cycle[:period] * (len(cycle) // period):
            return cycle[:period]
    return cycle


def _simplify(prefix: list[int], cycle: list[int]) -> tuple[list[int], list[int]]:
    """Drop a prefix that is whole turns of the cycle, and repeats inside the cycle."""
    cycle = _shortest_period(cycle)
    while prefix and len(prefix) >= len(cycle) and prefix[-len(cycle):] == cycle:
        prefix = prefix[:-len(cycle)]
    return prefix, cycle
