# Request analysers: head -> route -> rules -> persistence -> forward.
# Interface: http_request.pxd.


# ------------------------------------------------------------------ HTTP helpers
cdef object error_page(Worker w, int fe, int be, int status, bint raw):
    """The backend's errorfile, else the frontend's, else HAProxy's page (bytes, or an
    http-error line's LogFormatPage, which made_page() renders)."""
    page = (<BackendHooks>w.be_hooks[be]).error_pages.get(status) if be >= 0 else None
    if page is None:
        page = (<FrontendHooks>w.fe_hooks[fe]).error_pages.get(status)
    if page is None:
        page = builtin_page(status, raw)
    return page


cdef bytes made_page(Worker w, Session *s, HttpTxn txn, object page, int status, bint raw):
    """A log-format http-error page made for this transaction (HAProxy's page when it
    cannot be made)."""
    stream = txn.stream
    if stream is None:
        stream = txn.stream = new_stream(w, s, txn.method or b"", b"", [], b"", txn.sess_vars,
                                         txn.requests <= 1)
    stream.be = s.be if txn.routed else -1
    stream.srv = s.server
    stream.status = status
    try:
        return page(stream)
    except Exception as exc:
        internal_error(w, exc, "http-error page")
        return builtin_page(status, raw)


cdef void add_request_headers(Worker w, int fe, list out, list headers, Session *s):
    editor = (<FrontendHooks>w.fe_hooks[fe]).request_editor
    if editor is not None:          # the addresses are formatted only when they are used
        if editor.wants_dst:        # option originalto: the address the client reached
            editor(out, headers, sockaddr_to_tuple(&s.addr)[0],
                   sockaddr_to_tuple(&s.dst)[0] if session_dst(s) else "", s.be)
        else:
            editor(out, headers, sockaddr_to_tuple(&s.addr)[0], "", s.be)


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
        session_close(w, idx, s)
        return
    # After its own answer HAProxy keeps the client connection when the request was read to
    # its end; a head it could not parse (400, 408) or a body left unread closes it.
    cdef bint body_read = txn.req_mode == BODY_NONE or txn.req_body_seen_end
    page = error_page(w, s.fe, s.be if txn.routed else -1, status, raw)
    txn.out_cli = page if page.__class__ is bytes else made_page(w, s, txn, page, status, raw)
    cdef Py_ssize_t head_end
    if txn.is_head and not raw:
        # no body answers a HEAD: a keep-alive client would read the page's as the start
        # of its next response (HAProxy sends the head alone too)
        head_end = txn.out_cli.find(b"\r\n\r\n")
        if head_end >= 0:
            txn.out_cli = txn.out_cli[:head_end + 4]
    txn.out_cli_off = 0
    # HAProxy runs no http-after-response rule on errors met while reading a head
    txn.after_due = not raw and has_after_rules(w, s, txn)
    txn.req_error = raw
    txn.count_bytes = not raw
    txn.status = status
    txn.error_sent = True
    if raw or not body_read or status == 500 or s.cli.rd_eof:
        txn.close_client = True
    elif txn.req_avail > 0:
        side_consume(&s.cli, &w.pool, txn.req_avail)     # the rest of this request's body
        txn.req_avail = 0
    txn.term0 = term0
    txn.term1 = term1
    txn.req_state = RQ_DONE
    txn.rsp_state = RS_DONE
    if s.state != ST_IDLE or s.server >= 0:
        http_drop_server(w, s)


cdef inline bint has_after_rules(Worker w, Session *s, HttpTxn txn):
    return (<FrontendHooks>w.fe_hooks[s.fe]).after_response is not None or \
        (txn.routed and s.be >= 0 and (<BackendHooks>w.be_hooks[s.be]).after_response is not None)


cdef int page_status(bytes page, int fallback):
    """The status of a whole response held as bytes (an errorfile's)."""
    if len(page) >= 12 and page[9:12].isdigit():
        return int(page[9:12])
    return fallback


cdef void http_answer(Worker w, int idx, Session *s, HttpTxn txn, bytes page, int fallback,
                      char term0, char term1):
    """Answer with a whole response of a rule's own (any status, with or without a page
    of HAProxy's); ``fallback`` when it has no readable status line."""
    http_error(w, idx, s, txn, fallback, False, term0, term1)
    txn.out_cli = page
    txn.status = page_status(page, fallback)


cdef void http_tarpit_over(Worker w, int idx, Session *s, HttpTxn txn):
    """The hold of a tarpitted request has ended: its answer, logged "PT"."""
    answer = txn.tarpit_answer
    txn.tarpit_answer = None
    if answer.__class__ is int:
        http_error(w, idx, s, txn, answer, False, b'P', b'T')
    else:
        http_answer(w, idx, s, txn, answer, 500, b'P', b'T')


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


cdef void refresh_dynamic_cookies(Worker w, int b, BackendHooks hooks):
    """The stats socket changed this backend's dynamic cookies: each server without a
    cookie of its own takes the hash the master wrote, or none when they are off."""
    cdef BackendRt *be = &w.backends[b]
    cdef uint64_t word = fl_atomic_load(w.be_words + b * BE_WORDS + BE_DYNCOOKIE)
    cdef int i
    values = []
    for i in range(be.nservers):
        static = hooks.static_cookies[i]
        if static is not None:
            values.append(static)
        elif word & 1:
            values.append("%016x" % fl_atomic_load(w.srv_words + be.srv_shm[i] * SRV_WORDS
                                                   + SRV_DYNCOOKIE))
        else:
            values.append(None)
    hooks.cookie.set_server_cookies(values)
    hooks.dyncookie_seen = word


cdef object new_stream(Worker w, Session *s, object method, bytes url, list headers,
                       bytes version, object sess_vars, bint first):
    """A Stream of this session: its client, and the address it reached (a PROXY
    header's, else the socket's)."""
    client = sockaddr_to_tuple(&s.addr)
    dst = sockaddr_to_tuple(&s.dst)[0] if session_dst(s) else ""
    stream = Stream(method, url, headers, client[0], session_dst_port(w, s), version, sess_vars,
                    client[1], dst, s.fe, first, w.listeners[s.listener].luid)
    if s.prio_class or s.prio_offset:      # set by tcp-request content rules before
        stream.prio_class = s.prio_class
        stream.prio_offset = s.prio_offset
    return stream


cdef object txn_stream(Worker w, Session *s, HttpTxn txn, Head fields):
    """The request as sample fetches see it (created on first use, kept for the response
    rules and the log)."""
    if txn.stream is None:
        txn.stream = new_stream(w, s, fields.method, fields.url, fields.headers,
                                fields.version, txn.sess_vars, txn.requests <= 1)
        txn.stream.captures_req = txn.captures_req
    return txn.stream


cdef bint fill_address(sockaddr_storage *out, str ip, int port):
    """``ip``:``port`` into a sockaddr (False: not an address)."""
    cdef bytes text = ip.encode("ascii")
    memset(out, 0, sizeof(sockaddr_storage))
    if ":" in ip:
        (<sockaddr_in6 *>out).sin6_family = AF_INET6
        (<sockaddr_in6 *>out).sin6_port = htons(port)
        return inet_pton(AF_INET6, text, &(<sockaddr_in6 *>out).sin6_addr) == 1
    (<sockaddr_in *>out).sin_family = AF_INET
    (<sockaddr_in *>out).sin_port = htons(port)
    return inet_pton(AF_INET, text, &(<sockaddr_in *>out).sin_addr) == 1


cdef void client_socket_options(Session *s, object stream):
    """set-tos / set-mark: on the client connection (a refusal, as for SO_MARK without
    CAP_NET_ADMIN, leaves it as it was, as in HAProxy)."""
    cdef int value
    if s.cli.fd < 0:
        return
    if stream.tos >= 0:
        value = stream.tos
        if s.addr.ss_family == AF_INET6:
            setsockopt(s.cli.fd, IPPROTO_IPV6, IPV6_TCLASS, &value, sizeof(int))
        else:
            setsockopt(s.cli.fd, IPPROTO_IP, IP_TOS, &value, sizeof(int))
    if stream.mark >= 0:
        value = <int><uint32_t>stream.mark
        setsockopt(s.cli.fd, SOL_SOCKET, SO_MARK, &value, sizeof(int))


cdef void stream_edits(Session *s, Head fields, object stream):
    """What rules changed: the request line (headers are edited in place) and, after
    set-src / set-dst, the session's addresses, as a PROXY header changes them."""
    cdef sockaddr_storage addr
    fields.method = stream.method
    fields.url = stream.url
    if not stream.moved:
        return
    if stream.moved & MOVED_SOCKET:
        client_socket_options(s, stream)
    if stream.moved & MOVED_TIMEOUT:
        s.t_server_rule = stream.timeout_server
        s.t_tunnel_rule = stream.timeout_tunnel
    if stream.moved & MOVED_PRIORITY:
        s.prio_class = stream.prio_class
        s.prio_offset = stream.prio_offset
    if stream.moved & MOVED_SRC and fill_address(&addr, stream.src, stream.src_port):
        memcpy(&s.addr, &addr, sizeof(sockaddr_storage))
        s.addrlen = sizeof(sockaddr_in) if addr.ss_family == AF_INET else sizeof(sockaddr_in6)
    if stream.moved & MOVED_DST and fill_address(&addr, stream.dst, stream.dst_port):
        memcpy(&s.dst, &addr, sizeof(sockaddr_storage))
        s.dst_known = 2
    stream.moved = 0


cdef void stage_early_hints(HttpTxn txn, object stream):
    """The 103 responses early-hint rules built go out ahead of the answer."""
    cdef bytes hints = early_hints_response(stream.hints)
    stream.hints = None
    txn.interim = hints if txn.interim is None else txn.interim + hints


_PLAIN_NAME = re.compile(rb"[A-Za-z0-9-]+\Z").match


cdef bint restrict_header_names(Worker w, int idx, Session *s, HttpTxn txn, Head fields,
                                int mode, bint keep_alive):
    """option http-restrict-req-hdr-names, after the proxy's rules: a header whose name has
    more than letters, digits and '-' is removed, or the request refused with a 403."""
    cdef list headers = fields.headers
    for name, _ in headers:
        if _PLAIN_NAME(name) is None:
            break
    else:
        return True
    if mode == RESTRICT_REJECT:
        return http_local_answer(w, idx, s, txn, (ROUTE_DENY, 403), keep_alive)
    headers[:] = [h for h in headers if _PLAIN_NAME(h[0]) is not None]    # the stream's too
    return True


cdef bint http_request_head(Worker w, int idx, Session *s, HttpTxn txn):
    """Analyse a complete request head, one phase after the other (HAProxy's http_ana.c
    analysers): parse, (the body, when the proxy waits for it: http_body.pxi), route,
    backend rules, persistence, forward, assign.  False when the request ends in one of
    them (answered, refused or closed) or waits, instead of being forwarded."""
    cdef int64_t length
    cdef bint keep_alive
    http_unlend(w, s)                    # our kept server connection is ours again
    fields = req_parse(w, idx, s, txn, &length, &keep_alive)
    if fields is None:
        return False
    if w.frontends[s.fe].buffer_request == BUFFER_WAIT:
        body_wait_begin(w, s, txn, w.frontends[s.fe].t_http_request, 0)
        body_wait_keep(w, s, txn, fields, length, keep_alive, False, BODY_PHASE_FE)
        return False
    return http_request_rest(w, idx, s, txn, fields, length, keep_alive, False,
                             BODY_PHASE_FE)


cdef Head req_parse(Worker w, int idx, Session *s, HttpTxn txn, int64_t *length,
                    bint *keep_alive):
    """Parse the head and check its framing; None when the request was refused (400, 413,
    422).  Consumes the head from the client buffer."""
    cdef FrontendHooks hooks = <FrontendHooks>w.fe_hooks[s.fe]
    cdef int64_t end = txn.req_head_end
    cdef bytes head = (s.cli.buf + s.cli.head)[:end]
    cdef bytes version, method
    cdef int chunked_te
    cdef Head fields
    parsed, why = parse_head(head, True, w.frontends[s.fe].accept_invalid)
    txn.requests += 1
    if parsed is None:
        capture_error(w, s, False, head, why)
        txn.request_line = b"<BADREQ>"
        http_error(w, idx, s, txn, 400, True, b'P', b'R')
        return None
    fields = parsed
    txn.t_head = w.now
    if hooks.captures_req is not None:
        txn.captures_req = capture_headers(hooks.captures_req, fields.headers)
    if hooks.capture_cookie is not None:
        txn.cookie_req = captured_cookie(fields.headers, hooks.capture_cookie, False)
    if hooks.captures_rsp is not None:
        txn.captures_rsp = [""] * len(hooks.captures_rsp)
    method = fields.method
    version = fields.version
    txn.request_line = method + b" " + fields.url + b" HTTP/" + version
    side_consume(&s.cli, &w.pool, end)
    txn.bytes_in = end
    txn.req_scanned = 0
    keep_alive[0] = _keep_alive(version, fields.headers)
    txn.is_head = method == b"HEAD"
    txn.method = method
    txn.is_connect = method == b"CONNECT"
    why = request_refused(fields, w.frontends[s.fe].accept_invalid)
    length[0] = content_length(fields.headers)
    chunked_te = transfer_chunked(fields.headers)
    if why is None:
        if length[0] == -2:
            why = "malformed Content-Length"
        elif chunked_te < 0:
            why = "Transfer-Encoding without chunked as its final coding"
        elif version == b"1.0" and (length[0] > 0 or chunked_te) and \
                (method == b"GET" or method == b"HEAD" or method == b"DELETE"):
            # HAProxy 2.6 refuses a body on these methods from an HTTP/1.0 client
            http_error(w, idx, s, txn, 413, False, b'P', b'R')
            txn.close_client = True
            return None
        elif chunked_te == 2:
            capture_error(w, s, False, head, "a transfer coding other than chunked")
            http_error(w, idx, s, txn, 422, False, b'P', b'R')
            txn.close_client = True
            return None
        elif chunked_te and length[0] >= 0:
            why = "both Content-Length and Transfer-Encoding"
        elif length[0] > MAX_CONTENT_LENGTH:
            why = "Content-Length too large"
    if why is not None:
        capture_error(w, s, False, head, why)
        txn.request_line = b"<BADREQ>"
        http_error(w, idx, s, txn, 400, True, b'P', b'R')
        return None
    if chunked_te:
        txn.req_mode = BODY_CHUNKED
    elif length[0] > 0:
        txn.req_mode = BODY_LENGTH
        txn.req_remaining = length[0]
    else:
        txn.req_mode = BODY_NONE
    # a stopping worker answers this request, then closes: the client's next request
    # goes to a new connection, which the new workers accept
    txn.close_client = not keep_alive[0] or w.stopping != 0
    return fields


cdef bint req_route(Worker w, int idx, Session *s, HttpTxn txn, Head fields, bint keep_alive,
                    bint *edited):
    """The frontend's monitor-uri, http-request rules, stats page and use_backend: answered
    here (False), or on to a backend.  No backend at all: 503."""
    cdef FrontendHooks hooks = <FrontendHooks>w.fe_hooks[s.fe]
    router = hooks.router
    s.t_server_rule = s.t_tunnel_rule = 0       # set-timeout lasts one request
    if txn.requests > 1:
        s.prio_class = s.prio_offset = 0        # so does a priority (the first request
                                                # keeps a tcp-request content one)
    if hooks.streams:
        txn_stream(w, s, txn, fields)
    if router is not None:
        edited[0] = True
        stream = txn_stream(w, s, txn, fields)
        try:
            verdict = router(stream)
            stream_edits(s, fields, stream)
        except Exception as exc:
            return http_rule_failed(w, idx, s, txn, exc)
        if stream.hints is not None:
            stage_early_hints(txn, stream)
        if verdict[0] == ROUTE_APPLET:
            applet_request(txn, fields.method, fields, fields.version)
        if not http_local_answer(w, idx, s, txn, verdict, keep_alive):
            return False
        value = verdict[1]
        if value != s.be:
            # another backend for this request: the kept server connection is of no use
            http_drop_server(w, s)
            s.be = value
    txn.routed = True
    if txn.stream is not None:
        txn.stream.be = s.be
    if s.be < 0:
        http_error(w, idx, s, txn, 503, False, b'S', b'C')
        return False
    return True


cdef bint req_backend_rules(Worker w, int idx, Session *s, HttpTxn txn, Head fields,
                            bint keep_alive, bint *edited):
    """The backend's own http-request rules and stats page."""
    rules = (<BackendHooks>w.be_hooks[s.be]).request_rules
    if rules is None:
        return True
    edited[0] = True
    stream = txn_stream(w, s, txn, fields)
    stream.be = s.be
    try:
        verdict = rules(stream)
        stream_edits(s, fields, stream)
    except Exception as exc:
        return http_rule_failed(w, idx, s, txn, exc)
    if stream.hints is not None:
        stage_early_hints(txn, stream)
    if verdict is None:
        return True
    if verdict[0] == ROUTE_APPLET:
        applet_request(txn, fields.method, fields, fields.version)
    return http_local_answer(w, idx, s, txn, verdict, keep_alive, True)


cdef void req_persistence(Worker w, Session *s, HttpTxn txn, Head fields):
    """The request belongs to its backend now: close mode, counts, then what decides its
    server: a persistence cookie, the balancing key."""
    cdef FrontendRt *fe = &w.frontends[s.fe]
    cdef BackendRt *be = &w.backends[s.be]
    cdef uint64_t *be_row = w.be_stats + be.shm_index * STAT_WORDS
    cdef int mode = fe.http_close if fe.http_close > be.http_close else be.http_close
    if mode == CLOSE_BOTH:
        txn.close_client = txn.close_server = True
    elif mode == CLOSE_SERVER:
        txn.close_server = True
    count_add(w, w.be_off + be.shm_index, 1)
    txn.be_counted = True
    be_row[STAT_SESS_TOT] += 1
    stat_max(be_row, STAT_SMAX, <int64_t>w.slot[w.be_off + be.shm_index])
    s.t_queued = -1
    s.forced_server = -1
    s.avoid_server = -1
    s.persist_rule = 0
    cdef int chosen = -1
    cdef BackendHooks hooks = <BackendHooks>w.be_hooks[s.be]
    if hooks.persist_rules is not None:
        try:
            s.persist_rule = hooks.persist_rules(txn_stream(w, s, txn, fields))
        except Exception as exc:
            internal_error(w, exc, "force-persist / ignore-persist rules")
    if hooks.server_rules is not None:
        chosen = use_server(w, s, txn_stream(w, s, txn, fields))
    persistence = hooks.cookie
    if persistence is not None:
        if fl_atomic_load(w.be_words + s.be * BE_WORDS + BE_DYNCOOKIE) != hooks.dyncookie_seen:
            refresh_dynamic_cookies(w, s.be, hooks)
        server, letter, txn.ck_seen = persistence.on_request(fields.headers)
        if s.persist_rule == PERSIST_IGNORE:
            if letter == "V" or letter == "I":
                letter = "U"             # found, deliberately not used (HAProxy's TX_CK_UNUSED)
            server = -1
        elif server >= 0 and not persist_usable(w, be, server):
            if letter != "-":            # "-": a mode that logs no cookie letters
                letter = "D"
            if not (be.persist or s.persist_rule == PERSIST_FORCE):
                server = -1              # its server is down: balanced like a new client
            else:
                txn.server_forced = True     # sent there all the same (HAProxy's SF_DIRECT)
        s.forced_server = server
        txn.ck_client = letter
    if chosen >= 0:
        s.forced_server = chosen     # use-server wins; the cookie was still read (its prefix)
        txn.server_forced = True
    if txn.stream is not None:
        txn.stream.enter_response_scope()     # HAProxy drops req. variables here
    if be.key == KEY_EXPR:
        stream = txn_stream(w, s, txn, fields)
        stream.enter_response_scope()
        set_expr_key(w, s, stream)
    elif be.key != KEY_NONE:
        set_http_key(w, s, fields.url, fields.headers)
        if be.key == KEY_URL_PARAM and not s.has_key and txn.method == b"POST":
            found = body_check(w, s, txn, True)
            if found:
                set_post_param_key(w, s, found[0])


cdef void req_forward(Worker w, Session *s, HttpTxn txn, Head fields, int64_t length):
    """The head as the server gets it (hop-by-hop Connection dropped, one Content-Length,
    forwardfor, our close), staged with the first body bytes when few."""
    cdef list out = [fields.method, b" ", fields.url, b" HTTP/", fields.version, b"\r\n"]
    cdef bint upgrade = _connection_has(fields.headers, b"upgrade")
    cdef int64_t unsent
    cdef bytes name_header = (<BackendHooks>w.be_hooks[s.be]).name_header
    for name, value in fields.headers:
        if name == b"connection" and not upgrade:
            continue
        if name_header and name == name_header:
            continue                    # http-send-name-header replaces any the client sent
        if name == b"content-length":
            if length < 0:
                continue
            value = str(length).encode()      # one value for "3, 3" or repeated lines
            length = -1
        out += [name, b": ", value, b"\r\n"]
    add_request_headers(w, s.fe, out, fields.headers, s)
    # What the server is told is the server side's fate, as HAProxy's (a client's close
    # is the client side's); http-pretend-keepalive never announces a close.  HTTP/1.0
    # closes unless told to keep alive.
    cdef bint announce_close = txn.close_server and not w.backends[s.be].pretend_keepalive
    if fields.version == b"1.0":
        if not announce_close and not upgrade:
            out.append(b"connection: keep-alive\r\n")
    elif announce_close:
        out.append(b"connection: close\r\n")
    txn.name_at = sum([len(part) for part in out]) if name_header else -1
    out.append(b"\r\n")
    txn.req_state = RQ_BODY
    unsent = buffered(&s.cli)
    # retry-on replays what fits a buffer (HAProxy's l7 buffer): keep up to that much
    append_small_body(w, &s.cli, out, &txn.req_chunk, txn.req_mode, &txn.req_remaining,
                      &txn.req_avail, &txn.req_body_seen_end,
                      w.bufsize if w.backends[s.be].retry_on & RE_L7 else SMALL_BODY)
    txn.bytes_in += unsent - buffered(&s.cli)
    txn.out_srv = txn.request_head_copy = b"".join(out) if not w.backends[s.be].case_adjust \
        else adjust_case(b"".join(out))
    txn.out_srv_off = 0
    txn.rsp_state = RS_HEAD
    # retry-on beyond conn-failure replays the request from that copy: only when it is
    # whole there (no body, or all of a small one that came with the head)
    txn.l7_retry = (w.backends[s.be].retry_on & RE_L7) != 0 and \
        (txn.req_mode == BODY_NONE or (txn.req_body_seen_end and txn.req_avail == 0)) \
        and not (txn.stream is not None and txn.stream.no_l7_retry)


cdef bint req_assign(Worker w, int idx, Session *s, HttpTxn txn):
    """A server for the request: queued, refused (503), or on its way."""
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
    internal_error(w, exc, "http-request rules")
    w.fe_stats[s.fe * STAT_WORDS + STAT_ERR_REQ] += 1
    listener_count(w, s.listener, STAT_ERR_REQ, 1)
    http_error(w, idx, s, txn, 500, False, b'P', b'R')
    return False


cdef bint http_assigned(Worker w, int idx, Session *s, HttpTxn txn, int chosen):
    """The request has its server: send it on the kept connection when it goes to the same
    server (http-reuse safe), else on a new one.  A server with "redir" answers a GET or
    HEAD itself: a 302 to its prefix and the path."""
    txn.log_server = chosen
    redirects = (<BackendHooks>w.be_hooks[s.be]).redirects
    if redirects is not None and redirects[chosen] is not None and \
            (txn.method == b"GET" or txn.method == b"HEAD") and server_redirect(w, idx, s, txn,
                                                                          redirects[chosen]):
        return False
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
            start_connect(w, idx, s)
            return s.state != ST_FREE
    txn.reused = True
    txn.t_sent = w.now
    txn.t_connect_ms = 0
    return True


cdef bint server_redirect(Worker w, int idx, Session *s, HttpTxn txn, bytes prefix):
    """HAProxy's http_perform_server_redirect: the 302 (the prefix "/" keeps the path
    alone), then the connection closes; logged with the server, "LC".  False when the
    target has no path ("*"): the request goes to the server."""
    cdef bytes head = txn.request_head_copy or b""        # as it goes to the server
    cdef bytes url = head[:head.find(b"\r\n")].split(b" ")[1] if b" " in head else b""
    cdef bytes path = split_target(url)[1]
    if not path.startswith(b"/"):
        return False
    location = path if prefix == b"/" else prefix + path
    # (the page of 503 only stands in for one with no status line: this one has one)
    http_answer(w, idx, s, txn, b"HTTP/1.1 302 Found\r\ncache-control: no-cache\r\n"
                b"content-length: 0\r\nlocation: " + location +
                b"\r\nconnection: close\r\n\r\n", 503, b'L', b'C')
    txn.close_client = True
    txn.count_bytes = True
    server_release(w, s)
    return True


cdef bint http_local_answer(Worker w, int idx, Session *s, HttpTxn txn, tuple verdict,
                            bint keep_alive, bint be_rules=False):
    """Carry out a rule's verdict; True when the request goes on to a backend.
    ``be_rules``: the backend's rules gave it (the session has that backend)."""
    action, value = verdict
    if action == ROUTE_DENY:
        w.fe_stats[s.fe * STAT_WORDS + STAT_DENIED_REQ] += 1
        listener_count(w, s.listener, STAT_DENIED_REQ, 1)
        if value.__class__ is int:               # the proxy's page for that status
            http_error(w, idx, s, txn, value, False, b'P', b'R')
        else:                                    # its own errorfile or body
            http_answer(w, idx, s, txn, value, 403, b'P', b'R')
        return False
    if action == ROUTE_RESPOND or action == ROUTE_RAW or action == ROUTE_PAGE:
        w.fe_stats[s.fe * STAT_WORDS + STAT_INTERCEPTED] += 1
        # monitor-uri, http-request return / redirect: answered here, never forwarded
        if action == ROUTE_RAW:
            http_answer(w, idx, s, txn, value, 200, b'L', b'R')
        else:
            http_error(w, idx, s, txn, value, False, b'L', b'R')
            txn.logged = action == ROUTE_RESPOND  # HAProxy does not log monitor requests
        txn.close_client = txn.req_mode != BODY_NONE or not keep_alive or w.stopping != 0 or \
            s.cli.rd_eof != 0
        return False
    if action == ROUTE_TARPIT:
        # HAProxy counts it as denied; nothing is read or answered until the hold ends
        w.fe_stats[s.fe * STAT_WORDS + STAT_DENIED_REQ] += 1
        listener_count(w, s.listener, STAT_DENIED_REQ, 1)
        hold, txn.tarpit_answer = value
        txn.tarpit_until = w.now + hold
        txn.req_state = RQ_TARPIT
        return False
    if action == ROUTE_APPLET:
        w.fe_stats[s.fe * STAT_WORDS + STAT_INTERCEPTED] += 1
        txn.applet = (value, txn.method_seen, txn.url_seen, txn.headers_seen, keep_alive,
                      txn.version_seen)
        txn.req_state = RQ_APPLET
        return False
    if action == ROUTE_REJECT:
        if value == 1:                           # the client is not even told (counted there)
            silent_drop(w, s, s.be if be_rules else -1)
        else:
            w.fe_stats[w.frontends[s.fe].shm_index * STAT_WORDS + STAT_DENIED_REQ] += 1
            listener_count(w, s.listener, STAT_DENIED_REQ, 1)
            if be_rules:
                (w.be_stats + w.backends[s.be].shm_index * STAT_WORDS)[STAT_DENIED_REQ] += 1
        s.term0, s.term1 = b'P', b'R'
        txn.term0, txn.term1 = b'P', b'R'
        txn.status = -1
        session_close(w, idx, s)                 # no answer at all
        return False
    if action == ROUTE_WAIT_BODY:                # the rules go on once the body is in
        body_wait_begin(w, s, txn, value[0], value[1])
        return False
    return True
