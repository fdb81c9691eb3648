# HTTP flow: stepping a transaction, bodies, tunnels, applets, timeouts.
# Interface: http_flow.pxd.


cdef int flush_staged(Worker w, Side *dst, HttpTxn txn, bint to_server):
    """Write the staged head/page; 1 all out, 0 blocked, -1 error."""
    cdef bytes data = txn.out_srv if to_server else txn.out_cli
    cdef Py_ssize_t off = txn.out_srv_off if to_server else txn.out_cli_off
    cdef int64_t n
    if data is None:
        return 1
    n = side_write(dst, (<char *>data) + off, len(data) - off, w.now)
    if n < 0:
        return -1
    off += n
    if to_server:
        txn.out_srv_off = off
    else:
        txn.out_cli_off = off
        if txn.count_bytes:
            txn.bytes_out += n
    if off < len(data):
        return 0
    if to_server:
        txn.out_srv = None
    else:
        txn.out_cli = None
    return 1


cdef bint http_step(Worker w, int idx, Session *s, HttpTxn txn):
    """One round of progress; False when nothing moved (or the session is gone)."""
    cdef bint moved = False
    cdef int r
    cdef int64_t n, sent
    cdef FrontendRt *fe = &w.frontends[s.fe]

    # -- option abortonclose: a client that closed while its request waits for a server
    #    connection (queued, or connecting) has left: the request is dropped, not sent
    if (s.state == ST_QUEUED or s.state == ST_CONNECTING) and s.be >= 0 and \
            w.backends[s.be].abortonclose and (s.cli.readable == 2 or s.cli.rd_eof):
        if s.state == ST_QUEUED:
            queue_leave(w, s)
        txn.term0, txn.term1 = b'C', (b'Q' if s.state == ST_QUEUED else b'C')
        s.term0, s.term1 = txn.term0, txn.term1
        session_close(w, idx, s)
        return False

    # -- interim responses (103 Early Hints) before anything else
    if txn.interim is not None:
        n = side_write(&s.cli, (<char *>txn.interim) + txn.interim_off,
                       len(txn.interim) - txn.interim_off, w.now)
        if n < 0:
            txn.term0, txn.term1 = b'C', b'D'
            session_close(w, idx, s)
            return False
        txn.interim_off += n
        if txn.count_bytes:
            txn.bytes_out += n
        if txn.interim_off < len(txn.interim):
            return False
        txn.interim = None
        moved = True

    # -- an error page, or the response head, goes to the client first
    if txn.out_cli is not None:
        if txn.after_due and txn.out_cli_off == 0:
            txn.after_due = False
            http_after_response(w, idx, s, txn)
        if fe.logasap and txn.out_cli_off == 0 and not txn.error_sent and not txn.logged \
                and txn.rsp_state == RS_BODY and txn.status > 0:
            txn.asap = True         # option logasap: the line goes out with the head
            http_log(w, s, txn)
            txn.asap = False
        if txn.error_sent and txn.close_client and txn.out_cli_off == 0:
            txn.out_cli = announce_close(txn.out_cli)
        if fe.case_adjust and txn.out_cli_off == 0:
            txn.out_cli = adjust_case(txn.out_cli)
        r = flush_staged(w, &s.cli, txn, False)
        if r < 0:
            txn.term0, txn.term1 = b'C', b'D'
            session_close(w, idx, s)
            return False
        if r == 0:
            return False
        moved = True
        if txn.error_sent:
            http_end_transaction(w, idx, s, txn)
            return s.state != ST_FREE     # kept alive after a local answer: go on
        if txn.rsp_state == RS_TUNNEL:
            http_to_tunnel(w, idx, s)
            return False

    if txn.req_state == RQ_APPLET:
        return http_applet_step(w, idx, s, txn)
    if txn.req_state == RQ_TARPIT:
        return False                   # held: only its timer moves it (http_expired)
    if txn.req_state == RQ_BODY_WAIT:
        return http_body_wait_step(w, idx, s, txn) or moved

    # -- request head
    if txn.req_state == RQ_HEAD:
        if s.cli.buf != NULL and buffered(&s.cli) > 0 and \
                (s.cli.buf[s.cli.head] == 13 or s.cli.buf[s.cli.head] == 10):
            # empty lines before a request line are ignored (RFC 9112 2.2), never forwarded
            n = leading_empty_lines(s.cli.buf + s.cli.head, buffered(&s.cli))
            if n > 0:
                side_consume(&s.cli, &w.pool, n)
                txn.req_scanned = 0
        if s.cli.buf != NULL and txn.find_head(&s.cli, True) >= 0 and \
                txn.req_head_end <= w.head_limit:
            if not http_request_head(w, idx, s, txn):
                return s.state != ST_FREE
            moved = True
        elif buffered(&s.cli) >= w.head_limit:
            capture_error(w, s, False, (s.cli.buf + s.cli.head)[:buffered(&s.cli)],
                          "request head larger than the buffer")
            txn.request_line = b"<BADREQ>"
            http_error(w, idx, s, txn, 400, True, b'P', b'R')   # head larger than a buffer
            return True
        else:
            n = buffered(&s.cli)
            r = side_read(&s.cli, &w.pool, w.now)
            if r == 1:
                if txn.fresh and txn.requests > 0:
                    # first bytes after a keep-alive pause: the request (and its timer) starts
                    # now, once (empty lines sent to hold the connection do not restart it)
                    txn.t_idle = w.now - txn.t_start
                    txn.t_start = txn.t_first = w.now
                    txn.t_start_real = realtime_ms()
                elif txn.fresh:
                    # the first request: from the accept to its first byte is its idle
                    # time (%Ti), its %TR and %Ta count from that byte, as HAProxy's
                    txn.t_first = w.now
                    txn.t_idle = w.now - txn.t_start
                txn.fresh = False
                return True
            if r == -1 or r == -2:
                if buffered(&s.cli) == 0 or r == -2:
                    if txn.requests == 0 and buffered(&s.cli) == 0 and not fe.dontlognull \
                            and not fe.ignore_probes:
                        # a connection that never sent a request: HAProxy logs it as a 400
                        txn.request_line = b"<BADREQ>"
                        txn.status = 400
                    txn.term0, txn.term1 = b'C', b'R'
                    s.term0, s.term1 = b'C', b'R'
                    session_close(w, idx, s)         # client left (between requests: no log)
                    return False
                txn.request_line = b"<BADREQ>"
                http_error(w, idx, s, txn, 400, True, b'C', b'R')
                return True
            return moved

    # -- request head and body to the server
    if txn.req_state == RQ_BODY and s.state == ST_ESTABLISHED:
        if txn.name_at >= 0 and txn.out_srv is txn.request_head_copy and txn.out_srv_off == 0 \
                and s.server < len((<BackendHooks>w.be_hooks[s.be]).server_names):
            # (a dispatch address is no server: it gets no name, as in HAProxy)
            # http-send-name-header: the server's name at the moment the request goes out
            # (a retry or a redispatch sends the copy again, with the new one)
            txn.out_srv = b"".join([
                txn.request_head_copy[:txn.name_at],
                (<BackendHooks>w.be_hooks[s.be]).name_header, b": ",
                (<BackendHooks>w.be_hooks[s.be]).server_names[s.server], b"\r\n",
                txn.request_head_copy[txn.name_at:]])
        if txn.out_srv is not None:
            r = flush_staged(w, &s.srv, txn, True)
            if r < 0:
                return http_server_failed(w, idx, s, txn)
            if r == 0:
                return moved
            if txn.t_sent < 0:
                txn.t_sent = w.now
            moved = True
        if classify_body(&txn.req_chunk, txn.req_mode, &txn.req_remaining, &txn.req_avail,
                         &txn.req_body_seen_end, &s.cli, s.cli.rd_eof) < 0:
            http_error(w, idx, s, txn, 400, True, b'P', b'D')
            return True
        if txn.req_avail > 0:
            sent = side_write(&s.srv, s.cli.buf + s.cli.head, txn.req_avail, w.now)
            if sent < 0:
                return http_server_failed(w, idx, s, txn)
            if sent > 0:
                txn.req_avail -= sent
                txn.bytes_in += sent
                side_consume(&s.cli, &w.pool, sent)
                moved = True
        if txn.req_body_seen_end and txn.req_avail == 0:
            txn.req_state = RQ_DONE
            moved = True
        elif txn.req_avail == 0:
            r = side_read(&s.cli, &w.pool, w.now)
            if r == 1:
                moved = True
            elif r < 0:
                txn.term0, txn.term1 = b'C', b'D'       # client gone in the middle of a body
                session_close(w, idx, s)
                return False

    # -- response
    if txn.rsp_state == RS_HEAD and s.state == ST_ESTABLISHED and txn.out_srv is None:
        if s.srv.buf != NULL and txn.find_head(&s.srv, False) >= 0 and \
                txn.rsp_head_end <= w.head_limit:
            if not http_response_head(w, idx, s, txn):
                return True
            return True
        if buffered(&s.srv) >= w.head_limit:
            capture_error(w, s, True, (s.srv.buf + s.srv.head)[:buffered(&s.srv)],
                          "response head larger than the buffer")
            if http_l7_retry(w, idx, s, txn, RE_JUNK):
                return True
            http_error(w, idx, s, txn, 502, False, b'P', b'H')
            return True
        r = side_read(&s.srv, &w.pool, w.now)
        if r == 1:
            txn.rsp_bytes_in += 1
            return True
        if r < 0:
            if txn.rsp_bytes_in == 0 and buffered(&s.srv) == 0 and txn.reused and not txn.retried \
                    and txn.req_mode == BODY_NONE:
                return http_retry_fresh(w, idx, s, txn)
            # closed with nothing said (empty-response), or in the middle of a head (junk)
            if http_l7_retry(w, idx, s, txn, RE_DISCONNECTED if txn.rsp_bytes_in == 0 and
                             buffered(&s.srv) == 0 else RE_JUNK):
                return True
            http_error(w, idx, s, txn, 502, False, b'S', b'H')
            return True
    elif txn.rsp_state == RS_BODY_WAIT:
        return http_rsp_wait_step(w, idx, s, txn) or moved
    elif txn.rsp_state == RS_BODY:
        if classify_body(&txn.rsp_chunk, txn.rsp_mode, &txn.rsp_remaining, &txn.rsp_avail,
                         &txn.rsp_body_seen_end, &s.srv, s.srv.rd_eof) < 0:
            txn.term0, txn.term1 = b'S', b'D'
            session_close(w, idx, s)
            return False
        if txn.rsp_avail > 0:
            sent = side_write(&s.cli, s.srv.buf + s.srv.head, txn.rsp_avail, w.now)
            if sent < 0:
                txn.term0, txn.term1 = b'C', b'D'
                session_close(w, idx, s)
                return False
            if sent > 0:
                txn.rsp_avail -= sent
                txn.bytes_out += sent
                side_consume(&s.srv, &w.pool, sent)
                moved = True
        if txn.rsp_body_seen_end and txn.rsp_avail == 0:
            if txn.req_state != RQ_DONE:
                # the server answered before the request was over (an early 413, say): that
                # answer is the only one this request gets, and neither connection can be
                # trusted to be in step any more
                txn.close_client = True
                txn.close_server = True
                txn.req_state = RQ_DONE
            http_end_transaction(w, idx, s, txn)
            return s.state != ST_FREE
        if txn.rsp_avail == 0 and not txn.rsp_body_seen_end:
            r = side_read(&s.srv, &w.pool, w.now)
            if r == 1:
                moved = True
            elif r == -1 and txn.rsp_mode == BODY_CLOSE:
                moved = True                            # EOF ends this response
            elif r < 0:
                txn.term0, txn.term1 = b'S', b'D'       # server gone in the middle of a body
                session_close(w, idx, s)
                return False
    return moved


cdef bint http_applet_step(Worker w, int idx, Session *s, HttpTxn txn):
    """Wait for the whole (small) request body, then let the applet answer."""
    cdef int64_t need = txn.req_remaining if txn.req_mode == BODY_LENGTH else 0
    cdef int r
    applet, method, url, headers, keep_alive, version = txn.applet
    if txn.req_mode == BODY_CHUNKED or need > APPLET_MAX_BODY or need > w.bufsize:
        txn.request_line = txn.request_line or b"<BADREQ>"
        http_error(w, idx, s, txn, 413 if txn.req_mode != BODY_CHUNKED else 400, False,
                   b'P', b'R')
        return True
    if buffered(&s.cli) < need:
        r = side_read(&s.cli, &w.pool, w.now)
        if r == 1:
            return True
        if r < 0:
            txn.term0, txn.term1 = b'C', b'R'
            session_close(w, idx, s)
        return False
    body = (s.cli.buf + s.cli.head)[:need] if need else b""
    if need:
        side_consume(&s.cli, &w.pool, need)
        txn.bytes_in += need
    try:
        response = applet(method, url, headers, body, sockaddr_to_tuple(&s.addr)[0], version)
    except Exception:
        response = None
    if response is None:
        http_error(w, idx, s, txn, 500, False, b'P', b'R')
        return True
    http_error(w, idx, s, txn, 200, False, b'L', b'R')
    txn.out_cli = response
    txn.status = int(response[9:12])
    txn.close_client = not keep_alive or w.stopping != 0 or s.cli.rd_eof != 0
    txn.req_error = False
    return True


cdef bint http_server_failed(Worker w, int idx, Session *s, HttpTxn txn):
    if txn.reused and not txn.retried and txn.rsp_bytes_in == 0 and txn.req_mode == BODY_NONE:
        return http_retry_fresh(w, idx, s, txn)
    observe(w, &w.backends[s.be], s.server, OBSERVE_LAYER7, True)
    http_error(w, idx, s, txn, 502, False, b'S', b'H')
    return True


cdef bint http_retry_fresh(Worker w, int idx, Session *s, HttpTxn txn):
    """The kept server connection was closed under us before any answer: once more, fresh."""
    cdef int server = s.server
    txn.retried = True
    txn.reused = False
    http_drop_server(w, s)
    s.server = server
    s.retries_left = w.backends[s.be].retries
    txn.out_srv = txn.request_head_copy
    txn.out_srv_off = 0
    txn.req_state = RQ_BODY
    txn.rsp_state = RS_HEAD
    start_connect(w, idx, s)
    return s.state != ST_FREE


cdef int retry_status_bit(int status) noexcept nogil:
    """The retry-on bit of a response status (0: not one retry-on names)."""
    if status == 401:
        return 1 << 8
    if status == 403:
        return 1 << 9
    if status == 404:
        return 1 << 10
    if status == 408:
        return 1 << 11
    if status == 425:
        return 1 << 12
    if 500 <= status <= 504:
        return 1 << (13 + status - 500)
    return 0


cdef bint http_l7_retry(Worker w, int idx, Session *s, HttpTxn txn, int event):
    """retry-on: the request goes out again (HAProxy's do_l7_retry) on an event the backend
    names, while retries are left and nothing of the response has reached the client; to
    the same server unless option redispatch moves it.  False: answer as without it."""
    cdef BackendRt *be = &w.backends[s.be]
    cdef int server = s.server
    if not txn.l7_retry or not (be.retry_on & event) or server < 0 or \
            txn.out_cli is not None or txn.bytes_out > 0:
        return False
    if s.retries_left <= 0:         # one count with the connection retries, as HAProxy's
        return False
    s.retries_left -= 1
    s.retries_done += 1
    w.be_stats[be.shm_index * STAT_WORDS + STAT_RETRIES] += 1
    w.srv_stats[be.srv_shm[server] * STAT_WORDS + STAT_RETRIES] += 1
    http_drop_server(w, s)
    if retry_redispatches(be, s):
        redispatch_away(w, s, be, server)
    else:
        s.server = server
        # haproxy 2.6 counts a retry to the same server twice (do_l7_retry, then
        # stream_choose_redispatch): so do the statistics here
        w.be_stats[be.shm_index * STAT_WORDS + STAT_RETRIES] += 1
        w.srv_stats[be.srv_shm[server] * STAT_WORDS + STAT_RETRIES] += 1
    txn.reused = False
    txn.rsp_state = RS_HEAD
    txn.rsp_head_end = -1
    txn.rsp_scanned = 0
    txn.rsp_bytes_in = 0
    txn.status = -1
    txn.captures_rsp = None
    txn.term0 = txn.term1 = ord('-')
    txn.out_srv = txn.request_head_copy
    txn.out_srv_off = 0
    txn.req_state = RQ_BODY
    start_connect(w, idx, s)
    return True


cdef void http_to_tunnel(Worker w, int idx, Session *s):
    """After a 101: the TCP relay carries the session (timeout tunnel); the httplog line
    is written when it ends, as HAProxy does."""
    s.http = 2
    s.t_established = w.now
    relay_run(w, idx, s, 3)                     # bytes that came right behind the heads


cdef void http_run(Worker w, int idx, Session *s):
    cdef HttpTxn txn = http_txn(w, idx)
    cdef int rounds
    cdef bint more = False
    for rounds in range(HTTP_ROUNDS):
        if s.state == ST_FREE or s.http != 1:
            return
        more = http_step(w, idx, s, txn)
        if not more:
            break
    if s.state != ST_FREE and s.http == 1:
        arm_timer(w, idx, s)
        if more:
            # Out of rounds (a long pipeline) with work left: no epoll edge will come for
            # it, so run again after this batch.
            w.runq.append((idx, s.gen))


cdef void http_on_event(Worker w, int idx, Session *s, int side, uint32_t events):
    cdef HttpTxn txn
    if side == SIDE_SRV and s.state == ST_CONNECTING:
        on_connect_event(w, idx, s)
        return
    if side == SIDE_SRV and s.state == ST_ESTABLISHED:
        txn = http_txn(w, idx)
        if txn.rsp_state == RS_NONE and side_read(&s.srv, &w.pool, w.now) != 0:
            # the kept connection closed (or spoke) while no request was out: drop it
            http_drop_server(w, s)
    http_run(w, idx, s)


cdef void close_idle_http(Worker w):
    """A soft stop closes the HTTP client connections that wait for a request with no
    byte of one received (HAProxy's idle connections), unless their frontend has option
    idle-close-on-response: those get their next request answered, with a close."""
    cdef uint32_t idx
    cdef Session *s
    cdef HttpTxn txn
    for idx in range(<uint32_t>(w.nchunks * SESSIONS_PER_CHUNK)):
        s = session_at(w, idx)
        if s.state == ST_FREE or s.http != 1 or w.frontends[s.fe].keep_idle_on_stop:
            continue
        txn = http_txn(w, idx)
        if txn.req_state == RQ_HEAD and txn.out_cli is None and txn.interim is None and \
                buffered(&s.cli) == 0 and s.q_target < 0 and \
                (txn.rsp_state == RS_NONE or txn.rsp_state == RS_DONE):
            s.term0, s.term1 = b'c', b'R'
            session_close(w, idx, s)           # quietly, as a keep-alive timeout


cdef int64_t http_deadline(Worker w, int idx, Session *s):
    """The wait for a server connection; timeout http-request (http-keep-alive between
    requests) for a head; timeout client while the client owes or is owed bytes; timeout
    server while a response is awaited or flowing.  Records which one is next in s.timer;
    on a tie, the one listed first."""
    cdef HttpTxn txn = http_txn(w, idx)
    cdef FrontendRt *fe = &w.frontends[s.fe]
    cdef BackendRt *be = &w.backends[s.be] if s.be >= 0 else NULL
    cdef int64_t dl = 0, t
    if txn.req_state == RQ_TARPIT:
        s.timer = TM_TARPIT
        return txn.tarpit_until
    if txn.req_state == RQ_BODY_WAIT:
        return body_wait_deadline(w, s, txn)
    if txn.rsp_state == RS_BODY_WAIT:
        return rsp_wait_deadline(w, s, txn, 0)
    if be != NULL:
        dl = server_wait_deadline(be, s)
    if txn.req_state == RQ_HEAD and txn.out_cli is None:
        t = fe.t_http_request or fe.t_client
        if txn.requests > 0 and buffered(&s.cli) == 0:
            t = fe.t_http_keep_alive or t
        if t and (dl == 0 or txn.t_start + t < dl):
            dl = txn.t_start + t
            s.timer = TM_HTTP_HEAD
    elif fe.t_client and (txn.req_state == RQ_BODY or txn.req_state == RQ_APPLET or
                          txn.out_cli is not None or txn.rsp_avail > 0 or
                          txn.interim is not None):
        # a client that half-closed is under timeout client-fin when one is set
        t = fe.t_client_fin if fe.t_client_fin and s.cli.rd_eof else fe.t_client
        # independent-streams: while the body comes, only reading it keeps the client alive
        t += s.cli.last_rd if fe.indep_streams and txn.req_state == RQ_BODY and \
            not s.cli.rd_eof else s.cli.last
        if dl == 0 or t < dl:
            dl = t
            s.timer = TM_CLIENT
    if be != NULL and (be.t_server or s.t_server_rule) and s.state == ST_ESTABLISHED and \
            (txn.rsp_state == RS_HEAD or txn.rsp_state == RS_BODY):
        t = be.t_server_fin if be.t_server_fin and s.srv.rd_eof else \
            (s.t_server_rule or be.t_server)
        # independent-streams: sending the request body does not keep the server alive
        t += s.srv.last_rd if be.indep_streams else s.srv.last
        # the server's timeout wins a tie with the client's: the response is what is late
        if dl == 0 or t < dl or (t == dl and s.timer == TM_CLIENT):
            dl = t
            s.timer = TM_SERVER
    return dl


cdef void http_expired(Worker w, int idx, Session *s):
    """s.timer's deadline passed (connect and turn-around are handled by session_expired)."""
    cdef HttpTxn txn = http_txn(w, idx)
    cdef FrontendRt *fe = &w.frontends[s.fe]
    if s.timer == TM_QUEUE:
        queue_leave(w, s)
        http_error(w, idx, s, txn, 503, False, b's', b'Q')      # timeout queue
        http_run(w, idx, s)
    elif s.timer == TM_TARPIT:
        http_tarpit_over(w, idx, s, txn)
        http_run(w, idx, s)
    elif s.timer == TM_RSP_BODY_WAIT:
        txn.rsp_wait_fields = txn.rsp_wait_head = None
        http_error(w, idx, s, txn, 504, False, b's', b'R')   # (HAProxy 2.6 logs sR)
        http_run(w, idx, s)
    elif s.timer == TM_BODY_WAIT:
        txn.body_fields = None
        http_error(w, idx, s, txn, 408, False, b'c', b'R')   # the body did not come in time
        http_run(w, idx, s)
    elif s.timer == TM_HTTP_HEAD:
        if buffered(&s.cli) == 0 and (txn.requests > 0 or fe.ignore_probes):
            s.term0, s.term1 = b'c', b'R'
            session_close(w, idx, s)           # keep-alive timeout, or a probe: quietly
            return
        txn.request_line = b"<BADREQ>"
        http_error(w, idx, s, txn, 408, True, b'c', b'R')
        if fe.dontlognull and txn.requests == 0 and buffered(&s.cli) == 0:
            txn.logged = True                   # an empty connection: option dontlognull
        http_run(w, idx, s)
    elif s.timer == TM_SERVER and txn.rsp_state == RS_HEAD:
        if http_l7_retry(w, idx, s, txn, RE_TIMEOUT):
            http_run(w, idx, s)
            return
        observe(w, &w.backends[s.be], s.server, OBSERVE_LAYER7, True)
        http_error(w, idx, s, txn, 504, False, b's', b'H')
        http_run(w, idx, s)
    else:
        if s.timer == TM_SERVER:
            txn.term0, txn.term1 = b's', b'D'
        else:
            txn.term0, txn.term1 = b'c', b'D'
        session_close(w, idx, s)
