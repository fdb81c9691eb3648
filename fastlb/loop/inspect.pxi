# tcp-request rules in the loop.  Interface: inspect.pxd.
#
# A frontend with tcp-request rules (or a tcp frontend with conditional use_backend) gets
# one sample Stream per connection, kept in the slot's HttpTxn (tcp_stream): its "sess."
# variables carry from the connection rules to the session's, then to its HTTP requests.
# Content inspection reads the client's bytes into its buffer, without sending them,
# and runs the rules on them each time more come, until a rule ends the walk or the
# inspect-delay expires (then once more, the data taken as final); the bytes then go to
# the server unchanged (relay.pxi keeps them until the connection is up).

cdef extern from *:
    """
    #include <netinet/tcp.h>
    #ifndef TCP_REPAIR
    #define TCP_REPAIR 19
    #endif
    #include <sys/socket.h>
    #include <netinet/in.h>
    static void fl_silent_drop(int fd, int family) {
        int one = 1, ttl = 1, rounds;
        char sink[4096];
        struct linger nolinger = {1, 0};
        /* first everything received is read and acknowledged at once (a delayed ACK, as
           tcp-smart-accept asks, would leave the client retransmitting into a socket
           that no longer exists, and the kernel would answer with a reset) */
        for (rounds = 0; rounds < 16; rounds++)
            if (recv(fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
                break;
        setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
        /* with CAP_NET_ADMIN, TCP_REPAIR makes close() send nothing; otherwise the reset
           gets a TTL of 1, so that it does not pass the first router (HAProxy's way) */
        if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &one, sizeof(one)) == 0)
            return;
        if (family == AF_INET6)
            setsockopt(fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &ttl, sizeof(ttl));
        else
            setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl));
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &nolinger, sizeof(nolinger));
    }
    static void fl_reset_on_close(int fd) {
        struct linger nolinger = {1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &nolinger, sizeof(nolinger));
    }
    """
    void fl_silent_drop(int fd, int family) nogil
    void fl_reset_on_close(int fd) nogil

from cpython.bytes cimport PyBytes_FromStringAndSize


cdef void silent_drop(Worker w, Session *s, int be):
    """Close the client's connection without telling it; counted as a denied request
    of the frontend, and of ``be`` when the session already has that backend (>= 0),
    whichever rule set asked, as HAProxy counts it."""
    w.fe_stats[w.frontends[s.fe].shm_index * STAT_WORDS + STAT_DENIED_REQ] += 1
    listener_count(w, s.listener, STAT_DENIED_REQ, 1)
    if be >= 0:
        (w.be_stats + w.backends[be].shm_index * STAT_WORDS)[STAT_DENIED_REQ] += 1
    if s.cli.fd >= 0:
        fl_silent_drop(s.cli.fd, s.addr.ss_family)
        s.cli.rd_eof = 1          # nothing more is read (no discard either)


cdef void apply_moves(Session *s, object stream):
    """set-src / set-dst / set-tos / set-mark a rule did, on the session."""
    cdef sockaddr_storage addr
    if not stream.moved:
        return
    if stream.moved & MOVED_SOCKET:
        client_socket_options(s, stream)
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


cdef int connection_rules(Worker w, int idx, Session *s, object rules) except? -1:
    """tcp-request connection rules on the real addresses: CONN_* bits."""
    stream = new_stream(w, s, None, b"", [], b"", {}, True)
    http_txn(w, idx).tcp_stream = stream
    if rules.connection is None:
        return 0
    verdict = rules.connection(stream)
    apply_moves(s, stream)
    return verdict


cdef void tcp_session_start(Worker w, int idx, Session *s, object rules):
    """The session exists (after any PROXY header): its rules, then content inspection
    or the backend."""
    cdef FrontendRt *fe = &w.frontends[s.fe]
    cdef HttpTxn txn = http_txn(w, idx)
    old = txn.tcp_stream
    # a fresh Stream: a PROXY header may have changed the addresses since the connection
    stream = new_stream(w, s, None, b"", [], b"",
                        old.sess_vars if old is not None and old.sess_vars is not None
                        else var_store(), True)
    txn.tcp_stream = stream
    if rules.session is not None:
        verdict = rules.session(stream)
        apply_moves(s, stream)
        if verdict == TCP_REJECT or verdict == TCP_SILENT:
            if verdict == TCP_SILENT:
                silent_drop(w, s, -1)
            else:
                w.fe_stats[fe.shm_index * STAT_WORDS + STAT_DENIED_SESS] += 1
                listener_count(w, s.listener, STAT_DENIED_SESS, 1)
                if s.cli.fd >= 0:
                    fl_reset_on_close(s.cli.fd)    # HAProxy resets a refused session
                    s.cli.rd_eof = 1
            s.unlogged = 1        # HAProxy: a session refused here is not logged
            s.term0 = b'R'
            s.term1 = b'C'
            w.fe_stats[fe.shm_index * STAT_WORDS + STAT_SESS_TOT] -= 1
            session_close(w, idx, s)
            return
    if fe.log_mode == LOG_CONNECT and w.connect_callback is not None:
        log_connect(w, s)
    if rules.content is not None:
        s.state = ST_INSPECT
        s.wake_at = w.now + rules.delay
        inspect_run(w, idx, s)
        return
    session_route(w, idx, s, fe, tcp_route_backend(w, s, rules, stream))


cdef int tcp_route_backend(Worker w, Session *s, object rules, object stream):
    """A tcp frontend's use_backend rules (the data taken as final), else its default."""
    cdef FrontendRt *fe = &w.frontends[s.fe]
    if rules.switch is None or fe.http:
        return fe.backend
    stream.partial = False
    return rules.switch(stream)


cdef int64_t inspect_deadline(Worker w, Session *s):
    cdef FrontendRt *fe = &w.frontends[s.fe]
    cdef int64_t dl = s.wake_at
    s.timer = TM_INSPECT
    if fe.t_client and s.cli.last + fe.t_client < dl:
        s.timer = TM_CLIENT
        dl = s.cli.last + fe.t_client
    return dl


cdef void inspect_run(Worker w, int idx, Session *s):
    """Read what the client sent, run the content rules on all of it: wait for more, or
    end the inspection (refused, or on to the backend)."""
    cdef FrontendRt *fe = &w.frontends[s.fe]
    cdef HttpTxn txn = http_txn(w, idx)
    cdef int got
    cdef bint final
    rules = (<FrontendHooks>w.fe_hooks[s.fe]).tcp_rules
    stream = txn.tcp_stream
    while True:
        got = side_read(&s.cli, &w.pool, w.now)
        if got == IO_ERROR:
            s.term0 = b'C'
            s.term1 = b'R'
            session_close(w, idx, s)
            return
        if got != IO_DATA:
            break
    final = s.cli.rd_eof or w.now >= s.wake_at or \
        (s.cli.buf != NULL and s.cli.tail - s.cli.head >= w.bufsize)
    if s.cli.buf != NULL and s.cli.tail > s.cli.head:
        stream.payload = PyBytes_FromStringAndSize(s.cli.buf + s.cli.head,
                                                   s.cli.tail - s.cli.head)
    else:
        stream.payload = b""
    stream.partial = not final
    verdict = rules.content(stream)
    apply_moves(s, stream)
    if verdict == TCP_WAIT and not final:
        arm_timer(w, idx, s)
        return
    if verdict == TCP_REJECT or verdict == TCP_SILENT:
        if verdict == TCP_SILENT:
            silent_drop(w, s, -1)
        else:
            w.fe_stats[w.frontends[s.fe].shm_index * STAT_WORDS + STAT_DENIED_REQ] += 1
            listener_count(w, s.listener, STAT_DENIED_REQ, 1)
        stream.payload = None
        s.term0 = b'P'            # a rule refused it, while the request was read
        s.term1 = b'R'
        session_close(w, idx, s)
        return
    if stream.log_level == "silent":
        s.unlogged = 1
    s.state = ST_CONNECTING
    s.wake_at = 0
    backend = tcp_route_backend(w, s, rules, stream)
    stream.payload = None
    if verdict == TCP_SWITCH_HTTP and backend >= 0:
        if not_upgradable(w, idx, s, backend):
            return
        s.be = backend
        http_start(w, idx, s)
        return
    session_route(w, idx, s, fe, backend)


cdef void tcp_response_denied(Worker w, Session *s):
    """tcp-response content reject: counted denied on the frontend, backend and server,
    as HAProxy counts it."""
    cdef BackendRt *be = &w.backends[s.be]
    (w.fe_stats + w.frontends[s.fe].shm_index * STAT_WORDS)[STAT_DENIED_RESP] += 1
    listener_count(w, s.listener, STAT_DENIED_RESP, 1)
    (w.be_stats + be.shm_index * STAT_WORDS)[STAT_DENIED_RESP] += 1
    if s.server >= 0:
        (w.srv_stats + be.srv_shm[s.server] * STAT_WORDS)[STAT_DENIED_RESP] += 1


cdef bint res_inspect(Worker w, int idx, Session *s):
    """tcp-response content rules on the server's bytes so far: True once they let them
    through (the relay then forwards them), False while they wait or after a refusal."""
    cdef HttpTxn txn
    cdef int got
    cdef bint final
    if s.state != ST_ESTABLISHED:
        return False
    while True:
        got = side_read(&s.srv, &w.pool, w.now)
        if got == IO_ERROR:
            session_abort(w, idx, s, True)
            return False
        if got != IO_DATA:
            break
    txn = http_txn(w, idx)
    if s.res_until == 0:
        s.res_until = w.now + w.backends[s.be].res_delay
        if not w.frontends[s.fe].tcp_rules or txn.tcp_stream is None:
            txn.tcp_stream = new_stream(w, s, None, b"", [], b"", {}, True)
    stream = txn.tcp_stream
    stream.be = s.be
    stream.srv = s.server
    final = s.srv.rd_eof or w.now >= s.res_until or \
        (s.srv.buf != NULL and s.srv.tail - s.srv.head >= w.bufsize)
    if s.srv.buf != NULL and s.srv.tail > s.srv.head:
        stream.res_payload = PyBytes_FromStringAndSize(s.srv.buf + s.srv.head,
                                                       s.srv.tail - s.srv.head)
    else:
        stream.res_payload = b""
    stream.partial = not final
    verdict = (<BackendHooks>w.be_hooks[s.be]).res_rules(stream)
    if stream.moved & MOVED_SOCKET:
        client_socket_options(s, stream)
        stream.moved = 0
    if verdict == TCP_WAIT and not final:
        arm_timer(w, idx, s)
        return False
    stream.res_payload = None
    if verdict == TCP_REJECT or verdict == TCP_SILENT:
        if verdict == TCP_SILENT:
            silent_drop(w, s, s.be)
        else:
            tcp_response_denied(w, s)
        s.term0 = b'P'            # a rule refused the response
        s.term1 = b'D'
        session_close(w, idx, s)
        return False
    if stream.log_level == "silent":
        s.unlogged = 1
    s.res_hold = 0
    if verdict == TCP_CLOSE and s.srv.fd >= 0:
        # what came is forwarded, then the server connection is done with
        shutdown(s.srv.fd, SHUT_RDWR)
        s.srv.rd_eof = 1
    return True
