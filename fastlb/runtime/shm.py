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
import struct

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

    # Offsets inside a worker slot; the Cython worker uses the same arithmetic.
    def fe_offset(self, fe: int) -> int:
        return 1 + fe

    def be_offset(self, be: int) -> int:
        return 1 + self.nfrontends + be

    def srv_offset(self, srv: int) -> int:
        return 1 + self.nfrontends + self.nbackends + srv

    def _word(self, index: int) -> int:
        return struct.unpack_from("=Q", self.mm, index * WORD)[0]

    def release_slot(self, worker: int) -> None:
        """Give back a dead worker's share of the totals, then zero its slot."""
        from .._core import release_totals
        release_totals(self.mm, self.total_base, self.total_words,
                       self.slot_base + worker * self.slot_words)
        self.clear_slot(worker)

    def clear_slot(self, worker: int) -> None:
        start = (self.slot_base + worker * self.slot_words) * WORD
        self.mm[start:start + self.slot_words * WORD] = bytes(self.slot_words * WORD)

    def total(self, offset: int) -> int:
        """Sum of one slot field over all workers."""
        return sum(self._word(self.slot_base + w * self.slot_words + offset)
                   for w in range(self.nworkers))
