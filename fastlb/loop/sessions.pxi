# The session slab and a session's life: open, close, fail.
# Interface: sessions.pxd.


# ------------------------------------------------------------------ session slab
cdef inline Session *session_at(Worker w, int idx) noexcept nogil:
    return &w.chunks[idx // SESSIONS_PER_CHUNK][idx % SESSIONS_PER_CHUNK]


cdef int session_new(Worker w) except -1:
    cdef int idx, i, base
    cdef Session *chunk
    cdef Session *s
    if w.free_head < 0:
        chunk = <Session *>calloc(SESSIONS_PER_CHUNK, sizeof(Session))
        w.chunks = <Session **>realloc(w.chunks, (w.nchunks + 1) * sizeof(Session *))
        if chunk == NULL or w.chunks == NULL:
            raise MemoryError()
        w.chunks[w.nchunks] = chunk
        base = w.nchunks * SESSIONS_PER_CHUNK
        for i in range(SESSIONS_PER_CHUNK - 1, -1, -1):
            chunk[i].free_next = w.free_head
            w.free_head = base + i
        w.nchunks += 1
    idx = w.free_head
    s = session_at(w, idx)
    w.free_head = s.free_next
    s.gen += 1
    s.state = ST_CONNECTING
    s.http = 0
    s.redispatched = 0
    s.buf_waiting = 0
    s.handshake = 0
    s.term0 = b'-'
    s.term1 = b'-'
    s.acc_in = s.acc_out = 0
    side_init(&s.cli)
    side_init(&s.srv)
    s.server = -1
    s.be = -1
    s.t_server_rule = s.t_tunnel_rule = 0
    s.prio_class = s.prio_offset = 0
    s.held_server = -1
    s.forced_server = -1
    s.persist_rule = 0
    s.avoid_server = -1
    s.lent = 0
    s.srv_private = 0
    s.has_key = 0
    s.q_target = -1
    s.t_queued = -1
    s.retries_done = 0
    s.t_established = -1
    s.heap_pos = -1
    s.wake_at = 0
    s.dst_known = 0
    s.bsrc_known = 0
    s.unlogged = 0
    s.res_hold = 0
    s.logged = 0
    s.pp_authority = NULL
    s.pp_authority_len = 0
    w.active += 1
    return idx


cdef void session_free(Worker w, int idx, Session *s):
    s.state = ST_FREE
    s.gen += 1
    s.free_next = w.free_head
    w.free_head = idx
    w.active -= 1


# ------------------------------------------------------------------ epoll registration
cdef int side_watch(Worker w, int idx, Session *s, Side *side, int which):
    """Register a new socket once, edge-triggered for both directions.  The session's
    state machine tries a read or a write whenever it wants one and stops at EAGAIN, so
    the interest never has to change: no epoll_ctl() per request, and close() alone
    takes the socket out of the set (it is never shared with another process)."""
    cdef epoll_event ev
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET
    ev.data.u64 = pack_data(side_tag(s, which), KIND_SESSION, idx, which)
    if epoll_ctl(w.epfd, EPOLL_CTL_ADD, side.fd, &ev) != 0:
        return -1
    return 0


cdef void session_close(Worker w, int idx, Session *s):
    cdef FrontendRt *fe = &w.frontends[s.fe]
    if s.cli.fd >= 0 and not s.cli.rd_eof:
        side_discard_input(&s.cli)
    if fe.log_addrs:
        log_addresses(s)      # the log line reads them once both sockets are closed
    http_unlend(w, s)
    side_close(&s.cli)
    side_close(&s.srv)
    pool_put(&w.pool, s.cli.buf)
    pool_put(&w.pool, s.srv.buf)
    s.cli.buf = s.srv.buf = NULL
    free(s.pp_authority)
    s.pp_authority = NULL
    # Backend and server counts drop before the log line, frontend ones after, so the
    # %ac/%fc/%bc/%sc figures read as HAProxy's do.
    queue_leave(w, s)
    if s.http:
        http_untrack(w, s, http_txn(w, idx))
        http_account(w, s, http_txn(w, idx))
    else:
        tcp_account(w, s)
    if not s.http and s.be >= 0:
        count_add(w, w.be_off + w.backends[s.be].shm_index, -1)
        server_release(w, s)
    if s.http and fe.log_mode == LOG_HTTPLOG:
        http_log(w, s, http_txn(w, idx))    # a transaction cut short
    elif fe.log_mode == LOG_TCPLOG and w.log_callback is not None and not s.unlogged \
            and not s.logged:
        if not (fe.dontlognull and s.cli.bytes_in == 0):
            log_end(w, s)
    conn_release(w, s.listener)
    timer_remove(w, s)
    session_free(w, idx, s)


cdef void session_abort(Worker w, int idx, Session *s, bint server_side):
    """A socket error (reset, broken pipe) on one side ends the whole session."""
    s.term0 = b'S' if server_side else b'C'
    s.term1 = b'D' if s.state == ST_ESTABLISHED else b'C'
    session_close(w, idx, s)


cdef void shutdown_sessions(Worker w):
    """"shutdown sessions server b/s" (stats socket): close this worker's sessions on
    the servers whose shutdown epoch is newer than the last one acted on."""
    cdef uint64_t seen = w.shutdown_seen
    cdef int idx
    cdef Session *s
    w.shutdown_seen = fl_atomic_load(w.global_words + G_SHUTDOWN)
    for idx in range(w.nchunks * SESSIONS_PER_CHUNK):
        s = session_at(w, idx)
        if s.state == ST_FREE or s.be < 0 or s.server < 0:
            continue
        if fl_atomic_load(w.srv_words + w.backends[s.be].srv_shm[s.server] * SRV_WORDS
                          + SRV_SHUTDOWN) > seen:
            s.term0, s.term1 = b'K', b'D'
            if s.http == 1:
                http_txn(w, idx).term0, http_txn(w, idx).term1 = b'K', b'D'
            session_close(w, idx, s)


cdef void close_all(Worker w):
    cdef int c, i
    cdef Session *s
    for c in range(w.nchunks):
        for i in range(SESSIONS_PER_CHUNK):
            s = &w.chunks[c][i]
            if s.state != ST_FREE:
                s.term0 = b'K'
                s.term1 = b'D' if s.state == ST_ESTABLISHED else b'C'
                session_close(w, c * SESSIONS_PER_CHUNK + i, s)


cdef void internal_error(Worker w, object exc, str where):
    """Count an unforeseen error; its first occurrence of each kind is logged, with
    its traceback, so that a client repeating it cannot flood the log."""
    import traceback
    import sys
    w.internal_errors += 1
    kind = (where, type(exc).__name__, str(exc)[:80])
    if kind in w.errors_seen or len(w.errors_seen) > 64:
        return
    w.errors_seen.add(kind)
    sys.stderr.write(f"[ALERT]    ({_os.getpid()}) : worker: {where}: internal error "
                     f"{exc!r} (later ones of this kind are counted, not logged)\n"
                     f"{traceback.format_exc()}")


cdef void session_failed(Worker w, int idx, Session *s, object exc):
    """A bug or an unforeseen input broke one session: close it, keep the worker."""
    internal_error(w, exc, "session aborted")
    if s.state != ST_FREE:
        s.term0, s.term1 = b'I', b'D'      # HAProxy's "internal error" termination
        session_close(w, idx, s)


cdef void run_requeued(Worker w):
    cdef list queued = w.runq
    cdef Session *s
    w.runq = []
    for idx, gen in queued:
        s = session_at(w, idx)
        if s.gen != gen or s.state == ST_FREE:
            continue
        try:
            if s.http == 1:
                http_run(w, idx, s)
            elif s.state == ST_ESTABLISHED:
                relay_run(w, idx, s, 3)
            note_buffer_wait(w, idx, s)
        except Exception as exc:
            session_failed(w, idx, s, exc)


# ------------------------------------------------------------- waiting for a buffer
cdef void note_buffer_wait(Worker w, int idx, Session *s):
    """After a session ran: if a read found no buffer (tune.buffers.limit reached), it
    waits, oldest first, for one to be given back; its timeouts keep running."""
    if (s.cli.buf_wait or s.srv.buf_wait) and not s.buf_waiting and s.state != ST_FREE:
        s.buf_waiting = 1
        w.bufwait.append((idx, s.gen))


cdef void wake_buffer_waiters(Worker w):
    """Buffers can be had again: run the waiting sessions, oldest first, as if their
    sockets had spoken, while the pool has buffers.  Those that find none again keep
    their places at the head of the list."""
    cdef list waiting = w.bufwait
    cdef Session *s
    cdef int n = 0
    cdef bint cli, srv
    w.bufwait = []
    for idx, gen in waiting:
        if not pool_available(&w.pool):
            break
        n += 1
        s = session_at(w, idx)
        if s.gen != gen or s.state == ST_FREE:
            continue
        s.buf_waiting = 0
        cli, srv = s.cli.buf_wait, s.srv.buf_wait
        s.cli.buf_wait = s.srv.buf_wait = 0
        try:
            if cli:
                session_event(w, idx, s, SIDE_CLI, EPOLLIN)
            if srv and s.state != ST_FREE and s.gen == gen:
                session_event(w, idx, s, SIDE_SRV, EPOLLIN)
        except Exception as exc:
            session_failed(w, idx, s, exc)
    # those that found none again (the oldest) stay ahead of the ones not reached
    w.bufwait = w.bufwait + waiting[n:]
