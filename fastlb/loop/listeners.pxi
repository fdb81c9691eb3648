# Listeners: accept, the process, frontend and bind maxconn, the connection and session
# rate limits, pause and resume.
# Interface: listeners.pxd.


# ------------------------------------------------------------------ rate limits
# A rate over all workers lives in two shared words, one per second (even and odd), each
# <second << 32 | events> so that one compare-and-swap both moves a word to a new second
# and counts.  Read as HAProxy's freq_ctr reads: this second's events plus the last
# second's, weighted by the part of a second that has not passed yet.
cdef inline void rate_add(uint64_t *pair, int64_t now) noexcept nogil:
    cdef uint64_t sec = <uint64_t>(now // 1000) & 0xFFFFFFFFULL
    cdef uint64_t *word = pair + (sec & 1)
    cdef uint64_t seen = fl_atomic_load(word), want
    while True:
        want = seen + 1 if seen >> 32 == sec else (sec << 32) | 1
        if fl_atomic_cas(word, &seen, want):
            return


cdef int64_t rate_of(uint64_t *pair, int64_t now) noexcept nogil:
    cdef uint64_t sec = <uint64_t>(now // 1000) & 0xFFFFFFFFULL
    cdef uint64_t cur = fl_atomic_load(pair + (sec & 1))
    cdef uint64_t last = fl_atomic_load(pair + ((sec + 1) & 1))
    cdef int64_t events = <int64_t>(cur & 0xFFFFFFFFULL) if cur >> 32 == sec else 0
    if last >> 32 == ((sec - 1) & 0xFFFFFFFFULL):
        events += <int64_t>(last & 0xFFFFFFFFULL) * (1000 - now % 1000) // 1000
    return events


cdef inline uint64_t *fe_sess_rate(Worker w, FrontendRt *fe) noexcept nogil:
    return w.fe_words + fe.shm_index * FE_WORDS + FE_SESS_RATE


cdef bint over_rate(Worker w, FrontendRt *fe) noexcept nogil:
    """maxconnrate, maxsessrate or the frontend's rate-limit sessions is reached: the
    listener waits (clients stay in the kernel's backlog), as HAProxy's does."""
    if w.conn_rate_limit and rate_of(w.global_words + G_CONN_RATE, w.now) >= w.conn_rate_limit:
        return True
    if w.sess_rate_limit and rate_of(w.global_words + G_SESS_RATE, w.now) >= w.sess_rate_limit:
        return True
    return fe.sess_rate_limit and rate_of(fe_sess_rate(w, fe), w.now) >= fe.sess_rate_limit


cdef void count_session(Worker w, FrontendRt *fe) noexcept nogil:
    """A session begins (past tcp-request connection and the PROXY header)."""
    if w.sess_rate_limit:
        rate_add(w.global_words + G_SESS_RATE, w.now)
    if fe.sess_rate_limit:
        rate_add(fe_sess_rate(w, fe), w.now)


# ------------------------------------------------------------------ accept
cdef inline int64_t fe_maxconn(Worker w, FrontendRt *fe) noexcept nogil:
    return <int64_t>fl_atomic_load(w.fe_words + fe.shm_index * FE_WORDS + FE_MAXCONN)


cdef bint over_maxconn(Worker w, ListenerRt *l):
    cdef FrontendRt *fe = &w.frontends[l.fe]
    cdef int64_t maxconn = fe_maxconn(w, fe)
    if l.maxconn and <int64_t>fl_atomic_load(w.totals + l.count_off) >= l.maxconn:
        return True
    if maxconn and <int64_t>fl_atomic_load(w.totals + COUNT_FRONTENDS + fe.shm_index) >= maxconn:
        return True
    if w.global_maxconn and <int64_t>fl_atomic_load(w.totals) >= w.global_maxconn:
        return True
    return False


cdef bint conn_reserve(Worker w, int li, int64_t *counts):
    """Take a connection slot in the shared totals, or fail if a maxconn is reached;
    ``counts``: the frontend's and the listener's connections with this one."""
    cdef ListenerRt *l = &w.listeners[li]
    cdef FrontendRt *fe = &w.frontends[l.fe]
    cdef int64_t g = <int64_t>fl_atomic_fetch_add(w.totals, 1)
    cdef int64_t f = <int64_t>fl_atomic_fetch_add(w.totals + COUNT_FRONTENDS + fe.shm_index, 1)
    cdef int64_t b = <int64_t>fl_atomic_fetch_add(w.totals + l.count_off, 1)
    cdef int64_t maxconn = fe_maxconn(w, fe)
    count_add(w, 0, 1)
    count_add(w, w.fe_off + fe.shm_index, 1)
    count_add(w, l.count_off, 1)
    if (w.global_maxconn and g >= w.global_maxconn) or (maxconn and f >= maxconn) or \
            (l.maxconn and b >= l.maxconn):
        conn_release(w, li)
        return False
    counts[0] = f + 1
    counts[1] = b + 1
    return True


cdef void conn_release(Worker w, int li):
    cdef ListenerRt *l = &w.listeners[li]
    cdef FrontendRt *fe = &w.frontends[l.fe]
    fl_atomic_fetch_sub(w.totals, 1)
    fl_atomic_fetch_sub(w.totals + COUNT_FRONTENDS + fe.shm_index, 1)
    fl_atomic_fetch_sub(w.totals + l.count_off, 1)
    count_add(w, 0, -1)
    count_add(w, w.fe_off + fe.shm_index, -1)
    count_add(w, l.count_off, -1)


cdef void pause_listener(Worker w, int li):
    cdef ListenerRt *l = &w.listeners[li]
    if l.paused or l.closed:
        return
    epoll_ctl(w.epfd, EPOLL_CTL_DEL, l.fd, NULL)
    l.paused = 1
    w.npaused += 1
    w.next_resume_check = w.now + RESUME_CHECK_MS


cdef void resume_listeners(Worker w):
    cdef int i
    cdef ListenerRt *l
    cdef epoll_event ev
    if w.now < w.next_resume_check:
        return
    w.next_resume_check = w.now + RESUME_CHECK_MS
    for i in range(w.nlisteners):
        l = &w.listeners[i]
        if not l.paused or l.closed or over_maxconn(w, l) or over_rate(w, &w.frontends[l.fe]):
            continue
        ev.events = EPOLLIN | EPOLLEXCLUSIVE
        ev.data.u64 = pack_data(0, KIND_LISTENER, i, 0)
        epoll_ctl(w.epfd, EPOLL_CTL_ADD, l.fd, &ev)
        l.paused = 0
        w.npaused -= 1


cdef void listener_accept(Worker w, int li):
    cdef ListenerRt *l = &w.listeners[li]
    cdef FrontendRt *fe = &w.frontends[l.fe]
    cdef int n, fd, idx, verdict, one = 1
    cdef linger no_linger = linger(1, 0)     # option nolinger: close() resets
    cdef Session *s
    cdef sockaddr_storage addr
    cdef socklen_t addrlen
    cdef bint limited = w.conn_rate_limit or w.sess_rate_limit or fe.sess_rate_limit
    cdef int64_t counts[2]
    for n in range(w.max_accept):
        if (limited and over_rate(w, fe)) or not conn_reserve(w, li, counts):
            pause_listener(w, li)
            return
        addrlen = sizeof(sockaddr_storage)
        if l.sockpair:
            fd = fd_receive(l.fd)
            if fd < 0 and errno == 0:
                # the sending side closed: no connection will come any more
                conn_release(w, li)
                epoll_ctl(w.epfd, EPOLL_CTL_DEL, l.fd, NULL)
                close(l.fd)
                l.closed = 1
                return
            # HAProxy logs a passed connection as a UNIX client of this listener
            memset(&addr, 0, sizeof(sockaddr_storage))
            addr.ss_family = AF_UNIX
            addrlen = sizeof(sockaddr_un)
        else:
            fd = accept4(l.fd, <sockaddr *>&addr, &addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC)
        if fd < 0:
            conn_release(w, li)
            if errno == EINTR or errno == ECONNABORTED:
                continue
            if errno == EMFILE or errno == ENFILE or errno == ENOBUFS or errno == ENOMEM:
                # Out of descriptors: stop accepting for a moment instead of spinning.
                pause_listener(w, li)
                w.next_resume_check = w.now + FD_EXHAUSTED_PAUSE_MS
            return
        if w.conn_rate_limit:
            rate_add(w.global_words + G_CONN_RATE, w.now)
        # the maxima once accepted: a worker woken with the others reserves a place it may
        # give back at once (nothing to accept), which must not count as a connection
        stat_max(w.fe_stats + fe.shm_index * STAT_WORDS, STAT_SMAX, counts[0])
        if l.stat_row >= 0:
            stat_max(w.lst_stats + l.stat_row * STAT_WORDS, STAT_SMAX, counts[1])
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(int))
        w.fe_stats[fe.shm_index * STAT_WORDS + STAT_CONN_TOT] += 1
        listener_count(w, li, STAT_CONN_TOT, 1)
        w.fe_stats[fe.shm_index * STAT_WORDS + STAT_SESS_TOT] += 1
        if fe.clitcpka:
            keepalive(fd, fe.clitcpka_probes)
        if fe.nolinger:
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &no_linger, sizeof(linger))
        idx = session_new(w)
        s = session_at(w, idx)
        side_attach(&s.cli, fd, &raw_socket)
        s.cli.readable = 1        # the request often came with the handshake: try at once
        s.cli.last = s.cli.last_rd = w.now
        s.fe = l.fe
        s.listener = li
        s.t_accept = w.now
        s.t_accept_real = realtime_ms()
        s.t_connect = w.now
        memcpy(&s.addr, &addr, addrlen)
        s.addrlen = addrlen
        if addr.ss_family == AF_UNIX:
            mark_unix_client(&s.addr, l.luid)
        if side_watch(w, idx, s, &s.cli, SIDE_CLI) != 0:
            s.term0 = b'R'        # no room in the epoll set: a resource shortage
            s.term1 = b'C'
            session_close(w, idx, s)
            continue
        try:
            verdict = (CONN_EXPECT_PROXY if l.accept_proxy else 0) | \
                (CONN_EXPECT_CIP if l.accept_cip else 0)
            if fe.tcp_rules:
                verdict |= connection_rules(w, idx, s, (<FrontendHooks>w.fe_hooks[l.fe]).tcp_rules)
            if verdict & (CONN_REJECT | CONN_SILENT):
                if verdict & CONN_SILENT:
                    silent_drop(w, s, -1)
                else:             # HAProxy counts a reject, not a silent-drop
                    w.fe_stats[fe.shm_index * STAT_WORDS + STAT_DENIED_CONN] += 1
                    listener_count(w, li, STAT_DENIED_CONN, 1)
                s.unlogged = 1    # tcp-request connection reject: no session, no log
                s.term0 = b'R'
                s.term1 = b'C'
                w.fe_stats[fe.shm_index * STAT_WORDS + STAT_SESS_TOT] -= 1
                session_close(w, idx, s)
            elif verdict & (CONN_EXPECT_PROXY | CONN_EXPECT_CIP):
                proxy_header_wait(w, idx, s, (HS_PROXY if verdict & CONN_EXPECT_PROXY else 0) |
                                  (HS_CIP if verdict & CONN_EXPECT_CIP else 0))
            else:
                session_accepted(w, idx, s, fe)
        except Exception as exc:
            session_failed(w, idx, s, exc)


cdef void session_accepted(Worker w, int idx, Session *s, FrontendRt *fe):
    """A new client connection, registered: its tcp-request rules, or log it, then start
    HTTP or connect."""
    count_session(w, fe)
    if fe.tcp_rules:
        tcp_session_start(w, idx, s, (<FrontendHooks>w.fe_hooks[s.fe]).tcp_rules)  # inspect.pxi
        return
    if fe.log_mode == LOG_CONNECT and w.connect_callback is not None:
        log_connect(w, s)
    session_route(w, idx, s, fe, fe.backend)


cdef void session_route(Worker w, int idx, Session *s, FrontendRt *fe, int backend):
    """Start HTTP, or connect to ``backend``'s server."""
    cdef BackendHooks hooks
    if fe.http or (backend >= 0 and w.backends[backend].http):
        if not fe.http and not_upgradable(w, idx, s, backend):
            return
        s.be = backend               # an HTTP backend makes a TCP frontend's session HTTP
        http_start(w, idx, s)
        return
    if backend < 0:
        s.term0 = b'S'        # no backend to route to
        s.term1 = b'C'
        session_close(w, idx, s)
        return
    s.be = backend
    s.res_hold = w.backends[s.be].res_rules
    s.res_until = 0
    s.retries_left = w.backends[s.be].retries
    count_add(w, w.be_off + w.backends[s.be].shm_index, 1)
    w.be_stats[w.backends[s.be].shm_index * STAT_WORDS + STAT_SESS_TOT] += 1
    stat_max(w.be_stats + w.backends[s.be].shm_index * STAT_WORDS, STAT_SMAX,
             <int64_t>w.slot[w.be_off + w.backends[s.be].shm_index])
    set_source_key(&w.backends[s.be], s)
    hooks = <BackendHooks>w.be_hooks[s.be]
    stream = None
    if w.backends[s.be].key == KEY_EXPR or hooks.server_rules is not None or \
            hooks.rdp_persist is not None:
        stream = held_stream(w, idx, s)
    if w.backends[s.be].key == KEY_EXPR:
        set_expr_key(w, s, stream)
    if hooks.server_rules is not None:
        s.forced_server = use_server(w, s, stream)
    if hooks.rdp_persist is not None and s.forced_server < 0:
        s.forced_server = rdp_cookie_server(w, s, stream)
    start_connect(w, idx, s)


cdef bint not_upgradable(Worker w, int idx, Session *s, int backend):
    """A session of a ``bind ... proto none`` listener that should become HTTP: the
    pass-through multiplexer cannot be upgraded, so it ends there, logged at the backend
    with HAProxy's RR (True)."""
    if not w.listeners[s.listener].no_upgrade:
        return False
    s.be = backend
    count_add(w, w.be_off + w.backends[s.be].shm_index, 1)
    w.be_stats[w.backends[s.be].shm_index * STAT_WORDS + STAT_SESS_TOT] += 1
    s.term0 = b'R'
    s.term1 = b'R'
    session_close(w, idx, s)
    return True


cdef object held_stream(Worker w, int idx, Session *s):
    """A Stream for the backend's choices (balance hash, use-server, persist rdp-cookie):
    the client's bytes held so far (by tcp-request content inspection) are its payload,
    taken as final, as HAProxy's backend analysers read the request buffer; the session's
    variables are its tcp-request rules' ones."""
    rules_stream = http_txn(w, idx).tcp_stream
    stream = new_stream(w, s, None, b"", [], b"", None if rules_stream is None
                        else rules_stream.sess_vars, True)
    if s.cli.buf != NULL and s.cli.tail > s.cli.head:
        stream.payload = PyBytes_FromStringAndSize(s.cli.buf + s.cli.head,
                                                   s.cli.tail - s.cli.head)
    else:
        stream.payload = b""
    stream.partial = False
    return stream
