# The HTTP transaction of a session slot, and header helpers.
# Interface: http_txn.pxd.


cdef class Head:
    """A parsed head: the spans of framing.pxd turned into bytes (names lower case)."""


HEAD_ERRORS = {
    HE_METHOD: "method not a token followed by one space", HE_TARGET: "forbidden byte in the target",
    HE_VERSION: "missing or unsupported HTTP version", HE_LINE_END: "line not ended by CRLF",
    HE_NAME: "malformed header name", HE_VALUE: "control character in a header value",
    HE_FOLD: "obsolete line folding", HE_TOO_MANY: "too many headers",
    HE_STATUS: "malformed status line",


}


cdef class HttpTxn:
    """The HTTP transaction of one session slot; reset for each request on keep-alive."""


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
        self.stream = None
        self.server_forced = False
        self.req_body_seen_end = self.rsp_body_seen_end = False
        memset(&self.req_chunk, 0, sizeof(ChunkParser))
        memset(&self.rsp_chunk, 0, sizeof(ChunkParser))
        self.out_srv = None
        self.out_cli = None
        self.out_srv_off = self.out_cli_off = 0
        self.interim = None
        self.interim_off = 0
        self.close_client = self.close_server = False
        self.is_connect = False
        self.fresh = True
        self.is_head = self.reused = self.retried = self.error_sent = self.logged = False
        self.l7_retry = False
        self.rsp_denied = False
        self.server_status = -1
        self.name_at = -1
        self.after_due = False
        self.counted = self.req_error = False
        self.applet = None
        self.tarpit_answer = None
        self.tarpit_until = 0
        self.method_seen = self.url_seen = self.headers_seen = self.version_seen = None
        self.bytes_in = 0
        self.be_counted = False
        self.ck_client = self.ck_server = "-"
        self.ck_seen = None
        self.routed = False
        self.log_server = -1
        self.count_bytes = True
        self.status = -1
        self.t_start = now
        self.t_start_real = now_real
        self.t_idle = 0
        self.t_first = -1
        self.asap = False
        self.t_head = self.t_sent = self.t_response = -1
        self.t_connect_ms = -1
        self.bytes_out = 0
        self.rsp_bytes_in = 0
        self.request_line = None
        self.captures_req = self.captures_rsp = None
        self.cookie_req = self.cookie_rsp = None
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
        value = ""
        if name is None:              # a slot the capture actions fill
            values.append(value)
            continue
        wanted = name.encode("latin-1")
        for key, raw in headers:
            if key == wanted:
                value = raw.decode("latin-1")
        values.append(value[:length])
    return values


cdef object captured_cookie(list headers, tuple spec, bint response):
    """capture cookie: the first cookie whose name starts with the given one, as
    "name=value" cut to the length; Cookie lines on a request, the first pair of each
    Set-Cookie on a response (HAProxy's reading); None when there is none."""
    cdef bytes name = spec[0], value, part
    cdef int length = spec[1]
    for key, value in headers:
        if key != (b"set-cookie" if response else b"cookie"):
            continue
        for part in (value.split(b";", 1)[:1] if response else value.split(b";")):
            part = part.strip(b" \t")
            if part.startswith(name):
                return part[:length].decode("latin-1")
    return None


cdef bytes _header(list headers, bytes wanted):
    for name, value in headers:
        if name == wanted:
            return value
    return None


cdef list header_list(list headers, bytes wanted):
    """Every element of a comma-separated header, over all its lines, stripped."""
    cdef list out = []
    for name, value in headers:
        if name == wanted:
            out += [v.strip(b" \t") for v in value.split(b",")]
    return out


# ---------------------------------------------------------------------------- flow
# Everything below runs as "make as much progress as possible": a step tries whatever I/O
# it wants and stops at EAGAIN (epoll is edge-triggered, see side_watch() in sessions.pxi); http_run()
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
        count_add(w, w.be_off + w.backends[s.be].shm_index, -1)
        txn.be_counted = False


cdef void http_start(Worker w, int idx, Session *s):
    """A new client connection on an HTTP frontend."""
    cdef HttpTxn txn = http_txn(w, idx)
    txn.reset(w.now, s.t_accept_real)
    txn.requests = 0
    txn.sess_vars = var_store()
    txn.body_fields = txn.rsp_wait_fields = txn.rsp_wait_head = None   # a closed wait's
    if w.frontends[s.fe].tcp_rules and txn.tcp_stream is not None:
        txn.sess_vars = txn.tcp_stream.sess_vars     # set by tcp-request rules
        txn.tcp_stream = None
    s.http = 1
    s.state = ST_IDLE
    http_run(w, idx, s)
