"""State shared by the master, the health checker and all workers (one MAP_SHARED mapping,
created by the master for each configuration generation).

Layout, in 64-bit words:

    globals    G_WORDS + nworkers:    shutdown epoch ("shutdown sessions server"), master pid,
                                      start time, idle percentage and memory of the
                                      workers (sampled by the master), connection and
                                      session rates (maxconnrate, maxsessrate), then the
                                      workers' pids
    frontends  FE_WORDS per frontend: maxconn (changed at run time by "set maxconn
                                      frontend"), session rate (rate-limit sessions)
    backends   BE_WORDS per backend:  round-robin position, table version, queue ticket, last
                                      change, times it went down, down since, downtime,
                                      dynamic cookies set at run time
    servers    SRV_WORDS per server:  state bits, user weight, health counter, check status,
                                      check code, check duration, last change, queue ticket,
                                      consecutive errors seen by traffic (observe), what to
                                      observe (0 none, 4 layer4, 7 layer7), maxconn, failed
                                      checks, times it went down, down since, downtime, failed
                                      observations, shutdown epoch, dynamic cookie
    totals     COUNT words:           actconn, frontend cur[nfe], server cur[nsrv] (when
                                      a maxconn, leastconn or random needs it shared),
                                      backend queue[nbe], server queue[nsrv], listener
                                      cur[nlisteners] (bind maxconn), I/O buffers allocated
                                      (tune.buffers.limit)
    slots      per worker: the COUNT fields (that worker's share of the totals), then its
               own backend cur[nbe] and server cur[nsrv] (for logs and statistics; summed
               over the slots when read), then its buffers in use and its failed buffer
               allocations (show pools)
    heads      per worker, one word per queue (backends, then servers): the queue key
               (priority class, date + offset, ticket) of the first request that worker
               has waiting there (NO_TICKET: none)
    stats      per worker, STAT_WORDS per object (frontends, then backends, then servers):
               that worker's counters (fastlb/loop/accounting.pxi); never zeroed when a worker dies,
               so the sums only grow across respawns
    rates      RATE_WORDS per object, then RATE_WORDS for the process: per-second rates
               and their maxima, written once a second by the master (fastlb/stats/)
    errors     per worker, ERR_WORDS per frontend then per backend: the last request
               (frontend) or response (backend) that could not be parsed, for "show errors"
               (fastlb/stats/errors.py)

Who writes what:
- server state, weight, health and check words: the checker, the stats socket and the
  stats page's admin form, never a worker; each change bumps the backend's table version,
  and every worker rebuilds its lookup tables for that backend when it sees a new version
  at its next pick;
- totals: workers, with atomic add/sub; a count that has a limit (maxconn) is reserved
  here before the connection is made, so the limit holds across workers;
- slots, heads and stats: one writer each (their worker; "clear counters" zeroes stats).
  When a worker dies the master subtracts its slot from the totals, zeroes it and clears
  its heads before the replacement starts, so a crash leaks neither a connection nor a
  queue place.
"""
from __future__ import annotations

import mmap
import time

from . import words

from .words import *  # noqa: F401,F403 (the word layout: words.pxd is its one source)
from .words import NO_TICKET_VALUE as NO_TICKET, shm_add, shm_load, shm_store, release_totals

# SRV_CHECK_STATUS holds an index in CHECK_STATUSES (written by the checker, shown by stats)
CHECK_STATUSES = ("UNK", "INI", "SOCKERR", "L4OK", "L4TOUT", "L4CON", "L6OK", "L6TOUT", "L6RSP",
                  "L7OK", "L7OKC", "L7TOUT", "L7RSP", "L7STS")
CHECK_DESCRIPTIONS = {
    "INI": "Initializing", "SOCKERR": "Socket error", "L4OK": "Layer4 check passed",
    "L4TOUT": "Layer4 timeout", "L4CON": "Layer4 connection problem",
    "L6OK": "Layer6 check passed", "L6TOUT": "Layer6 timeout",
    "L6RSP": "Layer6 invalid response", "L7TOUT": "Layer7 timeout",
    "L7RSP": "Layer7 invalid response", "L7OK": "Layer7 check passed",
    "L7OKC": "Layer7 check conditionally passed", "L7STS": "Layer7 wrong status",
}

# per-worker statistics counters, per object, named after words.pxd's STAT_* numbers
STAT_NAMES = tuple(name[5:].lower() for value, name in sorted(
    (value, name) for name, value in vars(words).items()
    if name.startswith("STAT_") and value < STAT_COUNTERS))
STAT = {name: i for i, name in enumerate(STAT_NAMES)}
# What "clear counters" (without "all") resets: the maxima.
STAT_MAXIMA = ("smax", "qmax", "qtime_max", "ctime_max", "rtime_max", "ttime_max")
# rates, per object: sessions, requests, connections per second and their maxima
RATE_NAMES = ("rate", "rate_max", "req_rate", "req_rate_max", "conn_rate", "conn_rate_max")


class SharedState:
    def __init__(self, nfrontends: int, nbackends: int, nservers: int, nworkers: int,
                 nlisteners: int = 0):
        self.nfrontends = nfrontends
        self.nbackends = nbackends
        self.nservers = nservers
        self.nworkers = nworkers
        self.backend_servers: list[range] = [range(0)] * nbackends
        self.global_base = 0
        self.fe_base = G_WORDS + nworkers
        self.be_base = self.fe_base + nfrontends * FE_WORDS
        self.srv_base = self.be_base + nbackends * BE_WORDS
        # offsets inside a count block (totals and the head of each slot)
        self.fe_off = COUNT_FRONTENDS
        self.srv_shared_off = COUNT_FRONTENDS + nfrontends
        self.beq_off = self.srv_shared_off + nservers
        self.srvq_off = self.beq_off + nbackends
        self.lst_off = self.srvq_off + nservers
        self.buf_off = self.lst_off + nlisteners
        self.count_words = self.buf_off + 1
        # offsets of the worker's own counts, after the count block in its slot
        self.be_off = self.count_words
        self.srv_off = self.be_off + nbackends
        self.pool_off = self.srv_off + nservers     # buffers in use, failed allocations
        self.slot_words = self.pool_off + 2
        self.total_base = self.srv_base + nservers * SRV_WORDS
        self.slot_base = self.total_base + self.count_words
        self.head_base = self.slot_base + nworkers * self.slot_words
        self.head_words = nbackends + nservers
        self.nlisteners = nlisteners
        # statistics rows: frontends, backends, servers, then listeners (option socket-stats)
        self.nobjects = nfrontends + nbackends + nservers + nlisteners
        self.stats_base = self.head_base + nworkers * self.head_words
        self.stats_words = self.nobjects * STAT_WORDS          # per worker
        self.rate_base = self.stats_base + nworkers * self.stats_words
        self.err_base = self.rate_base + (self.nobjects + 1) * RATE_WORDS
        self.err_slots = nfrontends + nbackends                   # per worker
        self.words = self.err_base + nworkers * self.err_slots * ERR_WORDS
        self.mm = mmap.mmap(-1, max(self.words, 1) * WORD, flags=mmap.MAP_SHARED,
                            prot=mmap.PROT_READ | mmap.PROT_WRITE)
        self.view = memoryview(self.mm).cast("Q")   # plain reads for statistics
        for worker in range(nworkers):
            self.clear_heads(worker)

    # -- word access (atomic, through the compiled helpers) ---------------------------------
    def load(self, word: int) -> int:
        return shm_load(self.mm, word)

    def store(self, word: int, value: int) -> None:
        shm_store(self.mm, word, value)

    def add(self, word: int, delta: int) -> int:
        return shm_add(self.mm, word, delta)

    def server_word(self, server: int, field: int) -> int:
        return self.srv_base + server * SRV_WORDS + field

    def backend_word(self, backend: int, field: int) -> int:
        return self.be_base + backend * BE_WORDS + field

    def frontend_word(self, frontend: int, field: int) -> int:
        return self.fe_base + frontend * FE_WORDS + field

    def total(self, offset: int) -> int:
        """A count-block field from the atomic totals."""
        value = self.load(self.total_base + offset)
        return value - (1 << 64) if value >= 1 << 63 else value

    def summed(self, offset: int) -> int:
        """A worker-own field (backend/server cur) summed over the slots."""
        total = 0
        for worker in range(self.nworkers):
            value = self.view[self.slot_base + worker * self.slot_words + offset]
            total += value - (1 << 64) if value >= 1 << 63 else value
        return total

    def buffer_pool(self) -> tuple:
        """The I/O buffers of all workers: (allocated, in use, failed allocations)."""
        return (max(self.total(self.buf_off), 0), max(self.summed(self.pool_off), 0),
                self.summed(self.pool_off + 1))

    def worker_pids(self) -> list:
        return [self.view[G_WORDS + w] for w in range(self.nworkers)]

    def set_worker_pid(self, worker: int, pid: int) -> None:
        self.view[G_WORDS + worker] = pid

    # -- statistics -------------------------------------------------------------------------
    def frontend_object(self, frontend: int) -> int:
        return frontend

    def backend_object(self, backend: int) -> int:
        return self.nfrontends + backend

    def server_object(self, server: int) -> int:
        return self.nfrontends + self.nbackends + server

    def listener_object(self, slot: int) -> int:
        """slot: the listener's number among all of the configuration's."""
        return self.nfrontends + self.nbackends + self.nservers + slot

    def stats_rows(self, obj: int) -> list:
        """That object's counters, one list of STAT_WORDS per worker."""
        rows = []
        for worker in range(self.nworkers):
            start = self.stats_base + worker * self.stats_words + obj * STAT_WORDS
            rows.append(self.view[start:start + STAT_WORDS].tolist())
        return rows

    def stat_sum(self, obj: int, name: str) -> int:
        """One counter of that object, summed over the workers."""
        word = self.stats_base + obj * STAT_WORDS + STAT[name]
        return sum(self.view[word + worker * self.stats_words]
                   for worker in range(self.nworkers))

    def clear_stats(self, everything: bool) -> None:
        """clear counters [all]: the maxima, or every counter."""
        if everything:
            start = self.stats_base * WORD
            self.mm[start:self.rate_base * WORD] = bytes((self.rate_base - self.stats_base) * WORD)
            for i in range(self.rate_base, self.err_base):
                self.view[i] = 0
            return
        for worker in range(self.nworkers):
            for obj in range(self.nobjects):
                start = self.stats_base + worker * self.stats_words + obj * STAT_WORDS
                for name in STAT_MAXIMA:
                    self.view[start + STAT[name]] = 0
        for obj in range(self.nobjects + 1):
            for i in (1, 3, 5):
                self.view[self.rate_base + obj * RATE_WORDS + i] = 0

    def rate_word(self, obj: int, index: int) -> int:
        """obj == nobjects: the process."""
        return self.rate_base + obj * RATE_WORDS + index

    # -- servers ----------------------------------------------------------------------------
    def init_server(self, server: int, *, weight: int, maint: bool, checked: bool,
                    health: int, observe: int = 0, maxconn: int = 0) -> None:
        state = (ST_CFG_MAINT if maint else 0) | (ST_CHECKED if checked else 0) | ST_RUNNING
        now = int(time.time())
        self.store(self.server_word(server, SRV_OBSERVE), observe)
        self.store(self.server_word(server, SRV_STATE), state)
        self.store(self.server_word(server, SRV_WEIGHT), weight)
        self.store(self.server_word(server, SRV_HEALTH), health)
        self.store(self.server_word(server, SRV_MAXCONN), maxconn)
        self.store(self.server_word(server, SRV_LAST_CHANGE), now)
        if maint:
            self.store(self.server_word(server, SRV_DOWN_SINCE), now)

    def init_backend(self, backend: int, servers: range) -> None:
        self.backend_servers[backend] = servers
        now = int(time.time())
        self.store(self.backend_word(backend, BE_LAST_CHANGE), now)
        if not self.backend_up(backend):
            self.store(self.backend_word(backend, BE_DOWN_SINCE), now)

    def server_state(self, server: int) -> int:
        return self.load(self.server_word(server, SRV_STATE))

    def server_up(self, server: int) -> bool:
        """Running and not in maintenance (HAProxy's operational state RUNNING)."""
        bits = self.server_state(server)
        return bool(bits & ST_RUNNING) and not bits & ST_ANY_MAINT

    def backend_up(self, backend: int) -> bool:
        """HAProxy's backend status: UP if its usable servers have some weight (or it has no
        servers at all)."""
        servers = self.backend_servers[backend]
        if not servers:
            return True
        return any(self.server_usable(k) and self.load(self.server_word(k, SRV_WEIGHT)) > 0
                   for k in servers)

    def server_usable(self, server: int) -> bool:
        """Up and not draining: it may take new traffic."""
        bits = self.server_state(server)
        return bool(bits & ST_RUNNING) and not bits & (ST_ANY_MAINT | ST_DRAIN)

    def set_server_state(self, backend: int, server: int, state: int) -> None:
        """Publish a new state; workers rebuild that backend's tables at their next pick.
        Keeps the down counters and downtimes of the server and its backend."""
        now = int(time.time())
        was_up, backend_was_up = self.server_up(server), self.backend_up(backend)
        self.store(self.server_word(server, SRV_STATE), state)
        self.note_change(self.server_word(server, 0), was_up, self.server_up(server), now,
                         (SRV_LAST_CHANGE, SRV_CHKDOWN, SRV_DOWN_SINCE, SRV_DOWNTIME))
        self.note_change(self.backend_word(backend, 0), backend_was_up, self.backend_up(backend),
                         now, (BE_LAST_CHANGE, BE_CHKDOWN, BE_DOWN_SINCE, BE_DOWNTIME))
        self.add(self.backend_word(backend, BE_VERSION), 1)

    def set_server_weight(self, backend: int, server: int, weight: int) -> None:
        backend_was_up = self.backend_up(backend)
        self.store(self.server_word(server, SRV_WEIGHT), weight)
        self.note_change(self.backend_word(backend, 0), backend_was_up, self.backend_up(backend),
                         int(time.time()), (BE_LAST_CHANGE, BE_CHKDOWN, BE_DOWN_SINCE,
                                            BE_DOWNTIME))
        self.add(self.backend_word(backend, BE_VERSION), 1)

    def note_change(self, base: int, was_up: bool, up: bool, now: int, words: tuple) -> None:
        last_change, downs, down_since, downtime = (base + w for w in words)
        if was_up == up:
            return
        self.store(last_change, now)
        if not up:
            self.add(downs, 1)
            self.store(down_since, now)
        else:
            self.add(downtime, max(0, now - self.load(down_since)))

    def downtime(self, base: int, up: bool, words: tuple) -> int:
        """Seconds spent down so far, the current stretch included."""
        _, _, down_since, downtime = (base + w for w in words)
        total = self.load(downtime)
        if not up:
            total += max(0, int(time.time()) - self.load(down_since))
        return total

    # -- workers ----------------------------------------------------------------------------
    def release_slot(self, worker: int) -> None:
        """Give back a dead worker's share of the totals, zero its slot, clear its heads.
        Its statistics counters stay: the replacement goes on counting from them."""
        release_totals(self.mm, self.total_base, self.count_words,
                       self.slot_base + worker * self.slot_words)
        start = (self.slot_base + worker * self.slot_words) * WORD
        self.mm[start:start + self.slot_words * WORD] = bytes(self.slot_words * WORD)
        self.clear_heads(worker)

    def clear_heads(self, worker: int) -> None:
        start = (self.head_base + worker * self.head_words) * WORD
        self.mm[start:start + self.head_words * WORD] = b"\xff" * (self.head_words * WORD)
