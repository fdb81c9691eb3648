"""Counters shared by the master and all workers (one anonymous MAP_SHARED mapping).

Layout, in 64-bit words:

    [0, nbackends)                 round-robin position of each backend (atomic add)
    then the limited totals:       [actconn, frontend cur[nfe]] (atomic add/sub)
    then one slot per worker:      [actconn, frontend cur[nfe], backend cur[nbe], server cur[nsrv]]

A connection counted against ``maxconn`` is reserved in the atomic totals before
accept(), so the limit holds exactly across workers.  Each worker also writes its
own share into its slot (one writer, no contention): gauges without a limit are
summed over slots, and when a worker dies the master subtracts its slot from the
totals and zeroes it before the replacement starts, so a crash leaks no count.
"""
from __future__ import annotations

import mmap

WORD = 8


class SharedCounters:
    def __init__(self, nfrontends: int, nbackends: int, nservers: int, nworkers: int):
        self.nfrontends = nfrontends
        self.nbackends = nbackends
        self.nservers = nservers
        self.nworkers = nworkers
        self.total_base = nbackends
        self.total_words = 1 + nfrontends
        self.slot_base = self.total_base + self.total_words
        self.slot_words = 1 + nfrontends + nbackends + nservers
        self.words = self.slot_base + nworkers * self.slot_words
        self.mm = mmap.mmap(-1, max(self.words, 1) * WORD, flags=mmap.MAP_SHARED,
                            prot=mmap.PROT_READ | mmap.PROT_WRITE)

    def release_slot(self, worker: int) -> None:
        """Give back a dead worker's share of the totals, then zero its slot."""
        from .._core import release_totals
        release_totals(self.mm, self.total_base, self.total_words,
                       self.slot_base + worker * self.slot_words)
        self.clear_slot(worker)

    def clear_slot(self, worker: int) -> None:
        start = (self.slot_base + worker * self.slot_words) * WORD
        self.mm[start:start + self.slot_words * WORD] = bytes(self.slot_words * WORD)
