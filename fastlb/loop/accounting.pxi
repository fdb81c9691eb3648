# Shared counters and statistics rows.
# Interface: accounting.pxd.


# ------------------------------------------------------------------ shared counters
cdef inline void count_add(Worker w, uint32_t offset, int64_t delta) noexcept nogil:
    w.slot[offset] = <uint64_t>(<int64_t>w.slot[offset] + delta)


cdef int64_t count_total(Worker w, uint32_t offset) noexcept nogil:
    cdef int64_t sum = 0
    cdef int k
    cdef uint64_t *base = w.shm + w.slot_base + offset
    for k in range(w.nworkers):
        sum += <int64_t>fl_atomic_load(base + k * w.slot_words)
    return sum


# Statistics counters.
#
# Each worker counts into its own row of STAT_WORDS words per frontend, backend and server
# in shared memory (fastlb/shm/): one writer per word, plain stores, no lock and
# no atomic operation on the hot path.  Whoever renders statistics (fastlb/stats/) sums the
# rows of all workers.  The rows are never zeroed when a worker dies, so totals only grow.
# The counters' numbers are STAT_* in fastlb/shm/words.pxd.



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


cdef void listener_count(Worker w, int li, int stat, uint64_t n) noexcept nogil:
    """A frontend counter's share for the listener (option socket-stats only)."""
    cdef int row = w.listeners[li].stat_row
    if row >= 0:
        w.lst_stats[row * STAT_WORDS + stat] += n


cdef void add_bytes(Worker w, Session *s, int server, uint64_t din, uint64_t dout) noexcept nogil:
    """Bytes of a session into its frontend's, backend's and server's counters."""
    cdef uint64_t *row = w.fe_stats + s.fe * STAT_WORDS
    row[STAT_BYTES_IN] += din
    row[STAT_BYTES_OUT] += dout
    listener_count(w, s.listener, STAT_BYTES_IN, din)
    listener_count(w, s.listener, STAT_BYTES_OUT, dout)
    if s.be < 0:
        return
    row = w.be_stats + w.backends[s.be].shm_index * STAT_WORDS
    row[STAT_BYTES_IN] += din
    row[STAT_BYTES_OUT] += dout
    if server >= 0:
        row = w.srv_stats + w.backends[s.be].srv_shm[server] * STAT_WORDS
        row[STAT_BYTES_IN] += din
        row[STAT_BYTES_OUT] += dout


cdef void continuous_account(Worker w, int idx, Session *s):
    """option contstats: the bytes moved since the last event go into the counters now,
    not at the session's (or transaction's) end; HAProxy updates them at each wake-up."""
    cdef HttpTxn txn
    cdef uint64_t total_in, total_out
    if s.http == 1:
        txn = http_txn(w, idx)
        if txn.counted or txn.request_line is None or not txn.routed:
            return
        total_in, total_out = <uint64_t>txn.bytes_in, <uint64_t>txn.bytes_out
        if total_in != s.acc_in or total_out != s.acc_out:
            add_bytes(w, s, txn.log_server, total_in - s.acc_in, total_out - s.acc_out)
    else:
        if s.be < 0:
            return
        total_in, total_out = s.cli.bytes_in, s.srv.bytes_in
        if total_in != s.acc_in or total_out != s.acc_out:
            add_bytes(w, s, s.server, total_in - s.acc_in, total_out - s.acc_out)
    s.acc_in, s.acc_out = total_in, total_out


cdef inline void tcp_account_row(uint64_t *row, Session *s, int64_t tq, int64_t tc,
                                 int64_t tt) noexcept nogil:
    """A backend's or server's share of an ending TCP session (its bytes not yet counted)."""
    row[STAT_BYTES_IN] += s.cli.bytes_in - s.acc_in
    row[STAT_BYTES_OUT] += s.srv.bytes_in - s.acc_out
    stat_abort(row, s.term0, s.term1)
    stat_times(row, tq, tc, -1, tt)


cdef void tcp_account(Worker w, Session *s):
    """Statistics of an ending TCP session."""
    cdef uint64_t *row = w.fe_stats + s.fe * STAT_WORDS
    cdef int64_t tq = 0, tc = -1
    row[STAT_BYTES_IN] += s.cli.bytes_in - s.acc_in
    row[STAT_BYTES_OUT] += s.srv.bytes_in - s.acc_out
    listener_count(w, s.listener, STAT_BYTES_IN, s.cli.bytes_in - s.acc_in)
    listener_count(w, s.listener, STAT_BYTES_OUT, s.srv.bytes_in - s.acc_out)
    if s.be < 0:
        return
    if s.t_queued >= 0:
        tq = s.t_dequeued - s.t_queued
    if s.t_established >= 0:
        tc = s.t_established - s.t_connect
    tcp_account_row(w.be_stats + w.backends[s.be].shm_index * STAT_WORDS, s, tq, tc,
                    w.now - s.t_accept)
    if s.server >= 0:
        tcp_account_row(w.srv_stats + w.backends[s.be].srv_shm[s.server] * STAT_WORDS,
                        s, tq, tc, w.now - s.t_accept)


cdef void http_account(Worker w, Session *s, HttpTxn txn):
    """Statistics of a finished (or cut short) transaction: frontend, then backend and
    server when it went that far."""
    cdef uint64_t *row = w.fe_stats + s.fe * STAT_WORDS
    cdef int64_t tq = 0, tc, tr, tt
    cdef bint rsp_error
    if txn.counted or txn.request_line is None:
        return
    txn.counted = True
    # (option contstats may have counted part of them: s.acc_*, reset for the next one)
    cdef uint64_t din = <uint64_t>txn.bytes_in - s.acc_in, dout = <uint64_t>txn.bytes_out - s.acc_out
    s.acc_in = s.acc_out = 0
    row[STAT_BYTES_IN] += din
    row[STAT_BYTES_OUT] += dout
    listener_count(w, s.listener, STAT_BYTES_IN, din)
    listener_count(w, s.listener, STAT_BYTES_OUT, dout)
    if txn.req_error:
        row[STAT_ERR_REQ] += 1
        listener_count(w, s.listener, STAT_ERR_REQ, 1)
    else:
        row[STAT_REQ_TOT] += 1
    if txn.status > 0:
        stat_status(row, txn.status)
    if not txn.routed or s.be < 0:
        return
    if s.t_queued >= 0:
        tq = (s.t_dequeued if s.q_target < 0 else w.now) - s.t_queued
    tc = txn.t_connect_ms if txn.t_connect_ms >= 0 else 0
    tr = txn.t_response - txn.t_sent if txn.t_response >= 0 and txn.t_sent >= 0 else -1
    tt = w.now - txn.t_start
    rsp_error = txn.error_sent and txn.term1 == b'H' and (txn.status == 502 or txn.status == 504) \
        and not txn.rsp_denied
    row = w.be_stats + w.backends[s.be].shm_index * STAT_WORDS
    row[STAT_BYTES_IN] += din
    row[STAT_BYTES_OUT] += dout
    row[STAT_REQ_TOT] += 1
    if txn.status > 0:
        stat_status(row, txn.status)
    if rsp_error:
        row[STAT_ERR_RESP] += 1
    stat_abort(row, txn.term0, txn.term1)
    if txn.log_server >= 0:
        stat_times(row, tq, tc, tr, tt)
        if txn.reused:
            row[STAT_REUSE] += 1
        row = w.srv_stats + w.backends[s.be].srv_shm[txn.log_server] * STAT_WORDS
        row[STAT_BYTES_IN] += din
        row[STAT_BYTES_OUT] += dout
        row[STAT_REQ_TOT] += 1
        if txn.server_status > 0:         # what the server said, whatever the rules made of it
            stat_status(row, txn.server_status)
        elif rsp_error:
            stat_status(row, txn.status)
        if rsp_error:
            row[STAT_ERR_RESP] += 1
        stat_abort(row, txn.term0, txn.term1)
        stat_times(row, tq, tc, tr, tt)
        if txn.reused:
            row[STAT_REUSE] += 1
