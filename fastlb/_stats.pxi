# Statistics counters (included by _core.pyx).
#
# Each worker counts into its own row of STAT_WORDS words per frontend, backend and server
# in shared memory (fastlb/shm/): one writer per word, plain stores, no lock and
# no atomic operation on the hot path.  Whoever renders statistics (fastlb/stats/) sums the
# rows of all workers.  The rows are never zeroed when a worker dies, so totals only grow.
# The counters' numbers are STAT_* in fastlb/shm/words.pxd.

DEF TIME_SAMPLES = 512      # the timing averages cover the last 512 sessions


cdef inline void stat_max(uint64_t *row, int field, int64_t value) noexcept nogil:
    if value > <int64_t>row[field]:
        row[field] = <uint64_t>value


cdef inline void window_add(uint64_t *row, int sum_field, uint64_t n, int64_t value) noexcept nogil:
    """The exact mean over the first TIME_SAMPLES values, then a sliding one (HAProxy's
    swrate): the average is sum / min(n, TIME_SAMPLES)."""
    if value < 0:
        value = 0
    if n <= TIME_SAMPLES:
        row[sum_field] += <uint64_t>value
    else:
        row[sum_field] = row[sum_field] - row[sum_field] / TIME_SAMPLES + <uint64_t>value


cdef inline void stat_times(uint64_t *row, int64_t tq, int64_t tc, int64_t tr, int64_t tt) noexcept nogil:
    """One finished session or request: its queue, connect, response and total times (ms;
    tr < 0 when no response came)."""
    row[STAT_SAMPLES] += 1
    window_add(row, STAT_Q_SUM, row[STAT_SAMPLES], tq)
    window_add(row, STAT_C_SUM, row[STAT_SAMPLES], tc)
    window_add(row, STAT_T_SUM, row[STAT_SAMPLES], tt)
    stat_max(row, STAT_QTIME_MAX, tq)
    stat_max(row, STAT_CTIME_MAX, tc)
    stat_max(row, STAT_TTIME_MAX, tt)
    if tr >= 0:
        row[STAT_R_SAMPLES] += 1
        window_add(row, STAT_R_SUM, row[STAT_R_SAMPLES], tr)
        stat_max(row, STAT_RTIME_MAX, tr)


cdef inline void stat_status(uint64_t *row, int status) noexcept nogil:
    if 100 <= status < 600:
        row[STAT_HRSP_1XX + status // 100 - 1] += 1
    else:
        row[STAT_HRSP_OTHER] += 1


cdef inline void stat_abort(uint64_t *row, char term0, char term1) noexcept nogil:
    """A transfer cut by the client (C, c) or the server (S, s) in its data phase."""
    if term1 != b'D':
        return
    if term0 == b'C' or term0 == b'c':
        row[STAT_CLI_ABRT] += 1
    elif term0 == b'S' or term0 == b's':
        row[STAT_SRV_ABRT] += 1


cdef inline void tcp_account_row(uint64_t *row, Session *s, int64_t tq, int64_t tc,
                                 int64_t tt) noexcept nogil:
    """A backend's or server's share of an ending TCP session."""
    row[STAT_BYTES_IN] += s.cli.bytes_in
    row[STAT_BYTES_OUT] += s.srv.bytes_in
    stat_abort(row, s.term0, s.term1)
    stat_times(row, tq, tc, -1, tt)
