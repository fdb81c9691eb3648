# Server connections: connect, retries, redispatch.
# Interface: connect.pxd.


# ------------------------------------------------------------------ server connection
cdef void start_connect(Worker w, int idx, Session *s):
    cdef BackendRt *be = &w.backends[s.be]
    cdef ServerRt *srv
    cdef sockaddr_storage addr
    cdef int fd, rc, one = 1, zero = 0, family
    cdef socklen_t addrlen
    cdef linger no_linger = linger(1, 0)     # option nolinger: close() resets
    if s.server < 0:
        s.server = assign_server(w, idx, s)
        if s.server == ASSIGN_QUEUED:
            s.server = -1
            return                    # waits in a queue (run_queues() goes on)
        if s.server < 0:
            s.server = -1
            no_connection(w, idx, s, b'S')
            return
    if s.http:
        http_txn(w, idx).log_server = s.server
    srv = &be.servers[s.server]
    if srv.sockpair_fd >= 0:
        connect_sockpair(w, idx, s, srv)
        return
    family, addrlen = srv.family, srv.addrlen
    if srv.client_dst:
        # option transparent: where the client connected (a PROXY header's destination,
        # set-dst); HAProxy's connect fails when that is no IPv4/IPv6 address
        if not session_dst(s) or (s.dst.ss_family != AF_INET and s.dst.ss_family != AF_INET6):
            no_connection(w, idx, s, b'S')
            return
        family = s.dst.ss_family
        addrlen = sizeof(sockaddr_in) if family == AF_INET else sizeof(sockaddr_in6)
        memcpy(&addr, &s.dst, addrlen)
    else:
        memcpy(&addr, &srv.addr, srv.addrlen)
        if srv.use_client_port:
            (<sockaddr_in *>&addr).sin_port = htons(session_dst_port(w, s))
    if srv.netns_fd >= 0:
        fd = socket_in_namespace(w, srv)
    else:
        fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
    if fd < 0:
        no_connection(w, idx, s, b'R')     # resource shortage on our side
        return
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(int))
    if be.srvtcpka:
        keepalive(fd, be.srvtcpka_probes)
    if w.rcvbuf_server:
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &w.rcvbuf_server, sizeof(int))
    if w.sndbuf_server:
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &w.sndbuf_server, sizeof(int))
    if be.nolinger:
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &no_linger, sizeof(linger))
    if srv.tcp_ut:
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &srv.tcp_ut, sizeof(int))
    if be.smart_connect and (s.http or srv.send_proxy or s.cli.tail > s.cli.head):
        # only with bytes to go at once (the manual's intent; haproxy 2.6 looks at the
        # response channel there, so in effect only send-proxy counts)
        setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &zero, sizeof(int))
    if srv.tfo and s.retries_left == be.retries and \
            (s.http or srv.send_proxy or s.cli.tail > s.cli.head):
        # TCP Fast Open: with a cookie cached, connect() returns at once and the first
        # write goes on the SYN. Only a first attempt with bytes to send, as the manual
        # says (haproxy 2.6 tests the response channel, so it never does in practice); a
        # refusal then shows as an error after "connected", which retry-on conn-failure /
        # empty-response cover (the manual's advice).
        setsockopt(fd, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof(int))
    if (srv.source.len or be.source.len) and srv.family != AF_UNIX:
        rc = bind_source(w, idx, s, fd, &srv.source if srv.source.len else &be.source,
                         s.server if srv.source.len else -1)
        if rc != 0:
            close(fd)
            # HAProxy: "Cannot bind to source address" (R), or usesrc hdr_ip() without
            # its header (an internal error: 500, I)
            no_connection(w, idx, s, b'R' if rc == -1 else b'I')
            return
    side_attach(&s.srv, fd, &raw_socket)
    s.srv.readable = 0        # its first EPOLLIN edge says when the server has spoken
    s.srv.last = s.srv.last_rd = w.now
    s.srv_epoch += 1          # a new server socket: its older queued events are stale
    s.t_connect = w.now
    s.state = ST_CONNECTING
    if side_watch(w, idx, s, &s.srv, SIDE_SRV) != 0:
        side_close(&s.srv)
        no_connection(w, idx, s, b'R')
        return
    rc = connect(fd, <sockaddr *>&addr, addrlen)
    if rc == 0:
        connected(w, idx, s)
    elif errno == EINPROGRESS:
        arm_timer(w, idx, s)
    else:
        connect_failed(w, idx, s, 0)


cdef void connect_sockpair(Worker w, int idx, Session *s, ServerRt *srv):
    """A sockpair@<fd> server: a new socket pair, one end handed over the descriptor (the
    server accepts it from there), the other one the server connection, connected now."""
    cdef int pair[2]
    if socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0:
        no_connection(w, idx, s, b'R')
        return
    if fd_send(srv.sockpair_fd, pair[1]) != 0:
        close(pair[0])
        close(pair[1])
        no_connection(w, idx, s, b'S')     # nobody takes connections there any more
        return
    close(pair[1])
    side_attach(&s.srv, pair[0], &raw_socket)
    s.srv.readable = 0
    s.srv.last = s.srv.last_rd = w.now
    s.srv_epoch += 1
    s.t_connect = w.now
    s.state = ST_CONNECTING
    if side_watch(w, idx, s, &s.srv, SIDE_SRV) != 0:
        side_close(&s.srv)
        no_connection(w, idx, s, b'R')
        return
    connected(w, idx, s)


cdef int bind_source(Worker w, int idx, Session *s, int fd, SourceRt *src, int owner):
    """Bind a server socket as its source line says (owner: the server whose own line it
    is, -1: the backend's); with usesrc, to the foreign address it presents in full
    transparent proxy mode. 0, -1 when the bind failed, -2 when usesrc hdr_ip() found no
    header value."""
    cdef int one = 1
    cdef sockaddr_storage foreign
    cdef socklen_t foreign_len = 0
    # as HAProxy: SO_REUSEADDR so that a fixed source port can serve successive sessions
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(int))
    if src.iface[0]:
        setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, src.iface, strlen(src.iface) + 1)
    if src.usesrc == USESRC_ADDR:
        memcpy(&foreign, &src.tproxy, src.tproxy_len)
        foreign_len = src.tproxy_len
    elif (src.usesrc == USESRC_CLIENT or src.usesrc == USESRC_CLIENTIP) and \
            (s.addr.ss_family == AF_INET or s.addr.ss_family == AF_INET6):
        memcpy(&foreign, &s.addr, sizeof(sockaddr_storage))
        foreign_len = sizeof(sockaddr_in) if s.addr.ss_family == AF_INET else sizeof(sockaddr_in6)
        if src.usesrc == USESRC_CLIENTIP:
            (<sockaddr_in *>&foreign).sin_port = 0      # same offset in sockaddr_in6
    elif src.usesrc == USESRC_HDR:
        if not s.http or not header_address(w, idx, s, src, owner, &foreign):
            return -2                   # HAProxy: no such header is an internal error
        foreign_len = sizeof(sockaddr_in)
    if foreign_len == 0:
        return bind(fd, <sockaddr *>&src.addr, src.len)
    if foreign.ss_family == AF_INET6:
        setsockopt(fd, IPPROTO_IPV6, IPV6_TRANSPARENT, &one, sizeof(int))
    elif setsockopt(fd, IPPROTO_IP, IP_TRANSPARENT, &one, sizeof(int)) != 0:
        setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(int))
    return bind(fd, <sockaddr *>&foreign, foreign_len)


cdef bint header_address(Worker w, int idx, Session *s, SourceRt *src, int owner,
                         sockaddr_storage *out):
    """usesrc hdr_ip(): the IPv4 address in the request header's chosen value (as it
    goes to the server), as HAProxy's inetaddr_host_lim() reads it (no address: 0.0.0.0);
    False when the header or that value is missing."""
    cdef bytes head = http_txn(w, idx).request_head_copy
    name = (<BackendHooks>w.be_hooks[s.be]).usesrc_hdr.get(owner)
    if not head or name is None or src.hdr_occ == 0:
        return False
    values = []
    for line in head.split(b"\r\n")[1:]:
        field, colon, value = line.partition(b":")
        if colon and field.strip(b" \t").lower() == name:
            values += [part.strip(b" \t") for part in value.split(b",")]
    position = src.hdr_occ - 1 if src.hdr_occ > 0 else len(values) + src.hdr_occ
    if not 0 <= position < len(values):
        return False
    memset(out, 0, sizeof(sockaddr_storage))
    (<sockaddr_in *>out).sin_family = AF_INET
    (<sockaddr_in *>out).sin_addr.s_addr = htonl(ipv4_prefix(values[position]))
    return True


cdef uint32_t ipv4_prefix(bytes text):
    """The dotted IPv4 address at the start of text, digits until anything else, as
    HAProxy's inetaddr_host_lim() (0 when it is not one)."""
    cdef uint32_t value = 0
    parts = text.split(b".", 3)
    if len(parts) != 4:
        return 0
    for i, piece in enumerate(parts):
        digits = piece if i < 3 else leading_digits(piece)
        if not digits or not digits.isdigit() or int(digits) > 255:
            return 0
        value = (value << 8) | int(digits)
    return value


cdef bytes leading_digits(bytes text):
    cdef Py_ssize_t n = 0
    while n < len(text) and 48 <= text[n] <= 57:
        n += 1
    return text[:n]


cdef int socket_in_namespace(Worker w, ServerRt *srv) noexcept nogil:
    """server ... namespace: a socket made in the server's network namespace (the worker
    goes back to its own at once; a socket keeps the namespace it was made in), -1 when
    the namespace cannot be entered (no CAP_SYS_ADMIN after a privilege drop)."""
    cdef int fd
    if setns(srv.netns_fd, CLONE_NEWNET) != 0:
        return -1
    fd = socket(srv.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
    if setns(w.home_netns, CLONE_NEWNET) != 0:
        abort()                        # staying in the wrong namespace is not an option
    return fd


cdef void no_connection(Worker w, int idx, Session *s, char cause):
    """No server connection could be made: TCP closes, HTTP answers 503."""
    if s.http:
        http_error(w, idx, s, http_txn(w, idx), 500 if cause == b'I' else 503, False, cause,
                   b'C')
        http_run(w, idx, s)
        return
    s.term0 = cause
    s.term1 = b'C'
    session_close(w, idx, s)


cdef void on_connect_event(Worker w, int idx, Session *s):
    cdef int err = 0
    cdef socklen_t len = sizeof(int)
    if getsockopt(s.srv.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0:
        err = errno
    if err == 0:
        connected(w, idx, s)
    elif err != EINPROGRESS:
        connect_failed(w, idx, s, 0)


cdef void connected(Worker w, int idx, Session *s):
    cdef ServerRt *srv = &w.backends[s.be].servers[s.server]
    if srv.send_proxy:
        # before any byte of the client's (the connection carries this client's address:
        # shareable() in http_pool.pxi never lends it to another session)
        if proxy_header_send(w, s, srv) != 0:
            connect_failed(w, idx, s, 0)
            return
    observe(w, &w.backends[s.be], s.server, OBSERVE_LAYER4, False)
    w.be_stats[w.backends[s.be].shm_index * STAT_WORDS + STAT_CONNECT] += 1
    w.srv_stats[w.backends[s.be].srv_shm[s.server] * STAT_WORDS + STAT_CONNECT] += 1
    s.state = ST_ESTABLISHED
    s.t_established = w.now
    if w.frontends[s.fe].log_addrs:
        log_addresses(s)
    if w.frontends[s.fe].logasap and not s.http and w.frontends[s.fe].log_mode == LOG_TCPLOG \
            and w.log_callback is not None:
        log_end(w, s)               # option logasap: the line goes out now, '+' before %Tt
        s.logged = 1
    s.srv.last = s.srv.last_rd = w.now
    if s.http:
        http_txn(w, idx).t_connect_ms = w.now - s.t_connect
        http_run(w, idx, s)
        return
    # Data the client sent while we were connecting goes out now; a server that spoke
    # first gave its only edge with the connect one.
    relay_run(w, idx, s, 3)


cdef bint retry_redispatches(BackendRt *be, Session *s) noexcept nogil:
    """option redispatch: a retry goes to another server at once when another is up and the
    balancing does not tie the request to this one (HAProxy: no hash), else on the
    redispatch interval (by default the last retry)."""
    if not be.redispatch or s.persist_rule == PERSIST_FORCE:
        return False
    if be.nactive > 1:
        return True
    if be.redispatch > 0:
        return s.retries_done % be.redispatch == 0
    return s.retries_done % (be.retries + 1 + be.redispatch) == 0


cdef void redispatch_away(Worker w, Session *s, BackendRt *be, int server):
    """A retry leaves ``server`` (counted as its redispatch) for the balancing to choose
    again, anywhere but there."""
    w.be_stats[be.shm_index * STAT_WORDS + STAT_REDISPATCHES] += 1
    w.srv_stats[be.srv_shm[server] * STAT_WORDS + STAT_REDISPATCHES] += 1
    server_release(w, s)
    s.avoid_server = server      # HAProxy's srvtoavoid: anywhere but there
    s.forced_server = -1         # persistence gives way to the redispatch
    s.has_key = 0                # as does a hash: the map walk picks another
    s.server = -1
    s.redispatched = 1


cdef void connect_failed(Worker w, int idx, Session *s, bint timed_out):
    """Retry per HAProxy's rules (retries, option redispatch), or give up."""
    cdef BackendRt *be = &w.backends[s.be]
    cdef bint redispatch = False
    cdef int64_t delay
    observe(w, be, s.server, OBSERVE_LAYER4, True)
    w.be_stats[be.shm_index * STAT_WORDS + STAT_ERR_CONN] += 1
    w.srv_stats[be.srv_shm[s.server] * STAT_WORDS + STAT_ERR_CONN] += 1
    side_close(&s.srv)
    if s.retries_left <= 0 or not (be.retry_on & RE_CONN_FAILED):
        no_connection(w, idx, s, b's' if timed_out else b'S')
        return
    s.retries_left -= 1
    s.retries_done += 1
    w.be_stats[be.shm_index * STAT_WORDS + STAT_RETRIES] += 1
    w.srv_stats[be.srv_shm[s.server] * STAT_WORDS + STAT_RETRIES] += 1
    redispatch = retry_redispatches(be, s)
    if redispatch:
        redispatch_away(w, s, be, s.server)
    if not timed_out and (not redispatch or be.nactive <= 1):
        # Refused right away: wait min(timeout connect, 1s) before trying again (HAProxy's
        # turn-around), so a restarting server is not hammered.
        delay = be.t_connect if be.t_connect and be.t_connect < 1000 else 1000
        s.state = ST_TURNAROUND
        s.wake_at = w.now + delay
        arm_timer(w, idx, s)
        return
    start_connect(w, idx, s)
