# The log edge: one call to Python per logged session or transaction.
# Interface: logging.pxd.


# ------------------------------------------------------------------ logging (Python edge)
cdef void log_connect(Worker w, Session *s):
    try:
        w.connect_callback(s.fe, sockaddr_to_tuple(&s.addr), w.listeners[s.listener].port,
                              w.frontends[s.fe].http)
    except Exception:
        pass


cdef void log_end(Worker w, Session *s):
    cdef int64_t tw = -1, tc = -1
    cdef int64_t bc = 0, sc = 0
    if s.server >= 0 or s.redispatched:
        tw = s.t_dequeued - s.t_queued if s.t_queued >= 0 else 0
    if s.t_established >= 0:
        tc = s.t_established - s.t_connect
    if s.be >= 0:
        bc = count_total(w, w.be_off + w.backends[s.be].shm_index)
        if s.server >= 0:
            sc = count_total(w, w.srv_off + w.backends[s.be].servers[s.server].shm_index)
    try:
        w.log_callback(
            s.fe, s.be, s.server, sockaddr_to_tuple(&s.addr), s.t_accept_real,
            tw, tc, w.now - s.t_accept, s.srv.bytes_in, chr(s.term0) + chr(s.term1),
            fl_atomic_load(w.totals), fl_atomic_load(w.totals + COUNT_FRONTENDS + w.frontends[s.fe].shm_index),
            bc, sc, s.retries_done, s.redispatched)
    except Exception:
        pass


cdef void http_log(Worker w, Session *s, HttpTxn txn):
    cdef int64_t tr, tw, tc, tresp, ta, bc = 0, sc = 0
    cdef int be
    if txn.logged or txn.request_line is None:
        return        # already logged, or no request began (HAProxy logs nothing either)
    txn.logged = True
    if w.http_log_callback is None or w.frontends[s.fe].log_mode != LOG_HTTPLOG:
        return
    tr = txn.t_head - txn.t_start if txn.t_head >= 0 else -1
    tc = txn.t_connect_ms
    be = s.be if txn.routed else -1
    tresp = txn.t_response - txn.t_sent if txn.t_response >= 0 and txn.t_sent >= 0 else -1
    ta = w.now - txn.t_start
    tw = 0 if txn.log_server >= 0 else -1
    if s.t_queued >= 0:
        tw = (s.t_dequeued if s.q_target < 0 else w.now) - s.t_queued
    if be >= 0:
        bc = count_total(w, w.be_off + w.backends[be].shm_index)
        if txn.log_server >= 0:
            sc = count_total(w, w.srv_off + w.backends[be].servers[txn.log_server].shm_index)
    try:
        w.http_log_callback(
            s.fe, be, txn.log_server if be >= 0 else -1, sockaddr_to_tuple(&s.addr),
            txn.t_start_real, tr, tw, tc, tresp, ta,
            txn.status, txn.bytes_out,
            (chr(txn.term0) + chr(txn.term1) if txn.term0 != 45 or s.term0 == 45
             else chr(s.term0) + chr(s.term1)) + txn.ck_client + txn.ck_server,
            fl_atomic_load(w.totals),
            fl_atomic_load(w.totals + COUNT_FRONTENDS + w.frontends[s.fe].shm_index), bc, sc,
            s.retries_done, s.redispatched, txn.request_line,
            (txn.captures_req, txn.captures_rsp))
    except Exception:
        pass
