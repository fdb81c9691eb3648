# Response analysers: the response head, the end of a transaction.
# Interface: http_response.pxd.


cdef bint http_response_head(Worker w, int idx, Session *s, HttpTxn txn):
    cdef FrontendHooks hooks
    cdef int64_t end = txn.rsp_head_end
    cdef bytes head = (s.srv.buf + s.srv.head)[:end]
    cdef int status
    cdef bytes te, cl, version
    cdef list out
    cdef int64_t length
    cdef int chunked_te
    cdef bint edited = False
    fields, why = parse_head(head, False, w.backends[s.be].accept_invalid)
    if fields is None:
        capture_error(w, s, True, head, why)
        observe(w, &w.backends[s.be], s.server, OBSERVE_LAYER7, True)
        if http_l7_retry(w, idx, s, txn, RE_JUNK):
            return True
        http_error(w, idx, s, txn, 502, False, b'P', b'H')
        return False
    status = fields.status
    if status >= 200 and http_l7_retry(w, idx, s, txn, retry_status_bit(status)):
        return True                 # retry-on <status>: this answer is dropped unseen
    version = fields.version
    side_consume(&s.srv, &w.pool, end)
    txn.rsp_scanned = 0           # an interim (1xx) head may be followed by the final one
    if 100 <= status < 200 and status != 101:
        # interim response (100-continue): forward it and wait for the final one
        txn.out_cli = head
        txn.out_cli_off = 0
        return True
    if status == 101 or (txn.is_connect and 200 <= status < 300):
        # protocol switch (WebSocket) or an established CONNECT: forwarded untouched, then
        # a tunnel
        txn.status = txn.server_status = status
        txn.t_response = w.now
        txn.out_cli = head
        txn.out_cli_off = 0
        txn.rsp_state = RS_TUNNEL
        return True
    txn.status = txn.server_status = status
    txn.t_response = w.now
    observe(w, &w.backends[s.be], s.server, OBSERVE_LAYER7, status >= 500 and status != 501 and status != 505)
    hooks = <FrontendHooks>w.fe_hooks[s.fe]
    if hooks.captures_rsp is not None:
        txn.captures_rsp = capture_headers(hooks.captures_rsp, fields.headers)
    if hooks.capture_cookie is not None:
        txn.cookie_rsp = captured_cookie(fields.headers, hooks.capture_cookie, True)
    return http_response_rest(w, idx, s, txn, fields, head, False)


cdef bint http_response_rest(Worker w, int idx, Session *s, HttpTxn txn, Head fields,
                             bytes head, bint resumed):
    """Persistence, the http-response rules, framing and the head for the client;
    ``resumed``: after an http-response wait-for-body (http_body.pxi), the rules go on
    where they stopped."""
    cdef FrontendHooks hooks = <FrontendHooks>w.fe_hooks[s.fe]
    cdef int status = fields.status
    cdef bytes version = fields.version
    cdef list out
    cdef int64_t length
    cdef int chunked_te
    cdef bint edited = resumed
    cdef int phase = txn.rsp_wait_phase if resumed else 0
    try:
        persistence = (<BackendHooks>w.be_hooks[s.be]).cookie
        if persistence is not None and not resumed:
            # ignore-persist: the server's own cookie passes as it is, none is set
            txn.ck_server = persistence.on_response(
                fields.headers, -1 if s.persist_rule == PERSIST_IGNORE else s.server,
                txn.ck_client, txn.method, txn.ck_seen, 0,
                txn.server_forced and s.forced_server >= 0,     # a redispatch undoes it
                status)
            edited = True
        be_editor = (<BackendHooks>w.be_hooks[s.be]).response_editor
        fe_editor = hooks.response_editor
        if be_editor is not None or fe_editor is not None:
            stream = response_stream(w, s, txn, fields) if not resumed else txn.stream
            if not resumed and (w.backends[s.be].buffer_response or
                                w.frontends[s.fe].buffer_response):
                rsp_body_snapshot(w, s, txn, fields)
            # backend http-response rules, then the frontend's; a deny ends the response
            # 0, a status (the proxy's page) or a whole response (b"": close)
            deny = be_editor(stream) if be_editor is not None and phase == 0 else 0
            if deny.__class__ is tuple:            # wait-for-body in the backend's rules
                rsp_wait_begin(w, s, txn, fields, head, deny, 0)
                return True
            if deny.__class__ is int and deny == 0 and fe_editor is not None:
                deny = fe_editor(stream)
                if deny.__class__ is tuple:
                    rsp_wait_begin(w, s, txn, fields, head, deny, 1)
                    return True
            edited = True
            if deny.__class__ is not int or deny != 0:
                http_response_denied(w, idx, s, txn, deny)
                return False
            if stream.moved & MOVED_SOCKET:
                client_socket_options(s, stream)
                stream.moved &= ~MOVED_SOCKET
            if stream.status != status:           # http-response set-status
                status = txn.status = stream.status
                fields.reason = stream.reason if stream.reason is not None else \
                    reason_phrase(status).encode()
            elif stream.reason is not None:
                fields.reason = stream.reason
        elif hooks.streams:
            response_stream(w, s, txn, fields)    # what the log's %[res...] fields read
        if edited and not fields_safe(fields.headers):
            raise HeaderValueError("a rewritten response header holds CR, LF or NUL")
    except Exception as exc:
        internal_error(w, exc, "http-response rules")
        http_error(w, idx, s, txn, 502, False, b'P', b'H')
        return False
    if w.backends[s.be].checkcache and checkcache_blocks(w, idx, s, txn, status, fields.headers):
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
    elif txn.request_line is not None and txn.request_line.endswith(b"HTTP/1.0"):
        out.append(b"connection: keep-alive\r\n")    # an HTTP/1.0 client stays only if told
    out.append(b"\r\n")
    txn.rsp_state = RS_BODY
    append_small_body(w, &s.srv, out, &txn.rsp_chunk, txn.rsp_mode, &txn.rsp_remaining,
                      &txn.rsp_avail, &txn.rsp_body_seen_end, SMALL_BODY)
    txn.out_cli = b"".join(out)
    txn.out_cli_off = 0
    txn.after_due = has_after_rules(w, s, txn)
    return True


cdef object response_stream(Worker w, Session *s, HttpTxn txn, Head fields):
    """The transaction's Stream, with the response as the http-response rules see it."""
    stream = txn.stream
    if stream is None:           # no request rule needed it: what the response rules may read
        stream = txn.stream = new_stream(w, s, txn.method, b"", [], b"", txn.sess_vars,
                                         txn.requests <= 1)
    stream.be = s.be
    stream.srv = s.server
    stream.status = fields.status
    stream.res_headers = fields.headers
    stream.res_version = fields.version
    stream.captures_rsp = txn.captures_rsp
    stream.response = True
    stream.enter_response_scope()
    return stream


cdef bint checkcache_blocks(Worker w, int idx, Session *s, HttpTxn txn, int status,
                            list headers):
    """option checkcache: a response a shared cache could keep with the cookie it sets is
    refused (after the http-response rules, as HAProxy's), True then.  As haproxy 2.6 does,
    the client gets the proxy's page for the server's status (500's when there is none),
    the log keeps the server's status with PH, and an alert names the backend and server."""
    cdef int page
    try:
        if not blocks_cacheable_cookie(txn.method, status, headers):
            return False
    except Exception as exc:
        internal_error(w, exc, "option checkcache")
        return False
    if w.cache_alert_callback is not None:
        try:
            w.cache_alert_callback(s.be, s.server)
        except Exception as exc:
            internal_error(w, exc, "option checkcache alert")
    page = status if status in ERROR_MESSAGES else 500
    cdef bint keep = not txn.close_client and not s.cli.rd_eof and \
        (txn.req_mode == BODY_NONE or txn.req_body_seen_end)
    http_response_denied(w, idx, s, txn, page)
    txn.status = status
    if keep:
        txn.close_client = False     # its 500 is no internal error: the client may go on
    return True


cdef void http_response_denied(Worker w, int idx, Session *s, HttpTxn txn, object answer):
    """http-response deny / return: the server's response is dropped, the client gets the
    proxy's page for a status, or the rule's own response."""
    cdef BackendRt *be = &w.backends[s.be]
    # the server's response is replaced: haproxy logs no response time (%Tr -1) and
    # counts no status for the server
    txn.t_response = -1
    if answer.__class__ is LocalAnswer:             # http-response redirect / return:
        txn.close_server = True                     # the proxy answers, nothing is denied
        http_answer(w, idx, s, txn, bytes(answer), 502, b'L', b'H')
        return
    if answer.__class__ is LocalStatus:
        txn.close_server = True
        http_error(w, idx, s, txn, int(answer), False, b'L', b'H')
        return
    if answer.__class__ is int and answer == -1:     # silent-drop
        silent_drop(w, s, s.be)
        txn.close_server = True
        s.term0, s.term1 = b'P', b'H'
        txn.term0, txn.term1 = b'P', b'H'
        session_close(w, idx, s)
        return
    (w.be_stats + be.shm_index * STAT_WORDS)[STAT_DENIED_RESP] += 1
    (w.fe_stats + w.frontends[s.fe].shm_index * STAT_WORDS)[STAT_DENIED_RESP] += 1
    listener_count(w, s.listener, STAT_DENIED_RESP, 1)
    if s.server >= 0:
        (w.srv_stats + be.srv_shm[s.server] * STAT_WORDS)[STAT_DENIED_RESP] += 1
    txn.close_server = True
    txn.rsp_denied = True           # its 502 is no failed response (eresp)
    if answer.__class__ is int:
        http_error(w, idx, s, txn, answer, False, b'P', b'H')
    else:
        http_answer(w, idx, s, txn, answer, 502, b'P', b'H')


cdef void http_after_response(Worker w, int idx, Session *s, HttpTxn txn):
    """http-after-response rules, the backend's then the frontend's, on the head the client
    is about to get: a server's or one of fastlb's own answers (pages, deny, return,
    redirects, applets).  The one place every final head passes before it is sent."""
    cdef bytes data = txn.out_cli
    cdef Py_ssize_t end = data.find(b"\r\n\r\n")
    cdef int status
    if end < 0:
        return                         # an empty page (the connection just closes)
    fields, why = parse_head(data[:end + 4], False)
    if fields is None:
        return
    be_rules = (<BackendHooks>w.be_hooks[s.be]).after_response \
        if txn.routed and s.be >= 0 else None
    fe_rules = (<FrontendHooks>w.fe_hooks[s.fe]).after_response
    try:
        stream = response_stream(w, s, txn, fields)
        stream.reason = None
        if be_rules is not None:
            be_rules(stream)
        if fe_rules is not None:
            fe_rules(stream)
        status, reason = fields.status, fields.reason
        if stream.status != status:           # set-status
            status = stream.status
            reason = stream.reason if stream.reason is not None else reason_phrase(status).encode()
        elif stream.reason is not None:
            reason = stream.reason
        if not fields_safe(fields.headers) or not bytes_safe(reason):
            raise HeaderValueError("a rewritten response header holds CR, LF or NUL")
    except Exception as exc:
        # HAProxy's answer to a failed rewrite: 500, and this response is lost
        internal_error(w, exc, "http-after-response rules")
        txn.rsp_state = RS_DONE
        txn.out_cli = None
        http_error(w, idx, s, txn, 500, False, b'P', b'H')
        txn.after_due = False
        txn.close_client = True
        return
    out = [b"HTTP/", fields.version, b" ", str(status).encode(), b" ", reason, b"\r\n"]
    for name, value in fields.headers:
        out += [name, b": ", value, b"\r\n"]
    out.append(b"\r\n")
    out.append(data[end + 4:])
    txn.out_cli = b"".join(out)
    txn.status = status


cdef void http_end_transaction(Worker w, int idx, Session *s, HttpTxn txn):
    """The response is out: log, then close or wait for the next request."""
    http_untrack(w, s, txn)
    http_log(w, s, txn)
    http_account(w, s, txn)
    if buffered(&s.srv) > 0:
        txn.close_server = True         # bytes after the response: that connection is lost
    if txn.close_server or txn.close_client:
        http_drop_server(w, s)
    if txn.close_client:
        session_close(w, idx, s)
        return
    http_lend(w, idx, s)
    txn.reset(w.now, realtime_ms())
