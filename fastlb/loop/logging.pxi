# The log edge: one call to Python per logged session or transaction.
# Interface: logging.pxd.


cdef class LogRecord:
    """One log line's figures (declared in logging.pxd)."""


cdef void log_connect(Worker w, Session *s):
    try:
        w.connect_callback(s.fe, sockaddr_to_tuple(&s.addr), w.listeners[s.listener].port,
                              w.frontends[s.fe].http)
    except Exception:
        pass


cdef void log_addresses(Session *s) noexcept nogil:
    """Keep the addresses a log format reads (%fi/%fp, %bi/%bp) while the sockets are open."""
    cdef socklen_t len = sizeof(sockaddr_storage)
    session_dst(s)
    if s.srv.fd >= 0 and getsockname(s.srv.fd, <sockaddr *>&s.bsrc, &len) == 0:
        s.bsrc_known = 1


cdef void record_addresses(Worker w, Session *s, LogRecord rec, int be, int srv):
    """%fi/%fp, %si/%sp, %bi/%bp of a log line (None: "-")."""
    cdef ServerRt *target
    cdef socklen_t len = sizeof(sockaddr_storage)
    cdef sockaddr_storage local
    rec.frontend_addr = rec.server_addr = rec.backend_src = None
    if session_dst(s) and s.dst.ss_family != AF_UNIX:
        rec.frontend_addr = sockaddr_to_tuple(&s.dst)
    if be >= 0 and srv >= 0:
        target = &w.backends[be].servers[srv]
        if target.addr.ss_family == AF_INET or target.addr.ss_family == AF_INET6:
            ip, port = sockaddr_to_tuple(&target.addr)
            rec.server_addr = (ip, session_dst_port(w, s) if target.use_client_port else port)
    if s.srv.fd >= 0 and getsockname(s.srv.fd, <sockaddr *>&local, &len) == 0 \
            and (local.ss_family == AF_INET or local.ss_family == AF_INET6):
        rec.backend_src = sockaddr_to_tuple(&local)
    elif s.bsrc_known and s.bsrc.ss_family != AF_UNIX:
        rec.backend_src = sockaddr_to_tuple(&s.bsrc)


cdef void log_end(Worker w, Session *s):
    cdef LogRecord rec = LogRecord.__new__(LogRecord)
    rec.frontend, rec.backend, rec.server = s.fe, s.be, s.server
    rec.client = sockaddr_to_tuple(&s.addr)
    rec.start_ms = s.t_accept_real
    rec.t_request = rec.t_response = rec.status = -1
    rec.t_queue = rec.t_connect = -1
    if s.server >= 0 or s.redispatched:
        rec.t_queue = s.t_dequeued - s.t_queued if s.t_queued >= 0 else 0
    if s.t_established >= 0:
        rec.t_connect = s.t_established - s.t_connect
    rec.t_total = w.now - s.t_accept
    rec.bytes_out = s.srv.bytes_in
    rec.bytes_in = s.cli.bytes_in
    rec.t_idle = 0
    rec.logasap = s.state == ST_ESTABLISHED and w.frontends[s.fe].logasap
    if w.frontends[s.fe].log_addrs:
        record_addresses(w, s, rec, s.be, s.server)
    rec.term = chr(s.term0) + chr(s.term1)
    count_record(w, rec, s.fe, s.be, s.server)
    rec.retries, rec.redispatched = s.retries_done, s.redispatched
    if (<FrontendHooks>w.fe_hooks[s.fe]).streams:
        rec.stream = new_stream(w, s, None, b"", [], b"", None, True)
    try:
        w.log_callback(rec)
    except Exception:
        pass


cdef void http_log(Worker w, Session *s, HttpTxn txn):
    cdef LogRecord rec
    cdef int be
    cdef int64_t base
    if txn.logged or txn.request_line is None:
        return        # already logged, or no request began (HAProxy logs nothing either)
    txn.logged = True
    if w.http_log_callback is None or w.frontends[s.fe].log_mode != LOG_HTTPLOG:
        return
    rec = LogRecord.__new__(LogRecord)
    be = s.be if txn.routed else -1
    rec.frontend, rec.backend = s.fe, be
    rec.server = txn.log_server if be >= 0 else -1
    rec.client = sockaddr_to_tuple(&s.addr)
    rec.start_ms = txn.t_start_real
    base = txn.t_first if txn.t_first >= 0 else txn.t_start      # after the idle time
    rec.t_request = txn.t_head - base if txn.t_head >= 0 else -1
    rec.t_queue = 0 if txn.log_server >= 0 else -1
    if s.t_queued >= 0:
        rec.t_queue = (s.t_dequeued if s.q_target < 0 else w.now) - s.t_queued
    if txn.term0 == b'P' and txn.term1 == b'T':
        # a tarpit: HAProxy logs its hold as the queue time, from the start, and no TR
        rec.t_request = -1
        rec.t_queue = txn.tarpit_until - txn.t_start
    rec.t_connect = txn.t_connect_ms
    rec.t_response = txn.t_response - txn.t_sent if txn.t_response >= 0 and txn.t_sent >= 0 else -1
    rec.t_total = w.now - base
    rec.status = txn.status
    rec.bytes_out = txn.bytes_out
    rec.bytes_in = txn.bytes_in
    rec.t_idle = txn.t_idle
    rec.logasap = False
    if txn.asap:
        # option logasap, at the response head: what is out so far is that head
        rec.logasap = True
        rec.bytes_out = len(txn.out_cli)
    if w.frontends[s.fe].log_addrs:   # only for a format that reads them
        record_addresses(w, s, rec, be, rec.server)
    rec.term = (chr(txn.term0) + chr(txn.term1) if txn.term0 != 45 or s.term0 == 45
                else chr(s.term0) + chr(s.term1)) + txn.ck_client + txn.ck_server
    count_record(w, rec, s.fe, be, txn.log_server)
    rec.retries, rec.redispatched = s.retries_done, s.redispatched
    rec.request_line = txn.request_line
    rec.captures = (txn.captures_req, txn.captures_rsp, txn.cookie_req, txn.cookie_rsp)
    rec.stream = txn.stream
    if rec.stream is None and (<FrontendHooks>w.fe_hooks[s.fe]).streams:
        # a request that never got as far as the rules: its %[...] read the connection
        rec.stream = new_stream(w, s, None, b"", [], b"", txn.sess_vars, txn.requests <= 1)
    try:
        w.http_log_callback(rec)
    except Exception:
        pass


cdef void count_record(Worker w, LogRecord rec, int fe, int be, int srv):
    """The %ac/%fc/%bc/%sc figures: process, frontend, backend and server connections."""
    rec.actconn = fl_atomic_load(w.totals)
    rec.feconn = fl_atomic_load(w.totals + COUNT_FRONTENDS + w.frontends[fe].shm_index)
    rec.beconn = rec.srvconn = 0
    if be >= 0:
        rec.beconn = count_total(w, w.be_off + w.backends[be].shm_index)
        if srv >= 0:
            rec.srvconn = count_total(w, w.srv_off + w.backends[be].servers[srv].shm_index)
