"""State shared by the master, the health checker and all workers (one MAP_SHARED mapping,
created by the master for each configuration generation).

Layout, in 64-bit words:

    backends   BE_WORDS per backend:  round-robin position, table version, queue ticket
    servers    SRV_WORDS per server:  state bits, user weight, health counter, check status,
                                      check code, check duration, last change, queue ticket,
                                      consecutive errors seen by traffic (observe), what to
                                      observe (0 none, 4 layer4, 7 layer7)
    totals     COUNT words:           actconn, frontend cur[nfe], server cur[nsrv] (when
                                      a maxconn, leastconn or random needs it shared),
                                      backend queue[nbe], server queue[nsrv]
    slots      per worker: the COUNT fields (that worker's share of the totals), then its
               own backend cur[nbe] and server cur[nsrv] (for logs and statistics; summed
               over the slots when read)
    heads      per worker, one word per queue (backends, then servers): the ticket of the
               oldest request that worker has waiting there (NO_TICKET: none)

Who writes what:
- server state, weight, health and check words: the checker (and later the CLI), never a
  worker; each change bumps the backend's table version, and every worker rebuilds its
  lookup tables for that backend when it sees a new version at its next pick;
- totals: workers, with atomic add/sub; a count that has a limit (maxconn) is reserved
  here before the connection is made, so the limit holds across workers;
- slots and heads: one writer each (their worker).  When a worker dies the master
  subtracts its slot from the totals, zeroes it and clears its heads before the
  replacement starts, so a crash leaks neither a connection nor a queue place.
"""
from __future__ import annotations

import mmap
import time

WORD = 8
NO_TICKET = (1 << 64) - 1

# backend words
BE_RR, BE_VERSION, BE_TICKET = 0, 1, 2
BE_WORDS = 4
# server words
SRV_STATE, SRV_WEIGHT, SRV_HEALTH, SRV_CHECK_STATUS, SRV_CHECK_CODE, SRV_CHECK_MS, \
    SRV_LAST_CHANGE, SRV_TICKET, SRV_ERRORS, SRV_OBSERVE = range(10)
SRV_WORDS = 10
# server state bits
ST_RUNNING = 1      # checks say UP (or the server is not checked)
ST_MAINT = 2        # administrative maintenance ("disabled", or the CLI)
ST_DRAIN = 4        # no new traffic except persistent requests
ST_CHECKED = 8      # has an active health check


class SharedState:
    def __init__(self, nfrontends: int, nbackends: int, nservers: int, nworkers: int):
        self.nfrontends = nfrontends
        self.nbackends = nbackends
        self.nservers = nservers
        self.nworkers = nworkers
        self.be_base = 0
        self.srv_base = nbackends * BE_WORDS
        # offsets inside a count block (totals and the head of each slot)
        self.fe_off = 1
        self.srv_shared_off = 1 + nfrontends
        self.beq_off = self.srv_shared_off + nservers
        self.srvq_off = self.beq_off + nbackends
        self.count_words = self.srvq_off + nservers
        # offsets of the worker's own counts, after the count block in its slot
        self.be_off = self.count_words
        self.srv_off = self.be_off + nbackends
        self.slot_words = self.srv_off + nservers
        self.total_base = self.srv_base + nservers * SRV_WORDS
        self.slot_base = self.total_base + self.count_words
        self.head_base = self.slot_base + nworkers * self.slot_words
        self.head_words = nbackends + nservers
        self.words = self.head_base + nworkers * self.head_words
        self.mm = mmap.mmap(-1, max(self.words, 1) * WORD, flags=mmap.MAP_SHARED,
                            prot=mmap.PROT_READ | mmap.PROT_WRITE)
        for worker in range(nworkers):
            self.clear_heads(worker)

    # -- word access (atomic, through the compiled helpers) ---------------------------------
    def load(self, word: int) -> int:
        from .._core import shm_load
        return shm_load(self.mm, word)

    def store(self, word: int, value: int) -> None:
        from .._core import shm_store
        shm_store(self.mm, word, value)

    def add(self, word: int, delta: int) -> int:
        from .._core import shm_add
        return shm_add(self.mm, word, delta)

    def server_word(self, server: int, field: int) -> int:
        return self.srv_base + server * SRV_WORDS + field

    def backend_word(self, backend: int, field: int) -> int:
        return self.be_base + backend * BE_WORDS + field

    def total(self, offset: int) -> int:
        """A count-block field from the atomic totals."""
        value = self.load(self.total_base + offset)
        return value - (1 << 64) if value >= 1 << 63 else value

    def summed(self, offset: int) -> int:
        """A worker-own field (backend/server cur) summed over the slots."""
        total = 0
        for worker in range(self.nworkers):
            value = self.load(self.slot_base + worker * self.slot_words + offset)
            total += value - (1 << 64) if value >= 1 << 63 else value
        return total

    # -- servers ----------------------------------------------------------------------------
    def init_server(self, server: int, *, weight: int, maint: bool, checked: bool,
                    health: int, observe: int = 0) -> None:
        state = (ST_MAINT if maint else 0) | (ST_CHECKED if checked else 0) | ST_RUNNING
        self.store(self.server_word(server, SRV_OBSERVE), observe)
        self.store(self.server_word(server, SRV_STATE), state)
        self.store(self.server_word(server, SRV_WEIGHT), weight)
        self.store(self.server_word(server, SRV_HEALTH), health)
        self.store(self.server_word(server, SRV_LAST_CHANGE), int(time.time()))

    def server_state(self, server: int) -> int:
        return self.load(self.server_word(server, SRV_STATE))

    def set_server_state(self, backend: int, server: int, state: int) -> None:
        """Publish a new state; workers rebuild that backend's tables at their next pick."""
        self.store(self.server_word(server, SRV_STATE), state)
        self.store(self.server_word(server, SRV_LAST_CHANGE), int(time.time()))
        self.add(self.backend_word(backend, BE_VERSION), 1)

    # -- workers ----------------------------------------------------------------------------
    def release_slot(self, worker: int) -> None:
        """Give back a dead worker's share of the totals, zero its slot, clear its heads."""
        from .._core import release_totals
        release_totals(self.mm, self.total_base, self.count_words,
                       self.slot_base + worker * self.slot_words)
        start = (self.slot_base + worker * self.slot_words) * WORD
        self.mm[start:start + self.slot_words * WORD] = bytes(self.slot_words * WORD)
        self.clear_heads(worker)

    def clear_heads(self, worker: int) -> None:
        start = (self.head_base + worker * self.head_words) * WORD
        self.mm[start:start + self.head_words * WORD] = b"\xff" * (self.head_words * WORD)
