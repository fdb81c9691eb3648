# Request bodies for the rules (HAProxy's AN_REQ_HTTP_BODY analyser and wait-for-body):
# after the head, the request waits in RQ_BODY_WAIT until its body is in the buffer (all
# of it, the at-least bytes, or as much as the buffer holds), the client closed, or the
# wait's time passed (408).  The body stays in the client buffer as it came: the rules
# see a copy (stream.req_body, de-chunked) and the forwarding step sends the bytes
# themselves.  Only a proxy with the option or the action gets here.
# Interface: http_body.pxd.


CONTINUE_100 = b"HTTP/1.1 100 Continue\r\n\r\n"


cdef bint http_request_rest(Worker w, int idx, Session *s, HttpTxn txn, Head fields,
                            int64_t length, bint keep_alive, bint edited, int phase):
    """The analysers after the head (route, backend rules, persistence, forward, assign),
    from ``phase`` on; a wait for the body stops them here, to be taken up again by
    http_body_wait_step.  False when the request did not go on to a server."""
    cdef bint ed = edited
    cdef int wanted
    if phase == BODY_PHASE_FE:
        if w.frontends[s.fe].buffer_request == BUFFER_SNAPSHOT:
            body_snapshot(w, s, txn, fields)
        if not req_route(w, idx, s, txn, fields, keep_alive, &ed):
            if txn.req_state == RQ_BODY_WAIT:
                body_wait_keep(w, s, txn, fields, length, keep_alive, ed, BODY_PHASE_FE)
            return False
        if (<FrontendHooks>w.fe_hooks[s.fe]).restrict_names and not restrict_header_names(
                w, idx, s, txn, fields, (<FrontendHooks>w.fe_hooks[s.fe]).restrict_names,
                keep_alive):
            return False
        wanted = w.backends[s.be].buffer_request
        if wanted == BUFFER_WAIT:
            body_wait_begin(w, s, txn, w.frontends[s.fe].t_http_request, 0)
            body_wait_keep(w, s, txn, fields, length, keep_alive, ed, BODY_PHASE_BE)
            return False
        if wanted == BUFFER_SNAPSHOT:
            body_snapshot(w, s, txn, fields)
    if not req_backend_rules(w, idx, s, txn, fields, keep_alive, &ed):
        if txn.req_state == RQ_BODY_WAIT:
            body_wait_keep(w, s, txn, fields, length, keep_alive, ed, BODY_PHASE_BE)
        return False
    if (<BackendHooks>w.be_hooks[s.be]).restrict_names and not restrict_header_names(
            w, idx, s, txn, fields, (<BackendHooks>w.be_hooks[s.be]).restrict_names,
            keep_alive):
        return False
    if ed and not fields_safe(fields.headers):
        return http_rule_failed(w, idx, s, txn, HeaderValueError(
            "a rewritten request header holds CR, LF or NUL"))
    req_persistence(w, s, txn, fields)
    req_forward(w, s, txn, fields, length)
    return req_assign(w, idx, s, txn)


cdef void body_wait_begin(Worker w, Session *s, HttpTxn txn, int64_t wait_ms,
                          int64_t at_least):
    """Wait for the body: at most ``wait_ms`` (0: timeout client alone), until
    ``at_least`` bytes of it (0: all of it)."""
    txn.req_state = RQ_BODY_WAIT
    txn.body_at_least = at_least
    txn.body_deadline = w.now + wait_ms if wait_ms > 0 else 0


cdef void body_wait_keep(Worker w, Session *s, HttpTxn txn, Head fields, int64_t length,
                         bint keep_alive, bint edited, int phase):
    """What the analysers take up again once the body is in, and HAProxy's answer to
    "Expect: 100-continue" (an HTTP/1.1 client waiting for it before its body): an
    interim 100, the header dropped from what the server gets."""
    txn.body_fields = fields
    txn.body_length = length
    txn.body_keep_alive = keep_alive
    txn.body_edited = edited
    txn.body_phase = phase
    if fields.version == b"1.1" and txn.req_mode != BODY_NONE and buffered(&s.cli) == 0 and \
            txn.out_cli is None:
        for name, value in fields.headers:
            if name == b"expect" and value.lower() == b"100-continue":
                fields.headers[:] = [h for h in fields.headers if h[0] != b"expect"]
                if txn.interim is None:
                    txn.interim = CONTINUE_100
                    txn.interim_off = 0
                else:
                    txn.interim += CONTINUE_100
                break


cdef object dechunk(bytes data):
    """(payload, complete) of the chunked body at the front of ``data``, or None when it
    is not a chunked body (the forwarding step answers it with its 400)."""
    cdef list out = []
    cdef Py_ssize_t pos = 0, eol, n = len(data)
    cdef bytes line, piece
    cdef int64_t size
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            return b"".join(out), False
        line = data[pos:eol].split(b";", 1)[0].strip(b" \t")
        if not line or len(line) > 15 or \
                line.translate(None, b"0123456789abcdefABCDEF") != b"":
            return None
        size = int(line, 16)
        pos = eol + 2
        if size == 0:
            while True:                          # trailers, up to the empty line
                eol = data.find(b"\r\n", pos)
                if eol < 0:
                    return b"".join(out), False
                if eol == pos:
                    return b"".join(out), True
                pos = eol + 2
        piece = data[pos:pos + size]
        out.append(piece)
        if len(piece) < size or n < pos + size + 2:
            return b"".join(out), False
        pos += size
        if data[pos:pos + 2] != b"\r\n":
            return None
        pos += 2


cdef object body_check(Worker w, Session *s, HttpTxn txn, bint now):
    """(payload, announced size) once the wait is over (``now``: at once, what came so
    far), None while more is to come, False for a chunked body that is not one."""
    if txn.req_mode == BODY_NONE or txn.is_connect:
        return (b"", 0)
    # (the Content-Length: once a wait is over, the bytes in are classified, req_avail)
    return side_body(w, &s.cli, txn.req_mode, txn.req_remaining + txn.req_avail,
                     txn.body_at_least, now)


cdef bint body_complete(Worker w, Session *s, HttpTxn txn):
    """The whole request body is in the client buffer."""
    cdef int64_t have = buffered(&s.cli)
    if txn.req_mode == BODY_NONE or txn.is_connect:
        return True
    if txn.req_mode == BODY_LENGTH:
        return have >= txn.req_remaining + txn.req_avail
    parsed = dechunk((s.cli.buf + s.cli.head)[:have] if have > 0 else b"")
    return parsed is not None and parsed[1]


cdef object side_body(Worker w, Side *side, int mode, int64_t remaining, int64_t at_least,
                      bint now):
    """body_check for the body at the front of ``side``'s buffer, framed by ``mode``
    (``remaining``: its Content-Length)."""
    cdef int64_t have = buffered(side)
    cdef bint over = now or side.rd_eof != 0 or have >= <int64_t>w.bufsize
    cdef bytes data
    if mode == BODY_NONE:
        return (b"", 0)
    if mode == BODY_LENGTH or mode == BODY_CLOSE:
        if mode == BODY_LENGTH and have > remaining:
            have = remaining
        if not (over or (mode == BODY_LENGTH and have == remaining) or
                (at_least > 0 and have >= at_least)):
            return None
        data = (side.buf + side.head)[:have] if have > 0 else b""
        return (data, remaining if mode == BODY_LENGTH else len(data))
    data = (side.buf + side.head)[:have] if have > 0 else b""
    parsed = dechunk(data)
    if parsed is None:
        return (b"", 0) if now else False
    payload, complete = parsed
    if not (over or complete or (at_least > 0 and len(payload) >= at_least)):
        return None
    return (payload, len(payload))


cdef bint http_body_wait_step(Worker w, int idx, Session *s, HttpTxn txn):
    """Read the body until the wait is over, then take the analysers up again."""
    cdef int r
    cdef Head fields
    while True:
        found = body_check(w, s, txn, False)
        if found is False:
            http_error(w, idx, s, txn, 400, False, b'P', b'R')   # HAProxy logs these "R"
            return True
        if found is not None:
            break
        r = side_read(&s.cli, &w.pool, w.now)
        if r == IO_DATA:
            continue
        if r == IO_ERROR:
            txn.term0, txn.term1 = b'C', b'R'
            session_close(w, idx, s)
            return False
        if r == IO_NONE:
            return False
        # IO_EOF: the body is what came (body_check sees rd_eof)
    if s.cli.rd_eof and not body_complete(w, s, txn):
        # the client closed in the middle of its body: the request cannot be sent whole
        txn.body_fields = None
        txn.term0, txn.term1 = b'C', b'R'
        session_close(w, idx, s)
        return False
    # a body that is all in counts as read: an answer of the rules (a deny) then keeps
    # the connection, the next request behind it included
    classify_body(&txn.req_chunk, txn.req_mode, &txn.req_remaining, &txn.req_avail,
                  &txn.req_body_seen_end, &s.cli, s.cli.rd_eof)
    fields = txn.body_fields
    txn.body_fields = None
    stream = txn_stream(w, s, txn, fields)
    stream.req_body, stream.req_body_size = found
    txn.req_state = RQ_HEAD
    if not http_request_rest(w, idx, s, txn, fields, txn.body_length, txn.body_keep_alive,
                             txn.body_edited, txn.body_phase):
        return s.state != ST_FREE
    return True


cdef void body_snapshot(Worker w, Session *s, HttpTxn txn, Head fields):
    """The body fetches of rules that do not wait see what came with the head (HAProxy's
    req.body reads the buffer as it is): only for a proxy whose rules read the body."""
    stream = txn_stream(w, s, txn, fields)
    stream.req_body, stream.req_body_size = body_check(w, s, txn, True)


cdef int64_t body_wait_deadline(Worker w, Session *s, HttpTxn txn):
    """The wait's own time, else timeout client since the last bytes: both end in 408."""
    cdef FrontendRt *fe = &w.frontends[s.fe]
    cdef int64_t dl = txn.body_deadline, t
    if fe.t_client:
        t = s.cli.last + fe.t_client
        if dl == 0 or t < dl:
            dl = t
    s.timer = TM_BODY_WAIT
    return dl


# ------------------------------------------------------------------ the response side
cdef int rsp_framing(HttpTxn txn, Head fields, int64_t *remaining):
    """How the response body ends, as http_response_rest will frame it (before the
    rules, which wait-for-body precedes)."""
    cdef int64_t length = content_length(fields.headers)
    cdef int chunked_te = transfer_chunked(fields.headers)
    remaining[0] = 0
    if txn.is_head or fields.status == 204 or fields.status == 304:
        return BODY_NONE
    if chunked_te > 0:
        return BODY_CHUNKED
    if chunked_te < 0 or length < 0:
        return BODY_CLOSE
    remaining[0] = length
    return BODY_LENGTH if length > 0 else BODY_NONE


cdef void rsp_body_snapshot(Worker w, Session *s, HttpTxn txn, Head fields):
    """res.body without a wait: what came with the head."""
    cdef int64_t remaining
    cdef int mode = rsp_framing(txn, fields, &remaining)
    stream = txn.stream
    stream.res_body, stream.res_body_size = side_body(w, &s.srv, mode, remaining, 0, True)


cdef void rsp_wait_begin(Worker w, Session *s, HttpTxn txn, Head fields, bytes head,
                         tuple wait, int phase):
    """http-response wait-for-body: (time, at-least); the rules go on from ``phase``
    (0: the backend's, 1: the frontend's) once the body is in."""
    txn.rsp_state = RS_BODY_WAIT
    txn.rsp_wait_fields = fields
    txn.rsp_wait_head = head
    txn.rsp_wait_phase = phase
    txn.rsp_wait_mode = rsp_framing(txn, fields, &txn.rsp_wait_remaining)
    txn.rsp_wait_at_least = wait[1]
    txn.rsp_wait_deadline = w.now + <int64_t>wait[0] if wait[0] > 0 else 0


cdef bint http_rsp_wait_step(Worker w, int idx, Session *s, HttpTxn txn):
    """Read the response body until the wait is over, then the rules go on."""
    cdef int r
    while True:
        found = side_body(w, &s.srv, txn.rsp_wait_mode, txn.rsp_wait_remaining,
                          txn.rsp_wait_at_least, False)
        if found is False:
            txn.term0, txn.term1 = b'S', b'D'
            session_close(w, idx, s)
            return False
        if found is not None:
            break
        r = side_read(&s.srv, &w.pool, w.now)
        if r == IO_DATA:
            txn.rsp_bytes_in += 1
            continue
        if r == IO_ERROR:
            http_error(w, idx, s, txn, 502, False, b'S', b'D')
            return True
        if r == IO_NONE:
            return False
    fields = txn.rsp_wait_fields
    head = txn.rsp_wait_head
    txn.rsp_wait_fields = txn.rsp_wait_head = None
    stream = txn.stream
    stream.res_body, stream.res_body_size = found
    txn.rsp_state = RS_HEAD
    http_response_rest(w, idx, s, txn, fields, head, True)
    return s.state != ST_FREE


cdef int64_t rsp_wait_deadline(Worker w, Session *s, HttpTxn txn, int64_t dl):
    """The wait's own time, else timeout server since the last bytes: both end in 504."""
    cdef BackendRt *be = &w.backends[s.be]
    cdef int64_t t
    if txn.rsp_wait_deadline and (dl == 0 or txn.rsp_wait_deadline < dl):
        dl = txn.rsp_wait_deadline
    if be.t_server:
        t = s.srv.last + be.t_server
        if dl == 0 or t < dl:
            dl = t
    s.timer = TM_RSP_BODY_WAIT
    return dl
