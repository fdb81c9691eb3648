"""The shared mapping's word layout (words.pxd) for Python, and atomic word access for the
processes that are not workers (the master, the checker, the stats socket)."""

from libc.stdint cimport uint64_t, int64_t

from fastlb.includes.system cimport (fl_atomic_load, fl_atomic_store, fl_atomic_fetch_add,
                                     fl_atomic_fetch_sub)

NO_TICKET_VALUE = NO_TICKET


def shm_load(shm_map, Py_ssize_t word):
    cdef unsigned char[::1] view = shm_map
    return fl_atomic_load(<uint64_t *>&view[0] + word)


def shm_store(shm_map, Py_ssize_t word, uint64_t value):
    cdef unsigned char[::1] view = shm_map
    fl_atomic_store(<uint64_t *>&view[0] + word, value)


def shm_add(shm_map, Py_ssize_t word, int64_t delta):
    """Add ``delta``; returns the value before."""
    cdef unsigned char[::1] view = shm_map
    return fl_atomic_fetch_add(<uint64_t *>&view[0] + word, <uint64_t>delta)


def release_totals(shm_map, int total_base, int total_words, int slot_start):
    """Subtract one worker slot's share from the shared totals (the master, at reap)."""
    cdef unsigned char[::1] view = shm_map
    cdef uint64_t *shm = <uint64_t *>&view[0]
    cdef int i
    for i in range(total_words):
        fl_atomic_fetch_sub(shm + total_base + i, fl_atomic_load(shm + slot_start + i))
