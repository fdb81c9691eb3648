# mode http: one HttpTxn per session slot drives the request and response of the
# transaction in flight.  Heads are parsed by httptools (strict llhttp); bodies are
# forwarded as they come, their ends found by the C framing in http/framing.pxd.
# Included by _core.pyx.


# request side
DEF RQ_HEAD = 0          # reading a request head
DEF RQ_BODY = 1          # forwarding its body
DEF RQ_DONE = 2          # request sent, waiting for the response to end
DEF RQ_APPLET = 3        # the proxy answers itself (stats page, Prometheus): reading the body
# response side
DEF RS_NONE = 0          # no request sent yet
DEF RS_HEAD = 1          # reading the response head
DEF RS_BODY = 2          # forwarding its body
DEF RS_DONE = 3
DEF RS_TUNNEL = 4        # 101 Switching Protocols: once its head is out, bytes flow as in TCP

# body framing
DEF BODY_NONE = 0
DEF BODY_LENGTH = 1
DEF BODY_CHUNKED = 2
DEF BODY_CLOSE = 3       # response delimited by the server closing

DEF HTTP_ROUNDS = 64
DEF MAX_CONTENT_LENGTH = 0x3FFFFFFFFFFFFFFF   # beyond what an int64 counter holds: refused
DEF SMALL_BODY = 8192    # body bytes copied behind a head to leave in one send()
DEF ROUTE_DENY = 1       # fastlb.runtime.tables.ROUTE_*
DEF ROUTE_RESPOND = 2
DEF ROUTE_RAW = 3
DEF ROUTE_REJECT = 4
DEF ROUTE_APPLET = 5     # value: applet(method, url, headers, body, client_ip, version) -> raw
                         # response (fastlb/stats/page.py)
DEF APPLET_MAX_BODY = 65536


cdef class _HeadFields:
    """httptools callbacks: collects the target (or reason) and the header fields."""
    cdef public bytes url
    cdef public bytes reason
    cdef public list headers

    def __init__(self):
        self.url = b""
        self.reason = b""
        self.headers = []

    def on_url(self, bytes url):
        self.url += url

    def on_status(self, bytes reason):
        self.reason += reason

    def on_header(self, bytes name, bytes value):
        self.headers.append((name.lower(), value))


cdef class HttpTxn:
    """The HTTP transaction of one session slot; reset for each request on keep-alive."""
    cdef int req_state
    cdef int rsp_state
    cdef int req_mode
    cdef int rsp_mode
    cdef int64_t req_remaining      # BODY_LENGTH: bytes not yet classified
    cdef int64_t rsp_remaining
    cdef int64_t req_avail          # body bytes at the front of the client buffer, ready to go
    cdef int64_t rsp_avail
    cdef bint req_body_seen_end
    cdef bint rsp_body_seen_end
    cdef ChunkParser req_chunk
    cdef ChunkParser rsp_chunk
    cdef bytes out_srv              # rewritten request head, then nothing
    cdef Py_ssize_t out_srv_off
    cdef bytes out_cli              # rewritten response head, or an error page
    cdef Py_ssize_t out_cli_off
    cdef bint close_client          # close the client connection once the response is out
    cdef bint close_server          # do not reuse the server connection after this response
    cdef bint is_head
    cdef bint reused                # request sent on a connection kept from a previous one
    cdef bint retried
    cdef bint error_sent            # out_cli holds an error page: close after it
    cdef bint logged
    cdef bint counted               # in the statistics already (_stats.pxi)
    cdef object applet              # ROUTE_APPLET: (callable, method, url, headers, keep-alive)
    cdef bint req_error             # the request could not be read or parsed (ereq)
    cdef int64_t bytes_in           # request bytes taken from the client
    cdef bint routed                # a backend was chosen for this request (logs name it)
    cdef int log_server             # the server this request went to, for the log (-1: none)
    cdef bint count_bytes           # False for errors raised while reading the head (as HAProxy)
    cdef bint be_counted            # this transaction counts in its backend's current sessions
    cdef object ck_client           # cookie persistence letters for the log ("-": no cookie)
    cdef object ck_server
    cdef bytes method
    cdef object method_seen         # the request as parsed, for an applet
    cdef object url_seen
    cdef object headers_seen
    cdef object version_seen
    cdef int status
    cdef int requests               # transactions on this client connection
    cdef int64_t t_start            # first byte of the request (accept for the first one)
    cdef int64_t t_start_real
    cdef int64_t t_head             # request head complete
    cdef int64_t t_sent             # request head handed to the server
    cdef int64_t t_connect_ms       # -1: no connection made for this request
    cdef int64_t t_response         # response head received
    cdef int64_t bytes_out
    cdef int64_t rsp_bytes_in       # response bytes received for this request
    cdef object request_line        # bytes for the log
    cdef bytes request_head_copy    # what went to the server, for one retry on a fresh connection
    cdef object captures_req        # captured header values (capture request header), or None
    cdef object captures_rsp
    cdef int term0
    cdef int term1

    cdef int64_t req_scanned         # bytes of the pending request head already searched
    cdef int64_t rsp_scanned
    cdef int64_t req_head_end
    cdef int64_t rsp_head_end

    cdef int64_t find_head(self, Side *side, bint request):
        """End of the head at the front of ``side``'s buffer (-1: not yet), searched once."""
        if request:
            self.req_head_end = head_end(side.buf + side.head, side.tail - side.head,
                                         &self.req_scanned)
            return self.req_head_end
        self.rsp_head_end = head_end(side.buf + side.head, side.tail - side.head,
                                     &self.rsp_scanned)
        return self.rsp_head_end

    cdef void reset(self, int64_t now, int64_t now_real):
        self.req_state = RQ_HEAD
        self.rsp_state = RS_NONE
        self.req_mode = BODY_NONE
        self.rsp_mode = BODY_NONE
        self.req_remaining = self.rsp_remaining = 0
        self.req_avail = self.rsp_avail = 0
        self.req_scanned = self.rsp_scanned = 0
        self.req_head_end = self.rsp_head_end = -1
        self.req_body_seen_end = self.rsp_body_seen_end = False
        memset(&self.req_chunk, 0, sizeof(ChunkParser))
        memset(&self.rsp_chunk, 0, sizeof(ChunkParser))
        self.out_srv = None
        self.out_cli = None
        self.out_srv_off = self.out_cli_off = 0
        self.close_client = self.close_server = False
        self.is_head = self.reused = self.retried = self.error_sent = self.logged = False
        self.counted = self.req_error = False
        self.applet = None
        self.method_seen = self.url_seen = self.headers_seen = self.version_seen = None
        self.bytes_in = 0
        self.be_counted = False
        self.ck_client = self.ck_server = "-"
        self.routed = False
        self.log_server = -1
        self.count_bytes = True
        self.status = -1
        self.t_start = now
        self.t_start_real = now_real
        self.t_head = self.t_sent = self.t_response = -1
        self.t_connect_ms = -1
        self.bytes_out = 0
        self.rsp_bytes_in = 0
        self.request_line = None
        self.captures_req = self.captures_rsp = None
        self.term0 = ord('-')
        self.term1 = ord('-')


cdef bint _connection_has(list headers, bytes token):
    cdef bytes name, value
    for name, value in headers:
        if name == b"connection" and token in [t.strip().lower() for t in value.split(b",")]:
            return True
    return False


cdef bint _keep_alive(bytes version, list headers):
    """RFC 9112: 1.1 persists unless "close"; 1.0 closes unless "keep-alive".  (httptools'
    should_keep_alive() cannot be used: llhttp resets its flags when a message completes.)"""
    if _connection_has(headers, b"close"):
        return False
    if version == b"1.0":
        return _connection_has(headers, b"keep-alive")
    return True


cdef list capture_headers(list specs, list headers):
    """HAProxy keeps the last occurrence of each captured header, cut to its length."""
    cdef list values = []
    for name, length in specs:
        wanted = name.encode("latin-1")
        value = ""
        for key, raw in headers:
            if key == wanted:
                value = raw.decode("latin-1")
        values.append(value[:length])
    return values


cdef bytes _header(list headers, bytes wanted):
    for name, value in headers:
        if name == wanted:
            return value
    return None


# ---------------------------------------------------------------------------- flow
# Everything below runs as "make as much progress as possible": a step tries whatever I/O
# it wants and stops at EAGAIN (epoll is edge-triggered, see Worker.watch()); http_run()
# loops over the steps until none moves.

cdef HttpTxn http_txn(Worker w, int idx):
    cdef HttpTxn txn
    while len(w.txns) <= idx:
        w.txns.append(None)
    txn = w.txns[idx]
    if txn is None:
        txn = HttpTxn()
        w.txns[idx] = txn
    return txn


# HAProxy counts a stream in its backend and server while a transaction is in flight
# (not while a keep-alive connection idles), so these follow the transaction: the place
# held in the server (maxconn) is given back when the response is over.
cdef void http_untrack(Worker w, Session *s, HttpTxn txn):
    queue_leave(w, s)
    server_release(w, s)
    if txn.be_counted:
        w.count(w.be_off + w.backends[s.be].shm_index, -1)
        txn.be_counted = False


cdef void http_account(Worker w, Session *s, HttpTxn txn):
    """Statistics of a finished (or cut short) transaction: frontend, then backend and
    server when it went that far."""
    cdef uint64_t *row = w.fe_stats + s.fe * STAT_WORDS
    cdef int64_t tq = 0, tc, tr, tt
    cdef bint rsp_error
    if txn.counted or txn.request_line is None:
        return
    txn.counted = True
    row[SC_BYTES_IN] += txn.bytes_in
    row[SC_BYTES_OUT] += txn.bytes_out
    if txn.req_error:
        row[SC_ERR_REQ] += 1
    else:
        row[SC_REQ_TOT] += 1
    if txn.status > 0:
        stat_status(row, txn.status)
    if not txn.routed or s.be < 0:
        return
    if s.t_queued >= 0:
        tq = (s.t_dequeued if s.q_target < 0 else w.now) - s.t_queued
    tc = txn.t_connect_ms if txn.t_connect_ms >= 0 else 0
    tr = txn.t_response - txn.t_sent if txn.t_response >= 0 and txn.t_sent >= 0 else -1
    tt = w.now - txn.t_start
    rsp_error = txn.error_sent and txn.term1 == b'H' and (txn.status == 502 or txn.status == 504)
    row = w.be_stats + w.backends[s.be].shm_index * STAT_WORDS
    row[SC_BYTES_IN] += txn.bytes_in
    row[SC_BYTES_OUT] += txn.bytes_out
    row[SC_REQ_TOT] += 1
    if txn.status > 0:
        stat_status(row, txn.status)
    if rsp_error:
        row[SC_ERR_RESP] += 1
    stat_abort(row, txn.term0, txn.term1)
    if txn.log_server >= 0:
        stat_times(row, tq, tc, tr, tt)
        if txn.reused:
            row[SC_REUSE] += 1
        row = w.srv_stats + w.backends[s.be].srv_shm[txn.log_server] * STAT_WORDS
        row[SC_BYTES_IN] += txn.bytes_in
        row[SC_BYTES_OUT] += txn.bytes_out
        row[SC_REQ_TOT] += 1
        if txn.t_response >= 0 or rsp_error:
            stat_status(row, txn.status)
        if rsp_error:
            row[SC_ERR_RESP] += 1
        stat_abort(row, txn.term0, txn.term1)
        stat_times(row, tq, tc, tr, tt)
        if txn.reused:
            row[SC_REUSE] += 1


cdef void http_start(Worker w, int idx, Session *s):
    """A new client connection on an HTTP frontend."""
    cdef HttpTxn txn = http_txn(w, idx)
    txn.reset(w.now, s.t_accept_real)
    txn.requests = 0
    s.http = 1
    s.state = ST_IDLE
    http_run(w, idx, s)


cdef int64_t buffered(Side *side):
    return side.tail - side.head


cdef int side_read(Worker w, Side *side):
    """Read into the free end of the side's buffer: 1 data, 0 nothing now, -1 EOF, -2 error."""
    cdef ssize_t n, room
    if side.rd_eof or side.fd < 0 or not side.readable:
        return 0
    if side.buf == NULL:
        side.buf = w.buf_get()
        side.head = side.tail = 0
        if side.buf == NULL:
            return 0
    if side.head > 0 and side.tail == w.bufsize:
        memmove(side.buf, side.buf + side.head, side.tail - side.head)
        side.tail -= side.head
        side.head = 0
    if side.tail == w.bufsize:
        return 0
    room = w.bufsize - side.tail
    n = recv(side.fd, side.buf + side.tail, room, 0)
    if n > 0:
        side.tail += n
        side.bytes_in += n
        side.last = w.now
        note_short_read(side, n, room)
        return 1
    if side.head == side.tail:
        # Nothing came: an idle connection holds no buffer (the pool keeps it warm).
        w.buf_put(side.buf)
        side.buf = NULL
        side.head = side.tail = 0
    if n == 0:
        side.rd_eof = 1
        side.last = w.now
        return -1
    if errno == EAGAIN or errno == EINTR:
        side.readable = 0
        return 0
    return -2


cdef void side_consume(Worker w, Side *side, int64_t n):
    side.head += n
    if side.head == side.tail:
        side.head = side.tail = 0
        w.buf_put(side.buf)
        side.buf = NULL


cdef int64_t side_send(Worker w, Side *dst, const char *data, int64_t n):
    """Bytes accepted by the kernel, 0 when full, -1 on error."""
    cdef ssize_t r
    if n <= 0:
        return 0
    r = send(dst.fd, data, n, MSG_NOSIGNAL)
    if r > 0:
        dst.last = w.now
        return r
    if r < 0 and (errno == EAGAIN or errno == EINTR):
        return 0
    return -1


cdef int flush_staged(Worker w, Side *dst, HttpTxn txn, bint to_server):
    """Write the staged head/page; 1 all out, 0 blocked, -1 error."""
    cdef bytes data = txn.out_srv if to_server else txn.out_cli
    cdef Py_ssize_t off = txn.out_srv_off if to_server else txn.out_cli_off
    cdef int64_t n
    if data is None:
        return 1
    n = side_send(w, dst, (<char *>data) + off, len(data) - off)
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


cdef int classify_body(ChunkParser *chunk, int mode, int64_t *remaining, int64_t *avail,
                       bint *seen_end, Side *side, bint eof):
    """Extend the run of body bytes at the front of the buffer; -1 on a framing error."""
    cdef int64_t fresh = buffered(side) - avail[0]
    cdef int64_t take
    if seen_end[0]:
        return 0
    if mode == BODY_NONE:
        seen_end[0] = True
        return 0
    if mode == BODY_CLOSE:
        avail[0] += fresh
        if eof:
            seen_end[0] = True
        return 0
    if fresh <= 0:
        return 0
    if mode == BODY_LENGTH:
        take = fresh if fresh < remaining[0] else remaining[0]
        remaining[0] -= take
        avail[0] += take
        if remaining[0] == 0:
            seen_end[0] = True
        return 0
    take = chunk_scan(chunk, side.buf + side.head + avail[0], fresh)
    if take < 0:
        return -1
    avail[0] += take
    if chunk.state == CH_DONE:
        seen_end[0] = True
    return 0


cdef object parse_head(bytes head, bint request):
    """(fields, parser) or (None, error text)."""
    cdef _HeadFields fields = _HeadFields()
    parser = httptools.HttpRequestParser(fields) if request else httptools.HttpResponseParser(fields)
    try:
        parser.feed_data(head)
    except httptools.HttpParserUpgrade:
        pass
    except httptools.HttpParserError as exc:
        return None, str(exc)
    return fields, parser


cdef void capture_error(Worker w, Session *s, bint response, bytes data, object reason):
    """Keep the invalid message for "show errors" (rare: the Python edge is fine here)."""
    if w.error_capture is None:
        return
    try:
        w.error_capture(response, s.fe, s.be, s.server if response else -1, data,
                        sockaddr_to_tuple(&s.addr), str(reason))
    except Exception:
        pass


cdef void http_error(Worker w, int idx, Session *s, HttpTxn txn, int status, bint raw,
                     char term0, char term1):
    """Answer with HAProxy's page for ``status`` and close once it is out."""
    txn.out_cli = w.error_page(s.fe, s.be if txn.routed else -1, status, raw)
    txn.out_cli_off = 0
    txn.req_error = raw
    txn.count_bytes = not raw
    txn.status = status
    txn.error_sent = True
    txn.close_client = True
    txn.term0 = term0
    txn.term1 = term1
    txn.req_state = RQ_DONE
    txn.rsp_state = RS_DONE
    if s.state != ST_IDLE or s.server >= 0:
        http_drop_server(w, s)


cdef inline void applet_request(HttpTxn txn, bytes method, object fields, bytes version):
    """Keep the parsed request for the applet (only then: an idle keep-alive connection
    must not hold its last request's headers)."""
    txn.method_seen, txn.url_seen, txn.headers_seen = method, fields.url, fields.headers
    txn.version_seen = version


cdef bint http_request_head(Worker w, int idx, Session *s, HttpTxn txn):
    """Analyse a complete request head; returns False when it could not be forwarded."""
    cdef FrontendRt *fe = &w.frontends[s.fe]
    cdef int64_t end = txn.req_head_end
    cdef bytes head = (s.cli.buf + s.cli.head)[:end]
    cdef bint keep_alive, chunked
    cdef int mode
    cdef bytes te, cl, version, method
    cdef list out
    fields, parser = parse_head(head, True)
    txn.requests += 1
    if fields is None:
        capture_error(w, s, False, head, parser)
        txn.request_line = b"<BADREQ>"
        http_error(w, idx, s, txn, 400, True, b'P', b'R')
        return False
    txn.t_head = w.now
    specs = w.captures[s.fe]
    if specs[0] is not None:
        txn.captures_req = capture_headers(specs[0], fields.headers)
    if specs[1] is not None:
        txn.captures_rsp = [""] * len(specs[1])
    method = parser.get_method()
    version = parser.get_http_version().encode()
    txn.request_line = method + b" " + fields.url + b" HTTP/" + version
    side_consume(w, &s.cli, end)
    txn.bytes_in = end
    txn.req_scanned = 0
    keep_alive = _keep_alive(version, fields.headers)
    txn.is_head = method == b"HEAD"
    te = _header(fields.headers, b"transfer-encoding")
    cl = _header(fields.headers, b"content-length")
    if te is not None:
        txn.req_mode = BODY_CHUNKED
    elif cl is not None and int(cl) > 0:
        if int(cl) > MAX_CONTENT_LENGTH:
            txn.request_line = b"<BADREQ>"
            http_error(w, idx, s, txn, 400, True, b'P', b'R')
            return False
        txn.req_mode = BODY_LENGTH
        txn.req_remaining = int(cl)
    else:
        txn.req_mode = BODY_NONE
    # a stopping worker answers this request, then closes: the client's next request
    # goes to a new connection, which the new workers accept
    txn.close_client = not keep_alive or w.stopping != 0
    router = w.routers[s.fe]
    if router is not None:
        verdict = router(method, fields.url, fields.headers, sockaddr_to_tuple(&s.addr)[0],
                         w.listeners[s.listener].port, version)
        if verdict[0] == ROUTE_APPLET:
            applet_request(txn, method, fields, version)
        if not http_local_answer(w, idx, s, txn, verdict, keep_alive):
            return False
        value = verdict[1]
        if value != s.be:
            # another backend for this request: the kept server connection is of no use
            http_drop_server(w, s)
            s.be = value
    txn.routed = True
    if s.be < 0:
        http_error(w, idx, s, txn, 503, False, b'S', b'C')
        return False
    rules = w.be_request_rules[s.be]
    if rules is not None:
        verdict = rules(method, fields.url, fields.headers, sockaddr_to_tuple(&s.addr)[0],
                        w.listeners[s.listener].port, version)
        if verdict is not None and verdict[0] == ROUTE_APPLET:
            applet_request(txn, method, fields, version)
        if verdict is not None and not http_local_answer(w, idx, s, txn, verdict, keep_alive):
            return False
    mode = fe.http_close if fe.http_close > w.backends[s.be].http_close else w.backends[s.be].http_close
    if mode == 2:
        txn.close_client = True          # option httpclose: both sides close after this one
    elif mode == 1:
        txn.close_server = True          # option http-server-close: only the server side
    w.count(w.be_off + w.backends[s.be].shm_index, 1)
    txn.be_counted = True
    cdef uint64_t *be_row = w.be_stats + w.backends[s.be].shm_index * STAT_WORDS
    be_row[SC_SESS_TOT] += 1
    stat_max(be_row, SC_SMAX, <int64_t>w.slot[w.be_off + w.backends[s.be].shm_index])
    s.t_queued = -1
    s.forced_server = -1
    persistence = w.cookies[s.be]
    if persistence is not None:
        server, letter = persistence.on_request(fields.headers)
        if server >= 0 and not persist_usable(w, &w.backends[s.be], server):
            letter = "D"                 # its server is down: balanced like a new client
            server = -1
        s.forced_server = server
        txn.ck_client = letter
        txn.method = method
    if w.backends[s.be].algo >= LB_SOURCE:
        set_http_key(w, s, fields.url, fields.headers)
    out = [method, b" ", fields.url, b" HTTP/", version, b"\r\n"]
    for name, value in fields.headers:
        if name == b"connection" and not _connection_has(fields.headers, b"upgrade"):
            continue
        out += [name, b": ", value, b"\r\n"]
    w.add_request_headers(s.fe, out, fields.headers, s)
    if txn.close_client or txn.close_server:
        out.append(b"connection: close\r\n")
    out.append(b"\r\n")
    txn.req_state = RQ_BODY
    cdef int64_t unsent = buffered(&s.cli)
    append_small_body(w, &s.cli, out, &txn.req_chunk, txn.req_mode, &txn.req_remaining,
                      &txn.req_avail, &txn.req_body_seen_end)
    txn.bytes_in += unsent - buffered(&s.cli)
    txn.out_srv = txn.request_head_copy = b"".join(out)
    txn.out_srv_off = 0
    txn.rsp_state = RS_HEAD
    cdef int chosen = assign_server(w, idx, s)
    if chosen == ASSIGN_QUEUED:
        # waits for a place; a kept server connection is of no use meanwhile
        http_close_server_side(w, s)
        return True
    if chosen < 0:
        http_error(w, idx, s, txn, 503, False, b'S', b'C')
        return False
    return http_assigned(w, idx, s, txn, chosen)


cdef bint http_assigned(Worker w, int idx, Session *s, HttpTxn txn, int chosen):
    """The request has its server: send it on the kept connection when it goes to the same
    server (http-reuse safe), else on a new one."""
    txn.log_server = chosen
    if not (s.srv.fd >= 0 and s.state == ST_ESTABLISHED and chosen == s.server):
        if not http_park_server(w, s):
            http_drop_server(w, s)
        s.retries_left = w.backends[s.be].retries
        s.retries_done = 0
        s.redispatched = 0
        # http-reuse safe: the first request of a session goes over its own connection;
        # later ones may take an idle connection another session left to that server
        if txn.requests <= 1 or not http_take_idle(w, idx, s, chosen):
            s.server = chosen
            w.start_connect(idx, s)
            return s.state != ST_FREE
    txn.reused = True
    txn.t_sent = w.now
    txn.t_connect_ms = 0
    return True


cdef bint http_local_answer(Worker w, int idx, Session *s, HttpTxn txn, tuple verdict,
                            bint keep_alive):
    """Carry out a rule's verdict; True when the request goes on to a backend."""
    action, value = verdict
    if action == ROUTE_DENY:
        w.fe_stats[s.fe * STAT_WORDS + SC_DENIED_REQ] += 1
        http_error(w, idx, s, txn, value, False, b'P', b'R')
        return False
    if action == ROUTE_RESPOND or action == ROUTE_RAW:
        w.fe_stats[s.fe * STAT_WORDS + SC_INTERCEPTED] += 1
        # monitor-uri, http-request return / redirect: answered here, never forwarded
        http_error(w, idx, s, txn, value if action == ROUTE_RESPOND else 200, False, b'L', b'R')
        if action == ROUTE_RAW:
            txn.out_cli = value
            txn.status = int(value[9:12])
        else:
            txn.logged = True                     # HAProxy does not log monitor requests
        txn.close_client = txn.req_mode != BODY_NONE or not keep_alive
        return False
    if action == ROUTE_APPLET:
        w.fe_stats[s.fe * STAT_WORDS + SC_INTERCEPTED] += 1
        txn.applet = (value, txn.method_seen, txn.url_seen, txn.headers_seen, keep_alive,
                      txn.version_seen)
        txn.req_state = RQ_APPLET
        return False
    if action == ROUTE_REJECT:
        s.term0, s.term1 = b'P', b'R'
        txn.term0, txn.term1 = b'P', b'R'
        txn.status = -1
        w.session_close(idx, s)                 # no answer at all
        return False
    return True


# ---------------------------------------------------------------------------- idle pool
# A worker keeps the idle server connections its sessions leave behind when their next
# request goes to another server, up to IDLE_PER_SERVER per server, so that round robin
# over several servers does not cost a new connection per request.  A pooled socket stays
# in the epoll set under a KIND_IDLE tag: if the server speaks or closes, it is dropped.
cdef bint http_park_server(Worker w, Session *s):
    cdef uint32_t k
    cdef epoll_event ev
    if s.srv.fd < 0 or s.state != ST_ESTABLISHED or s.server < 0 or s.be < 0 or \
            s.srv.head != s.srv.tail or s.srv.rd_eof or s.srv.wr_shut or s.srv.piped:
        return False
    k = w.backends[s.be].srv_shm[s.server]
    if w.idle_len[k] >= IDLE_PER_SERVER:
        return False
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET
    ev.data.u64 = pack_data(<uint32_t>s.srv.fd, KIND_IDLE, k, 0)
    if epoll_ctl(w.epfd, EPOLL_CTL_MOD, s.srv.fd, &ev) != 0:
        return False
    w.idle_fds[k * IDLE_PER_SERVER + w.idle_len[k]] = s.srv.fd
    w.idle_len[k] += 1
    s.srv.fd = -1                       # the pool owns the socket now
    http_drop_server(w, s)
    return True


cdef bint http_take_idle(Worker w, int idx, Session *s, int srv):
    cdef uint32_t k = w.backends[s.be].srv_shm[srv]
    cdef int fd
    cdef epoll_event ev
    if w.idle_len[k] == 0:
        return False
    w.idle_len[k] -= 1
    fd = w.idle_fds[k * IDLE_PER_SERVER + w.idle_len[k]]    # the most recently used
    s.srv_epoch += 1
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET
    ev.data.u64 = pack_data(side_tag(s, SIDE_SRV), KIND_SESSION, idx, SIDE_SRV)
    if epoll_ctl(w.epfd, EPOLL_CTL_MOD, fd, &ev) != 0:
        close(fd)
        return False
    side_init(&s.srv)
    s.srv.fd = fd
    s.srv.last = w.now
    s.server = srv
    s.state = ST_ESTABLISHED
    s.t_established = w.now
    return True


cdef void idle_event(Worker w, uint32_t k, int fd, uint32_t events):
    """The server spoke or hung up on a pooled connection: drop it."""
    cdef int i, n
    cdef char probe
    if not events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR) or k >= <uint32_t>w.nservers_total:
        return
    n = w.idle_len[k]
    for i in range(n):
        if w.idle_fds[k * IDLE_PER_SERVER + i] == fd:
            # (a stale event may name a descriptor reused since: check it really has news)
            if recv(fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT) < 0 and errno == EAGAIN:
                return
            w.idle_fds[k * IDLE_PER_SERVER + i] = w.idle_fds[k * IDLE_PER_SERVER + n - 1]
            w.idle_len[k] = n - 1
            close(fd)
            return


cdef void http_drop_server(Worker w, Session *s):
    """Close the session's server connection (the transaction keeps its counts)."""
    queue_leave(w, s)
    http_close_server_side(w, s)
    s.state = ST_IDLE


cdef void http_close_server_side(Worker w, Session *s):
    w.close_side(&s.srv)
    w.buf_put(s.srv.buf)
    side_init(&s.srv)
    s.server = -1


cdef bint http_response_head(Worker w, int idx, Session *s, HttpTxn txn):
    cdef int64_t end = txn.rsp_head_end
    cdef bytes head = (s.srv.buf + s.srv.head)[:end]
    cdef int status
    cdef bytes te, cl, version
    cdef list out
    fields, parser = parse_head(head, False)
    if fields is None:
        capture_error(w, s, True, head, parser)
        observe(w, &w.backends[s.be], s.server, 7, True)
        http_error(w, idx, s, txn, 502, False, b'P', b'H')
        return False
    status = parser.get_status_code()
    version = parser.get_http_version().encode()
    side_consume(w, &s.srv, end)
    txn.rsp_scanned = 0           # an interim (1xx) head may be followed by the final one
    if 100 <= status < 200 and status != 101:
        # interim response (100-continue): forward it and wait for the final one
        txn.out_cli = head
        txn.out_cli_off = 0
        return True
    if status == 101:
        # protocol switch (WebSocket): forwarded untouched, then a tunnel
        txn.status = status
        txn.t_response = w.now
        txn.out_cli = head
        txn.out_cli_off = 0
        txn.rsp_state = RS_TUNNEL
        return True
    txn.status = status
    txn.t_response = w.now
    observe(w, &w.backends[s.be], s.server, 7, status >= 500 and status != 501 and status != 505)
    specs = w.captures[s.fe]
    if specs[1] is not None:
        txn.captures_rsp = capture_headers(specs[1], fields.headers)
    persistence = w.cookies[s.be]
    if persistence is not None:
        txn.ck_server = persistence.on_response(fields.headers, s.server, txn.ck_client,
                                                txn.method)
    editor = w.be_response_editors[s.be]
    if editor is not None:
        editor(fields.headers)                  # backend http-response rules, then frontend's
    editor = w.response_editors[s.fe]
    if editor is not None:
        editor(fields.headers)
    te = _header(fields.headers, b"transfer-encoding")
    cl = _header(fields.headers, b"content-length")
    if txn.is_head or status == 204 or status == 304:
        txn.rsp_mode = BODY_NONE
    elif te is not None:
        txn.rsp_mode = BODY_CHUNKED
    elif cl is not None:
        if int(cl) > MAX_CONTENT_LENGTH:
            http_error(w, idx, s, txn, 502, False, b'P', b'H')
            return False
        txn.rsp_mode = BODY_LENGTH if int(cl) > 0 else BODY_NONE
        txn.rsp_remaining = int(cl)
    else:
        txn.rsp_mode = BODY_CLOSE
        txn.close_client = True
    if not _keep_alive(version, fields.headers) or txn.rsp_mode == BODY_CLOSE or txn.is_head:
        # HEAD: the server may still send body bytes; never reuse that connection.
        txn.close_server = True
    out = [b"HTTP/", version, b" ", str(status).encode(), b" ", fields.reason, b"\r\n"]
    for name, value in fields.headers:
        if name == b"connection":
            continue
        out += [name, b": ", value, b"\r\n"]
    if w.stopping:
        txn.close_client = True
    if txn.close_client:
        out.append(b"connection: close\r\n")
    out.append(b"\r\n")
    txn.rsp_state = RS_BODY
    append_small_body(w, &s.srv, out, &txn.rsp_chunk, txn.rsp_mode, &txn.rsp_remaining,
                      &txn.rsp_avail, &txn.rsp_body_seen_end)
    txn.out_cli = b"".join(out)
    txn.out_cli_off = 0
    return True


cdef void append_small_body(Worker w, Side *side, list out, ChunkParser *chunk, int mode,
                            int64_t *remaining, int64_t *avail, bint *seen_end):
    """Put the body bytes already received behind the head, when few: one send() for the
    whole message instead of two (on loopback each send costs the peer a wake-up)."""
    if mode == BODY_CLOSE or side.buf == NULL:
        return
    if classify_body(chunk, mode, remaining, avail, seen_end, side, side.rd_eof) < 0:
        return                                  # the body step will see the error again
    if 0 < avail[0] <= SMALL_BODY:
        out.append((side.buf + side.head)[:avail[0]])
        side_consume(w, side, avail[0])
        avail[0] = 0


cdef void http_end_transaction(Worker w, int idx, Session *s, HttpTxn txn):
    """The response is out: log, then close or wait for the next request."""
    http_untrack(w, s, txn)
    w.http_log(s, txn)
    http_account(w, s, txn)
    if txn.close_server or txn.close_client:
        http_drop_server(w, s)
    if txn.close_client:
        w.session_close(idx, s)
        return
    txn.reset(w.now, realtime_ms())


cdef bint http_step(Worker w, int idx, Session *s, HttpTxn txn):
    """One round of progress; False when nothing moved (or the session is gone)."""
    cdef bint moved = False
    cdef int r
    cdef int64_t n, sent
    cdef FrontendRt *fe = &w.frontends[s.fe]

    # -- an error page, or the response head, goes to the client first
    if txn.out_cli is not None:
        r = flush_staged(w, &s.cli, txn, False)
        if r < 0:
            txn.term0, txn.term1 = b'C', b'D'
            w.session_close(idx, s)
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

    # -- request head
    if txn.req_state == RQ_HEAD:
        if s.cli.buf != NULL and txn.find_head(&s.cli, True) >= 0:
            if not http_request_head(w, idx, s, txn):
                return s.state != ST_FREE
            moved = True
        elif buffered(&s.cli) >= w.bufsize:
            capture_error(w, s, False, (s.cli.buf + s.cli.head)[:buffered(&s.cli)],
                          "request head larger than the buffer")
            txn.request_line = b"<BADREQ>"
            http_error(w, idx, s, txn, 400, True, b'P', b'R')   # head larger than a buffer
            return True
        else:
            n = buffered(&s.cli)
            r = side_read(w, &s.cli)
            if r == 1:
                if n == 0 and txn.requests > 0:
                    # first bytes after a keep-alive pause: the request (and its timer) starts now
                    txn.t_start = w.now
                    txn.t_start_real = realtime_ms()
                return True
            if r == -1 or r == -2:
                if buffered(&s.cli) == 0 or r == -2:
                    if txn.requests == 0 and buffered(&s.cli) == 0 and not fe.dontlognull:
                        # a connection that never sent a request: HAProxy logs it as a 400
                        txn.request_line = b"<BADREQ>"
                        txn.status = 400
                    txn.term0, txn.term1 = b'C', b'R'
                    s.term0, s.term1 = b'C', b'R'
                    w.session_close(idx, s)         # client left (between requests: no log)
                    return False
                txn.request_line = b"<BADREQ>"
                http_error(w, idx, s, txn, 400, True, b'C', b'R')
                return True
            return moved

    # -- request head and body to the server
    if txn.req_state == RQ_BODY and s.state == ST_ESTABLISHED:
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
            sent = side_send(w, &s.srv, s.cli.buf + s.cli.head, txn.req_avail)
            if sent < 0:
                return http_server_failed(w, idx, s, txn)
            if sent > 0:
                txn.req_avail -= sent
                txn.bytes_in += sent
                side_consume(w, &s.cli, sent)
                moved = True
        if txn.req_body_seen_end and txn.req_avail == 0:
            txn.req_state = RQ_DONE
            moved = True
        elif txn.req_avail == 0:
            r = side_read(w, &s.cli)
            if r == 1:
                moved = True
            elif r < 0:
                txn.term0, txn.term1 = b'C', b'D'       # client gone in the middle of a body
                w.session_close(idx, s)
                return False

    # -- response
    if txn.rsp_state == RS_HEAD and s.state == ST_ESTABLISHED and txn.out_srv is None:
        if s.srv.buf != NULL and txn.find_head(&s.srv, False) >= 0:
            if not http_response_head(w, idx, s, txn):
                return True
            return True
        if buffered(&s.srv) >= w.bufsize:
            capture_error(w, s, True, (s.srv.buf + s.srv.head)[:buffered(&s.srv)],
                          "response head larger than the buffer")
            http_error(w, idx, s, txn, 502, False, b'P', b'H')
            return True
        r = side_read(w, &s.srv)
        if r == 1:
            txn.rsp_bytes_in += 1
            return True
        if r < 0:
            if txn.rsp_bytes_in == 0 and buffered(&s.srv) == 0 and txn.reused and not txn.retried \
                    and txn.req_mode == BODY_NONE:
                return http_retry_fresh(w, idx, s, txn)
            http_error(w, idx, s, txn, 502, False, b'S', b'H')
            return True
    elif txn.rsp_state == RS_BODY:
        if classify_body(&txn.rsp_chunk, txn.rsp_mode, &txn.rsp_remaining, &txn.rsp_avail,
                         &txn.rsp_body_seen_end, &s.srv, s.srv.rd_eof) < 0:
            txn.term0, txn.term1 = b'S', b'D'
            w.session_close(idx, s)
            return False
        if txn.rsp_avail > 0:
            sent = side_send(w, &s.cli, s.srv.buf + s.srv.head, txn.rsp_avail)
            if sent < 0:
                txn.term0, txn.term1 = b'C', b'D'
                w.session_close(idx, s)
                return False
            if sent > 0:
                txn.rsp_avail -= sent
                txn.bytes_out += sent
                side_consume(w, &s.srv, sent)
                moved = True
        if txn.rsp_body_seen_end and txn.rsp_avail == 0 and txn.req_state == RQ_DONE:
            http_end_transaction(w, idx, s, txn)
            return s.state != ST_FREE
        if txn.rsp_avail == 0 and not txn.rsp_body_seen_end:
            r = side_read(w, &s.srv)
            if r == 1:
                moved = True
            elif r == -1 and txn.rsp_mode == BODY_CLOSE:
                moved = True                            # EOF ends this response
            elif r < 0:
                txn.term0, txn.term1 = b'S', b'D'       # server gone in the middle of a body
                w.session_close(idx, s)
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
        r = side_read(w, &s.cli)
        if r == 1:
            return True
        if r < 0:
            txn.term0, txn.term1 = b'C', b'R'
            w.session_close(idx, s)
        return False
    body = (s.cli.buf + s.cli.head)[:need] if need else b""
    if need:
        side_consume(w, &s.cli, need)
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
    txn.close_client = not keep_alive
    txn.req_error = False
    return True


cdef bint http_server_failed(Worker w, int idx, Session *s, HttpTxn txn):
    if txn.reused and not txn.retried and txn.rsp_bytes_in == 0 and txn.req_mode == BODY_NONE:
        return http_retry_fresh(w, idx, s, txn)
    observe(w, &w.backends[s.be], s.server, 7, True)
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
    w.start_connect(idx, s)
    return s.state != ST_FREE


cdef void http_to_tunnel(Worker w, int idx, Session *s):
    """After a 101: the TCP relay carries the session (timeout tunnel); the httplog line
    is written when it ends, as HAProxy does."""
    s.http = 2
    s.t_established = w.now
    w.tcp_run(idx, s, 3)                     # bytes that came right behind the heads


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
        w.arm_timer(idx, s)
        if more:
            # Out of rounds (a long pipeline) with work left: no epoll edge will come for
            # it, so run again after this batch.
            w.runq.append((idx, s.gen))


cdef void http_on_event(Worker w, int idx, Session *s, int side, uint32_t events):
    cdef HttpTxn txn
    if side == SIDE_SRV and s.state == ST_CONNECTING:
        w.on_connect_event(idx, s)
        return
    if side == SIDE_SRV and s.state == ST_ESTABLISHED:
        txn = http_txn(w, idx)
        if txn.rsp_state == RS_NONE and side_read(w, &s.srv) != 0:
            # the kept connection closed (or spoke) while no request was out: drop it
            http_drop_server(w, s)
    http_run(w, idx, s)


cdef inline int64_t earliest(int64_t a, int64_t b):
    if a == 0:
        return b
    if b == 0 or a < b:
        return a
    return b


cdef int64_t http_deadline(Worker w, int idx, Session *s):
    cdef HttpTxn txn = http_txn(w, idx)
    cdef FrontendRt *fe = &w.frontends[s.fe]
    cdef BackendRt *be = &w.backends[s.be] if s.be >= 0 else NULL
    cdef int64_t dl = 0, t
    if s.state == ST_CONNECTING and be != NULL and be.t_connect:
        dl = s.t_connect + be.t_connect
    elif s.state == ST_QUEUED and be != NULL and be.t_queue:
        dl = s.t_queued + be.t_queue
    elif s.state == ST_TURNAROUND:
        dl = s.wake_at
    if txn.req_state == RQ_HEAD and txn.out_cli is None:
        t = fe.t_http_request or fe.t_client
        if txn.requests > 0 and buffered(&s.cli) == 0:
            t = fe.t_http_keep_alive or t
        if t:
            dl = earliest(dl, txn.t_start + t)
    elif fe.t_client and (txn.req_state == RQ_BODY or txn.req_state == RQ_APPLET or
                          txn.out_cli is not None or txn.rsp_avail > 0):
        # a client that half-closed is under timeout client-fin when one is set
        t = fe.t_client_fin if fe.t_client_fin and s.cli.rd_eof else fe.t_client
        dl = earliest(dl, s.cli.last + t)
    if be != NULL and be.t_server and s.state == ST_ESTABLISHED and \
            (txn.rsp_state == RS_HEAD or txn.rsp_state == RS_BODY):
        t = be.t_server_fin if be.t_server_fin and s.srv.rd_eof else be.t_server
        dl = earliest(dl, s.srv.last + t)
    return dl


cdef void http_expired(Worker w, int idx, Session *s):
    cdef HttpTxn txn = http_txn(w, idx)
    cdef FrontendRt *fe = &w.frontends[s.fe]
    cdef BackendRt *be = &w.backends[s.be] if s.be >= 0 else NULL
    if s.state == ST_CONNECTING and be != NULL and be.t_connect and s.t_connect + be.t_connect <= w.now:
        w.connect_failed(idx, s, 1)
        return
    if s.state == ST_TURNAROUND and s.wake_at <= w.now:
        w.start_connect(idx, s)
        return
    if s.state == ST_QUEUED and be != NULL and be.t_queue and s.t_queued + be.t_queue <= w.now:
        queue_leave(w, s)
        http_error(w, idx, s, txn, 503, False, b's', b'Q')      # timeout queue
        http_run(w, idx, s)
        return
    if txn.req_state == RQ_HEAD and txn.out_cli is None:
        if txn.requests > 0 and buffered(&s.cli) == 0:
            s.term0, s.term1 = b'c', b'R'
            w.session_close(idx, s)           # keep-alive timeout: close quietly
            return
        txn.request_line = b"<BADREQ>"
        http_error(w, idx, s, txn, 408, True, b'c', b'R')
        if fe.dontlognull and txn.requests == 0 and buffered(&s.cli) == 0:
            txn.logged = True                   # an empty connection: option dontlognull
        http_run(w, idx, s)
        return
    cdef int64_t t_server = 0
    if be != NULL:
        t_server = be.t_server_fin if be.t_server_fin and s.srv.rd_eof else be.t_server
    if t_server and s.state == ST_ESTABLISHED and txn.rsp_state == RS_HEAD \
            and s.srv.last + t_server <= w.now:
        observe(w, be, s.server, 7, True)
        http_error(w, idx, s, txn, 504, False, b's', b'H')
        http_run(w, idx, s)
        return
    if t_server and txn.rsp_state == RS_BODY and s.srv.last + t_server <= w.now:
        txn.term0, txn.term1 = b's', b'D'
    else:
        txn.term0, txn.term1 = b'c', b'D'
    w.session_close(idx, s)


# ---------------------------------------------------------------------------- measurement
# The per-request pieces above on their own, for the micro-benchmarks in bench/micro
# (pytest-benchmark).  The worker loop does not use these.

def measure_parse_request(bytes raw):
    """What the loop does with a request head: find its end, parse it (httptools), read
    the framing and persistence headers.  Returns (url, headers, keep_alive, length)."""
    cdef int64_t scanned = 0
    cdef int64_t end = head_end(<char *>raw, len(raw), &scanned)
    if end < 0:
        raise ValueError("incomplete head")
    fields, parser = parse_head(raw[:end], True)
    if fields is None:
        raise ValueError(parser)
    version = parser.get_http_version().encode()
    cl = _header(fields.headers, b"content-length")
    return (fields.url, fields.headers, _keep_alive(version, fields.headers),
            int(cl) if cl is not None else -1)


def measure_rr_picks(tuple order, int prefix, int rounds):
    """``rounds`` round-robin picks over ``order`` (a lb/sequence.py table) with a private
    position word; returns the last server picked."""
    cdef uint64_t position = 0
    cdef int *sequence = int_array(list(order))
    cdef int i, picked = -1
    try:
        for i in range(rounds):
            picked = rr_pick(&position, sequence, prefix, len(order))
    finally:
        free(sequence)
    return picked
