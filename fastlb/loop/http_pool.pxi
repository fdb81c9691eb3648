# Idle server connections: the pool and lending (http-reuse).
# Interface: http_pool.pxd.


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
    if w.idle_len[k] == 0:
        w.idle_next_purge[k] = w.now + w.idle_purge_ms[k]
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
    side_attach(&s.srv, fd, &raw_socket)
    s.srv.last = s.srv.last_rd = w.now
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
        not s.srv_private and not w.backends[s.be].servers[s.server].use_client_port and \
        not w.backends[s.be].servers[s.server].send_proxy


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
        session_at(w, s.lend_next).lend_prev = idx
    w.lend_head[k] = idx


cdef void http_unlend(Worker w, Session *s):
    cdef uint32_t k
    if not s.lent:
        return
    s.lent = 0
    k = w.backends[s.be].srv_shm[s.server]
    if s.lend_prev >= 0:
        session_at(w, s.lend_prev).lend_next = s.lend_next
    else:
        w.lend_head[k] = s.lend_next
    if s.lend_next >= 0:
        session_at(w, s.lend_next).lend_prev = s.lend_prev


cdef bint http_take_lent(Worker w, int idx, Session *s, int srv):
    """Take the connection an idle session lends to ``srv`` (the most recently idle)."""
    cdef uint32_t k = w.backends[s.be].srv_shm[srv]
    cdef int owner_idx = w.lend_head[k], fd
    cdef Session *owner
    if owner_idx < 0:
        return False
    owner = session_at(w, owner_idx)
    http_unlend(w, owner)
    fd = owner.srv.fd
    owner.srv.fd = -1                   # the owner's next request finds another connection
    pool_put(&w.pool, owner.srv.buf)
    side_init(&owner.srv)
    owner.srv_epoch += 1                # events still queued for it are stale now
    owner.server = -1
    owner.state = ST_IDLE
    return http_adopt(w, idx, s, srv, fd)


cdef void purge_idle(Worker w):
    """pool-purge-delay: every <delay> a server's pool has held connections, the older half
    of them (rounded up) are closed, so that a pool sized by a burst shrinks back to nothing
    once traffic stops, as HAProxy's does."""
    cdef int k, n, m, i
    cdef int *fds
    w.next_idle_sweep = w.now + IDLE_SWEEP_MS
    for k in range(w.nservers_total):
        n = w.idle_len[k]
        if n == 0 or w.idle_purge_ms[k] <= 0 or w.now < w.idle_next_purge[k]:
            continue
        fds = w.idle_fds + k * IDLE_PER_SERVER
        m = (n + 1) // 2
        for i in range(m):              # the bottom of the stack has been idle longest
            epoll_ctl(w.epfd, EPOLL_CTL_DEL, fds[i], NULL)
            close(fds[i])
        for i in range(n - m):
            fds[i] = fds[i + m]
        w.idle_len[k] = n - m
        w.idle_next_purge[k] = w.now + w.idle_purge_ms[k]


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
    side_close(&s.srv)
    pool_put(&w.pool, s.srv.buf)
    side_init(&s.srv)
    s.server = -1
