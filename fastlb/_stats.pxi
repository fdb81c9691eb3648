# Statistics counters (included by _core.pyx).
#
# Each worker counts into its own row of STAT_WORDS words per frontend, backend and server
# in shared memory (fastlb/runtime/shm.py): one writer per word, plain stores, no lock and
# no atomic operation on the hot path.  Whoever renders statistics (fastlb/stats/) sums the
# rows of all workers.  The rows are never zeroed when a worker dies, so totals only grow.
# The numbers below are the positions of shm.STAT_NAMES (checked by stat_layout()).

DEF STAT_WORDS = 40
DEF SC_SESS_TOT = 0
DEF SC_BYTES_IN = 1
DEF SC_BYTES_OUT = 2
DEF SC_DENIED_REQ = 3
DEF SC_DENIED_RESP = 4
DEF SC_ERR_REQ = 5
DEF SC_ERR_CONN = 6
DEF SC_ERR_RESP = 7
DEF SC_RETRIES = 8
DEF SC_REDISPATCH = 9
DEF SC_LBTOT = 10
DEF SC_HRSP_1XX = 11        # .. SC_HRSP_OTHER = 16, by status class
DEF SC_HRSP_OTHER = 16
DEF SC_REQ_TOT = 17
DEF SC_CLI_ABRT = 18
DEF SC_SRV_ABRT = 19
DEF SC_CONN_TOT = 20
DEF SC_CONNECT = 21
DEF SC_REUSE = 22
DEF SC_INTERCEPTED = 23
DEF SC_SMAX = 24
DEF SC_QMAX = 25
DEF SC_Q_SUM = 26           # queue, connect, response and total times: sliding sums
DEF SC_C_SUM = 27
DEF SC_R_SUM = 28
DEF SC_T_SUM = 29
DEF SC_SAMPLES = 30
DEF SC_R_SAMPLES = 31
DEF SC_QTIME_MAX = 32
DEF SC_CTIME_MAX = 33
DEF SC_RTIME_MAX = 34
DEF SC_TTIME_MAX = 35
DEF SC_LASTSESS = 36        # seconds since the epoch of the last session sent to it
DEF TIME_SAMPLES = 512      # the timing averages cover the last 512 sessions


def stat_layout():
    """(STAT_WORDS, last index) as compiled, for the layout check in the tests."""
    return STAT_WORDS, SC_LASTSESS


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
    row[SC_SAMPLES] += 1
    window_add(row, SC_Q_SUM, row[SC_SAMPLES], tq)
    window_add(row, SC_C_SUM, row[SC_SAMPLES], tc)
    window_add(row, SC_T_SUM, row[SC_SAMPLES], tt)
    stat_max(row, SC_QTIME_MAX, tq)
    stat_max(row, SC_CTIME_MAX, tc)
    stat_max(row, SC_TTIME_MAX, tt)
    if tr >= 0:
        row[SC_R_SAMPLES] += 1
        window_add(row, SC_R_SUM, row[SC_R_SAMPLES], tr)
        stat_max(row, SC_RTIME_MAX, tr)


cdef inline void stat_status(uint64_t *row, int status) noexcept nogil:
    if 100 <= status < 600:
        row[SC_HRSP_1XX + status // 100 - 1] += 1
    else:
        row[SC_HRSP_OTHER] += 1


cdef inline void stat_abort(uint64_t *row, char term0, char term1) noexcept nogil:
    """A transfer cut by the client (C, c) or the server (S, s) in its data phase."""
    if term1 != b'D':
        return
    if term0 == b'C' or term0 == b'c':
        row[SC_CLI_ABRT] += 1
    elif term0 == b'S' or term0 == b's':
        row[SC_SRV_ABRT] += 1


cdef inline void tcp_account_row(uint64_t *row, Session *s, int64_t tq, int64_t tc,
                                 int64_t tt) noexcept nogil:
    """A backend's or server's share of an ending TCP session."""
    row[SC_BYTES_IN] += s.cli.bytes_in
    row[SC_BYTES_OUT] += s.srv.bytes_in
    stat_abort(row, s.term0, s.term1)
    stat_times(row, tq, tc, -1, tt)
