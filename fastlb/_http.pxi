# mode http: one HttpTxn per session slot drives the request and response of the
# transaction in flight.  Heads are parsed by the strict C parser of http/framing.pxd;
# bodies are forwarded as they come, their ends found by its chunk parser.
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


cdef class Head:
    """A parsed head: the spans of framing.pxd turned into bytes (names lower case)."""
    cdef public bytes method
    cdef public bytes url
    cdef public bytes version       # b"1.0" or b"1.1" (HTTP/1.2 and later minors: 1.1)
    cdef public int status
    cdef public bytes reason
    cdef public list headers


HEAD_ERRORS = {
    HE_METHOD: "method not a token followed by one space", HE_TARGET: "forbidden byte in the target",
    HE_VERSION: "missing or unsupported HTTP version", HE_LINE_END: "line not ended by CRLF",
    HE_NAME: "malformed header name", HE_VALUE: "control character in a header value",
    HE_FOLD: "obsolete line folding", HE_TOO_MANY: "too many headers",
    HE_STATUS: "malformed status line",
}


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
    cdef bint is_connect            # CONNECT: a 2xx answer turns the session into a tunnel
    cdef bint fresh                 # no byte of this request has arrived yet
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
        self.is_connect = False
        self.fresh = True
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
    """RFC 9112: 1.1 persists unless "close"; 1.0 closes unless "keep-alive"."""
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
    row[STAT_BYTES_IN] += txn.bytes_in
    row[STAT_BYTES_OUT] += txn.bytes_out
    if txn.req_error:
        row[STAT_ERR_REQ] += 1
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
    rsp_error = txn.error_sent and txn.term1 == b'H' and (txn.status == 502 or txn.status == 504)
    row = w.be_stats + w.backends[s.be].shm_index * STAT_WORDS
    row[STAT_BYTES_IN] += txn.bytes_in
    row[STAT_BYTES_OUT] += txn.bytes_out
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
        row[STAT_BYTES_IN] += txn.bytes_in
        row[STAT_BYTES_OUT] += txn.bytes_out
        row[STAT_REQ_TOT] += 1
        if txn.t_response >= 0 or rsp_error:
            stat_status(row, txn.status)
        if rsp_error:
            row[STAT_ERR_RESP] += 1
        stat_abort(row, txn.term0, txn.term1)
        stat_times(row, tq, tc, tr, tt)
        if txn.reused:
            row[STAT_REUSE] += 1


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
    """(Head, None), or (None, error text) for a head framing.pxd refuses."""
    cdef HeadSpans h
    cdef const char *raw = head
    cdef int64_t n = len(head), end
    cdef int i
    cdef Head out = Head()
    with nogil:
        end = parse_request_head(raw, n, &h) if request else parse_response_head(raw, n, &h)
    if end == HEAD_ERROR:
        return None, HEAD_ERRORS.get(h.error, "malformed head")
    if end != n:
        return None, "bytes after the end of the head"
    if request:
        out.method = head[h.method.off:h.method.off + h.method.len]
        out.url = head[h.target.off:h.target.off + h.target.len]
    else:
        out.status = h.status
        out.reason = head[h.reason.off:h.reason.off + h.reason.len]
    out.version = b"1.0" if h.minor == 0 else b"1.1"
    out.headers = [(head[h.names[i].off:h.names[i].off + h.names[i].len].lower(),
                    head[h.values[i].off:h.values[i].off + h.values[i].len])
                   for i in range(h.nfields)]
    return out, None


cdef list header_list(list headers, bytes wanted):
    """Every element of a comma-separated header, over all its lines, stripped."""
    cdef list out = []
    for name, value in headers:
        if name == wanted:
            out += [v.strip(b" \t") for v in value.split(b",")]
    return out


cdef inline bint bytes_safe(bytes value):
    """No CR, LF or NUL: what may stand in a header, a status line or a Location."""
    cdef const char *p = value
    cdef Py_ssize_t i
    for i in range(len(value)):
        if p[i] == 13 or p[i] == 10 or p[i] == 0:
            return False
    return True


cdef bint fields_safe(list headers):
    """Every (name, value) of a list some rule or editor touched may be written as is."""
    for name, value in headers:
        if not isinstance(name, bytes) or not isinstance(value, bytes) or not name or \
                not bytes_safe(name) or not bytes_safe(value) or b":" in name or \
                b" " in name:
            return False
    return True


cdef int64_t content_length(list headers):
    """The Content-Length (-1: none, -2: invalid or ambiguous).  Repeated identical values
    are one value, as in HAProxy; different ones, a sign, a space inside or anything but
    digits is an error (RFC 9112 6.3)."""
    cdef list values = header_list(headers, b"content-length")
    cdef bytes first
    if not values:
        return -1
    first = values[0]
    for v in values:
        if v != first or not v or not v.isdigit() or len(v) > 18:
            return -2
    return int(first)


cdef int transfer_chunked(list headers):
    """0: no Transfer-Encoding, 1: just "chunked", 2: chunked last after other codings
    (well formed, but HAProxy 2.6 refuses such a request with 422), -1: anything else."""
    cdef list codings = [c.lower() for c in header_list(headers, b"transfer-encoding")]
    if not codings:
        return 0
    if codings[len(codings) - 1] != b"chunked" or codings.count(b"chunked") != 1:
        return -1
    return 1 if len(codings) == 1 else 2          # (an empty element counts as a coding)


cdef bytes authority_of(bytes url):
    """The authority of an absolute-form target (lower case, default port dropped), or None."""
    cdef Py_ssize_t colon = url.find(b"://")
    cdef bytes scheme, authority
    if colon <= 0:
        return None
    scheme = url[:colon].lower()
    # RFC 3986 scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), as HAProxy checks
    if not (97 <= scheme[0] <= 122) or \
            scheme.translate(None, b"abcdefghijklmnopqrstuvwxyz0123456789+-.") != b"":
        return None
    authority = url[colon + 3:]
    authority = authority.split(b"/", 1)[0].split(b"?", 1)[0]
    authority = authority[authority.rfind(b"@") + 1:].lower()
    return strip_default_port(authority, scheme)


cdef bint authority_form(bytes url):
    """host ":" port, the host of RFC 3986 reg-name/IP-literal bytes, the port digits."""
    cdef Py_ssize_t colon = url.rfind(b":")
    cdef bytes host = url[:colon], port = url[colon + 1:]
    if colon <= 0 or not port or not port.isdigit() or len(port) > 5:
        return False
    return host.translate(None, b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                b"0123456789-._~%!$&'()*+,;=[]:") == b""


cdef bytes strip_default_port(bytes authority, bytes scheme):
    if (scheme == b"http" and authority.endswith(b":80")) or \
            (scheme == b"https" and authority.endswith(b":443")):
        return authority.rsplit(b":", 1)[0]
    return authority


cdef object request_refused(Head head):
    """Why a well-formed request head is still refused (HAProxy's 400s), or None: a body
    framed two ways, two different Hosts, an absolute URI naming another host, CONNECT
    without an authority, a WebSocket upgrade without its key."""
    cdef list hosts = [v for k, v in head.headers if k == b"host"]
    cdef bytes url = head.url, authority
    if len(hosts) > 1:
        if any(h.lower() != hosts[0].lower() for h in hosts):
            return "several different Host headers"
        first = True
        kept = []
        for k, v in head.headers:          # identical copies: forward one
            if k == b"host":
                if not first:
                    continue
                first = False
            kept.append((k, v))
        head.headers[:] = kept
    if head.method == b"PRI":
        return "PRI is the HTTP/2 preface, not a request"
    if head.method == b"CONNECT":
        if not authority_form(url):
            return "CONNECT needs an authority-form target (host:port)"
        if hosts and hosts[0].lower() != url.lower():
            return "CONNECT authority and Host differ"
    elif url[:1] != b"/":
        if url == b"*":
            if head.method != b"OPTIONS":
                return "'*' target outside OPTIONS"
        else:
            authority = authority_of(url)
            if authority is None or not authority:
                return "target is neither a path nor an absolute URI"
            if hosts and strip_default_port(hosts[0].lower(), url.split(b":", 1)[0].lower()) \
                    != authority:
                return "absolute URI and Host differ"
    if _connection_has(head.headers, b"upgrade") and \
            b"websocket" in [u.lower() for u in header_list(head.headers, b"upgrade")]:
        key = _header(head.headers, b"sec-websocket-key")
        if key is None or len(key) != 24:      # base64 of 16 bytes, as HAProxy checks
            return "WebSocket upgrade without a valid Sec-WebSocket-Key"
    return None


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
    # A response already under way (its head sent, or part of an interim one) cannot be
    # followed by a page: the client would read it as the answer to its next request.
    if txn.rsp_state == RS_BODY or txn.rsp_state == RS_TUNNEL or \
            (txn.out_cli is not None and txn.out_cli_off > 0):
        txn.term0, txn.term1 = term0, term1
        w.session_close(idx, s)
        return
    # After its own answer HAProxy keeps the client connection when the request was read to
    # its end; a head it could not parse (400, 408) or a body left unread closes it.
    cdef bint body_read = txn.req_mode == BODY_NONE or txn.req_body_seen_end
    txn.out_cli = w.error_page(s.fe, s.be if txn.routed else -1, status, raw)
    txn.out_cli_off = 0
    txn.req_error = raw
    txn.count_bytes = not raw
    txn.status = status
    txn.error_sent = True
    if raw or not body_read or status == 500 or s.cli.rd_eof:
        txn.close_client = True
    elif txn.req_avail > 0:
        side_consume(w, &s.cli, txn.req_avail)     # the rest of this request's body
        txn.req_avail = 0
    txn.term0 = term0
    txn.term1 = term1
    txn.req_state = RQ_DONE
    txn.rsp_state = RS_DONE
    if s.state != ST_IDLE or s.server >= 0:
        http_drop_server(w, s)


cdef bytes announce_close(bytes page):
    """A page after which the connection closes says so (a pipelining client then knows
    its next requests were not read)."""
    cdef Py_ssize_t end = page.find(b"\r\n")
    cdef Py_ssize_t head = page.find(b"\r\n\r\n")
    if end < 0 or head < 0 or b"\r\nconnection: close" in page[:head + 2].lower():
        return page
    return page[:end + 2] + b"connection: close\r\n" + page[end + 2:]


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
    cdef int64_t length
    cdef int chunked_te
    http_unlend(w, s)                    # our kept server connection is ours again
    fields, why = parse_head(head, True)
    txn.requests += 1
    if fields is None:
        capture_error(w, s, False, head, why)
        txn.request_line = b"<BADREQ>"
        http_error(w, idx, s, txn, 400, True, b'P', b'R')
        return False
    txn.t_head = w.now
    specs = w.captures[s.fe]
    if specs[0] is not None:
        txn.captures_req = capture_headers(specs[0], fields.headers)
    if specs[1] is not None:
        txn.captures_rsp = [""] * len(specs[1])
    method = fields.method
    version = fields.version
    txn.request_line = method + b" " + fields.url + b" HTTP/" + version
    side_consume(w, &s.cli, end)
    txn.bytes_in = end
    txn.req_scanned = 0
    keep_alive = _keep_alive(version, fields.headers)
    txn.is_head = method == b"HEAD"
    txn.is_connect = method == b"CONNECT"
    why = request_refused(fields)
    length = content_length(fields.headers)
    chunked_te = transfer_chunked(fields.headers)
    if why is None:
        if length == -2:
            why = "malformed Content-Length"
        elif chunked_te < 0:
            why = "Transfer-Encoding without chunked as its final coding"
        elif version == b"1.0" and (length > 0 or chunked_te) and \
                (method == b"GET" or method == b"HEAD" or method == b"DELETE"):
            # HAProxy 2.6 refuses a body on these methods from an HTTP/1.0 client
            txn.request_line = method + b" " + fields.url + b" HTTP/" + version
            http_error(w, idx, s, txn, 413, False, b'P', b'R')
            txn.close_client = True
            return False
        elif chunked_te == 2:
            capture_error(w, s, False, head, "a transfer coding other than chunked")
            txn.request_line = method + b" " + fields.url + b" HTTP/" + version
            http_error(w, idx, s, txn, 422, False, b'P', b'R')
            txn.close_client = True
            return False
        elif chunked_te and length >= 0:
            why = "both Content-Length and Transfer-Encoding"
        elif length > MAX_CONTENT_LENGTH:
            why = "Content-Length too large"
    if why is not None:
        capture_error(w, s, False, head, why)
        txn.request_line = b"<BADREQ>"
        http_error(w, idx, s, txn, 400, True, b'P', b'R')
        return False
    if chunked_te:
        txn.req_mode = BODY_CHUNKED
    elif length > 0:
        txn.req_mode = BODY_LENGTH
        txn.req_remaining = length
    else:
        txn.req_mode = BODY_NONE
    # a stopping worker answers this request, then closes: the client's next request
    # goes to a new connection, which the new workers accept
    txn.close_client = not keep_alive or w.stopping != 0
    router = w.routers[s.fe]
    if router is not None:
        try:
            verdict = router(method, fields.url, fields.headers, sockaddr_to_tuple(&s.addr)[0],
                             w.listeners[s.listener].port, version)
        except Exception as exc:
            return http_rule_failed(w, idx, s, txn, exc)
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
        try:
            verdict = rules(method, fields.url, fields.headers, sockaddr_to_tuple(&s.addr)[0],
                            w.listeners[s.listener].port, version)
        except Exception as exc:
            return http_rule_failed(w, idx, s, txn, exc)
        if verdict is not None and verdict[0] == ROUTE_APPLET:
            applet_request(txn, method, fields, version)
        if verdict is not None and not http_local_answer(w, idx, s, txn, verdict, keep_alive):
            return False
    if (router is not None or rules is not None) and not fields_safe(fields.headers):
        return http_rule_failed(w, idx, s, txn, HeaderValueError(
            "a rewritten request header holds CR, LF or NUL"))
    mode = fe.http_close if fe.http_close > w.backends[s.be].http_close else w.backends[s.be].http_close
    if mode == 2:
        txn.close_client = True          # option httpclose: both sides close after this one
    elif mode == 1:
        txn.close_server = True          # option http-server-close: only the server side
    w.count(w.be_off + w.backends[s.be].shm_index, 1)
    txn.be_counted = True
    cdef uint64_t *be_row = w.be_stats + w.backends[s.be].shm_index * STAT_WORDS
    be_row[STAT_SESS_TOT] += 1
    stat_max(be_row, STAT_SMAX, <int64_t>w.slot[w.be_off + w.backends[s.be].shm_index])
    s.t_queued = -1
    s.forced_server = -1
    s.avoid_server = -1
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
    upgrade = _connection_has(fields.headers, b"upgrade")
    for name, value in fields.headers:
        if name == b"connection" and not upgrade:
            continue
        if name == b"content-length":
            if length < 0:
                continue
            value = str(length).encode()      # one value for "3, 3" or repeated lines
            length = -1
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


cdef bint http_rule_failed(Worker w, int idx, Session *s, HttpTxn txn, object exc):
    """A rule could not be carried out (a value that may not be written, a bug): HAProxy's
    strict-mode answer, 500, for this request alone; the worker goes on."""
    w.internal_error(exc, "http-request rules")
    w.fe_stats[s.fe * STAT_WORDS + STAT_ERR_REQ] += 1
    http_error(w, idx, s, txn, 500, False, b'P', b'R')
    return False


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
        # http-reuse safe: a connection that has served a response may carry any request
        # (HAProxy's "safe" connections); a request on one that fails before any answer
        # is sent again on a new connection (http_retry_fresh)
        # A first request with a body could not be sent again if a reused connection turned
        # out closed: it gets its own connection (HAProxy's reason for "safe").
        if not may_reuse(w, s, txn, chosen) or (not http_take_idle(w, idx, s, chosen) and
                                                not http_take_lent(w, idx, s, chosen)):
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
        w.fe_stats[s.fe * STAT_WORDS + STAT_DENIED_REQ] += 1
        http_error(w, idx, s, txn, value, False, b'P', b'R')
        return False
    if action == ROUTE_RESPOND or action == ROUTE_RAW:
        w.fe_stats[s.fe * STAT_WORDS + STAT_INTERCEPTED] += 1
        # monitor-uri, http-request return / redirect: answered here, never forwarded
        http_error(w, idx, s, txn, value if action == ROUTE_RESPOND else 200, False, b'L', b'R')
        if action == ROUTE_RAW:
            txn.out_cli = value
            txn.status = int(value[9:12])
        else:
            txn.logged = True                     # HAProxy does not log monitor requests
        txn.close_client = txn.req_mode != BODY_NONE or not keep_alive or w.stopping != 0 or \
            s.cli.rd_eof != 0
        return False
    if action == ROUTE_APPLET:
        w.fe_stats[s.fe * STAT_WORDS + STAT_INTERCEPTED] += 1
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
    if s.srv.fd < 0 or s.state != ST_ESTABLISHED or not shareable(w, s) or \
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


cdef inline bint may_reuse(Worker w, Session *s, HttpTxn txn, int srv):
    cdef BackendRt *be = &w.backends[s.be]
    return not be.reuse_never and not be.servers[srv].use_client_port and \
        (txn.requests > 1 or txn.req_mode == BODY_NONE)


cdef bint http_take_idle(Worker w, int idx, Session *s, int srv):
    cdef uint32_t k = w.backends[s.be].srv_shm[srv]
    cdef int fd
    if w.idle_len[k] == 0:
        return False
    w.idle_len[k] -= 1
    fd = w.idle_fds[k * IDLE_PER_SERVER + w.idle_len[k]]    # the most recently used
    return http_adopt(w, idx, s, srv, fd)


cdef bint http_adopt(Worker w, int idx, Session *s, int srv, int fd):
    """Make an established server connection this session's."""
    cdef epoll_event ev
    s.srv_epoch += 1
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET
    ev.data.u64 = pack_data(side_tag(s, SIDE_SRV), KIND_SESSION, idx, SIDE_SRV)
    if epoll_ctl(w.epfd, EPOLL_CTL_MOD, fd, &ev) != 0:
        close(fd)
        return False
    side_init(&s.srv)
    s.srv.fd = fd
    s.srv.last = w.now
    s.srv_private = 0
    s.server = srv
    s.state = ST_ESTABLISHED
    s.t_established = w.now
    return True


# ---------------------------------------------------------------------------- lending
# After a response, a keep-alive session keeps its server connection for its next request
# (no epoll_ctl when it goes to the same server), but while its client is idle another
# session of this worker may take that connection (HAProxy's http-reuse safe shares idle
# connections between clients).  So idle clients never pin a server's connections: 60
# clients idling on a 50-connection server leave every connection usable.
cdef inline bint shareable(Worker w, Session *s):
    """May this session's server connection serve another session (http-reuse)?  Not under
    http-reuse never, not once the server asked for NTLM/Negotiate (a private connection),
    not for a server written without a port (its port follows each client's)."""
    return s.server >= 0 and s.be >= 0 and not w.backends[s.be].reuse_never and \
        not s.srv_private and not w.backends[s.be].servers[s.server].use_client_port


cdef void http_lend(Worker w, int idx, Session *s):
    cdef uint32_t k
    if s.lent or s.srv.fd < 0 or s.state != ST_ESTABLISHED or not shareable(w, s) or \
            s.srv.head != s.srv.tail or s.srv.rd_eof or s.srv.wr_shut or s.srv.piped:
        return
    k = w.backends[s.be].srv_shm[s.server]
    s.lent = 1
    s.lend_prev = -1
    s.lend_next = w.lend_head[k]
    if s.lend_next >= 0:
        w.session_at(s.lend_next).lend_prev = idx
    w.lend_head[k] = idx


cdef void http_unlend(Worker w, Session *s):
    cdef uint32_t k
    if not s.lent:
        return
    s.lent = 0
    k = w.backends[s.be].srv_shm[s.server]
    if s.lend_prev >= 0:
        w.session_at(s.lend_prev).lend_next = s.lend_next
    else:
        w.lend_head[k] = s.lend_next
    if s.lend_next >= 0:
        w.session_at(s.lend_next).lend_prev = s.lend_prev


cdef bint http_take_lent(Worker w, int idx, Session *s, int srv):
    """Take the connection an idle session lends to ``srv`` (the most recently idle)."""
    cdef uint32_t k = w.backends[s.be].srv_shm[srv]
    cdef int owner_idx = w.lend_head[k], fd
    cdef Session *owner
    if owner_idx < 0:
        return False
    owner = w.session_at(owner_idx)
    http_unlend(w, owner)
    fd = owner.srv.fd
    owner.srv.fd = -1                   # the owner's next request finds another connection
    w.buf_put(owner.srv.buf)
    side_init(&owner.srv)
    owner.srv_epoch += 1                # events still queued for it are stale now
    owner.server = -1
    owner.state = ST_IDLE
    return http_adopt(w, idx, s, srv, fd)


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
    http_unlend(w, s)
    s.srv_private = 0
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
    cdef int64_t length
    cdef int chunked_te
    cdef bint edited = False
    fields, why = parse_head(head, False)
    if fields is None:
        capture_error(w, s, True, head, why)
        observe(w, &w.backends[s.be], s.server, OBSERVE_LAYER7, True)
        http_error(w, idx, s, txn, 502, False, b'P', b'H')
        return False
    status = fields.status
    version = fields.version
    side_consume(w, &s.srv, end)
    txn.rsp_scanned = 0           # an interim (1xx) head may be followed by the final one
    if 100 <= status < 200 and status != 101:
        # interim response (100-continue): forward it and wait for the final one
        txn.out_cli = head
        txn.out_cli_off = 0
        return True
    if status == 101 or (txn.is_connect and 200 <= status < 300):
        # protocol switch (WebSocket) or an established CONNECT: forwarded untouched, then
        # a tunnel
        txn.status = status
        txn.t_response = w.now
        txn.out_cli = head
        txn.out_cli_off = 0
        txn.rsp_state = RS_TUNNEL
        return True
    txn.status = status
    txn.t_response = w.now
    observe(w, &w.backends[s.be], s.server, OBSERVE_LAYER7, status >= 500 and status != 501 and status != 505)
    specs = w.captures[s.fe]
    if specs[1] is not None:
        txn.captures_rsp = capture_headers(specs[1], fields.headers)
    try:
        persistence = w.cookies[s.be]
        if persistence is not None:
            txn.ck_server = persistence.on_response(fields.headers, s.server, txn.ck_client,
                                                    txn.method)
            edited = True
        editor = w.be_response_editors[s.be]
        if editor is not None:
            editor(fields.headers)              # backend http-response rules, then frontend's
            edited = True
        editor = w.response_editors[s.fe]
        if editor is not None:
            editor(fields.headers)
            edited = True
        if edited and not fields_safe(fields.headers):
            raise HeaderValueError("a rewritten response header holds CR, LF or NUL")
    except Exception as exc:
        w.internal_error(exc, "http-response rules")
        http_error(w, idx, s, txn, 502, False, b'P', b'H')
        return False
    for name, value in fields.headers:
        if name == b"www-authenticate" and (value[:4].lower() == b"ntlm" or
                                            value[:9].lower() == b"negotiate"):
            s.srv_private = 1           # connection-based authentication: never shared
    length = content_length(fields.headers)
    chunked_te = transfer_chunked(fields.headers)
    if length == -2 or length > MAX_CONTENT_LENGTH:
        capture_error(w, s, True, head, "malformed Content-Length")
        observe(w, &w.backends[s.be], s.server, OBSERVE_LAYER7, True)
        http_error(w, idx, s, txn, 502, False, b'P', b'H')
        return False
    if txn.is_head or status == 204 or status == 304:
        txn.rsp_mode = BODY_NONE
    elif chunked_te > 0:
        txn.rsp_mode = BODY_CHUNKED            # chunked wins over a Content-Length (RFC 9112 6.3)
    elif chunked_te < 0:
        txn.rsp_mode = BODY_CLOSE              # another final coding: the body ends at close
        txn.close_client = True
    elif length >= 0:
        txn.rsp_mode = BODY_LENGTH if length > 0 else BODY_NONE
        txn.rsp_remaining = length
    else:
        txn.rsp_mode = BODY_CLOSE
        txn.close_client = True
    if not _keep_alive(version, fields.headers) or txn.rsp_mode == BODY_CLOSE or txn.is_head:
        # HEAD: the server may still send body bytes; never reuse that connection.
        txn.close_server = True
    out = [b"HTTP/", version, b" ", str(status).encode(), b" ", fields.reason, b"\r\n"]
    for name, value in fields.headers:
        if name == b"connection" or (name == b"content-length" and
                                     (chunked_te != 0 or length < 0)):
            continue
        if name == b"content-length":
            value = str(length).encode()
            length = -1
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
    if buffered(&s.srv) > 0:
        txn.close_server = True         # bytes after the response: that connection is lost
    if txn.close_server or txn.close_client:
        http_drop_server(w, s)
    if txn.close_client:
        w.session_close(idx, s)
        return
    http_lend(w, idx, s)
    txn.reset(w.now, realtime_ms())


cdef bint http_step(Worker w, int idx, Session *s, HttpTxn txn):
    """One round of progress; False when nothing moved (or the session is gone)."""
    cdef bint moved = False
    cdef int r
    cdef int64_t n, sent
    cdef FrontendRt *fe = &w.frontends[s.fe]

    # -- an error page, or the response head, goes to the client first
    if txn.out_cli is not None:
        if txn.error_sent and txn.close_client and txn.out_cli_off == 0:
            txn.out_cli = announce_close(txn.out_cli)
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
        if s.cli.buf != NULL and buffered(&s.cli) > 0 and \
                (s.cli.buf[s.cli.head] == 13 or s.cli.buf[s.cli.head] == 10):
            # empty lines before a request line are ignored (RFC 9112 2.2), never forwarded
            n = leading_empty_lines(s.cli.buf + s.cli.head, buffered(&s.cli))
            if n > 0:
                side_consume(w, &s.cli, n)
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
            r = side_read(w, &s.cli)
            if r == 1:
                if txn.fresh and txn.requests > 0:
                    # first bytes after a keep-alive pause: the request (and its timer) starts
                    # now, once (empty lines sent to hold the connection do not restart it)
                    txn.t_start = w.now
                    txn.t_start_real = realtime_ms()
                txn.fresh = False
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
        if s.srv.buf != NULL and txn.find_head(&s.srv, False) >= 0 and \
                txn.rsp_head_end <= w.head_limit:
            if not http_response_head(w, idx, s, txn):
                return True
            return True
        if buffered(&s.srv) >= w.head_limit:
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
        observe(w, be, s.server, OBSERVE_LAYER7, True)
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
    """What the loop does with a request head: find its end, parse it (framing.pxd), read
    the framing headers.  Returns (url, headers, keep_alive, length)."""
    cdef int64_t scanned = 0
    cdef int64_t end = head_end(<char *>raw, len(raw), &scanned)
    if end < 0:
        raise ValueError("incomplete head")
    fields, why = parse_head(raw[:end], True)
    if fields is None:
        raise ValueError(why)
    return (fields.url, fields.headers, _keep_alive(fields.version, fields.headers),
            content_length(fields.headers))


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


# ---------------------------------------------------------------------------- framing probes
# framing.pxd's parsers called on a Python bytes object, for the differential and
# property tests (tests/test_framing.py).  The loop calls the C functions directly.

def framing_parse_head(bytes raw, bint request=True):
    """(length, fields) for a complete head, or (-1, reason).  ``fields``: method, url,
    version, status, reason, headers (names lower case)."""
    cdef int64_t scanned = 0
    cdef int64_t end = head_end(<char *>raw, len(raw), &scanned)
    if end < 0:
        return 0, "incomplete"
    head, why = parse_head(raw[:end], request)
    if head is None:
        return -1, why
    return end, {"method": head.method, "url": head.url, "version": head.version,
                 "status": head.status, "reason": head.reason, "headers": head.headers}


def framing_skip_empty_lines(bytes raw):
    return leading_empty_lines(<char *>raw, len(raw))


def framing_chunks(bytes raw, list cuts):
    """Feed a chunked body to the C parser in pieces cut at ``cuts``; returns (bytes that
    belong to the body, done, error)."""
    cdef ChunkParser p
    cdef int64_t taken = 0, r
    cdef bytes piece
    memset(&p, 0, sizeof(ChunkParser))
    bounds = [0] + sorted(c for c in cuts if 0 < c < len(raw)) + [len(raw)]
    for a, b in zip(bounds, bounds[1:]):
        piece = raw[a:b]
        r = chunk_scan(&p, <char *>piece, len(piece))
        if r < 0:
            return taken, False, True
        taken += r
        if p.state == CH_DONE:
            break
    return taken, p.state == CH_DONE, False
