# TCP relay: bytes both ways until each side would block; TCP timeouts.
# Interface: relay.pxd.


cdef bint relay_pump(Worker w, int idx, Session *s, int from_side):
    """Move bytes from one side to the other until a socket would block.  True when it
    stopped at its round limit instead: with edge-triggered epoll no new event will
    come for the bytes left, so the caller queues the session to run again."""
    cdef Side *src = &s.cli if from_side == SIDE_CLI else &s.srv
    cdef Side *dst = &s.srv if from_side == SIDE_CLI else &s.cli
    cdef int64_t n
    cdef int round, got
    for round in range(PUMP_ROUNDS):
        # Bytes waiting in this direction: in the pipe (bulk) or in the buffer, never both.
        if src.piped or src.head != src.tail:
            if s.state != ST_ESTABLISHED:
                return False      # keep them until the server connection is up
            if src.piped:
                n = side_splice_out(src, dst, w.now)
            else:
                n = side_write(dst, src.buf + src.head, src.tail - src.head, w.now)
                if n > 0:
                    side_consume(src, &w.pool, n)
            if n < 0:
                session_abort(w, idx, s, from_side == SIDE_CLI)
                return False
            if n == 0 or src.piped or src.head != src.tail:
                return False      # the kernel buffer is full: wait for EPOLLOUT
        if src.rd_eof:
            if from_side == SIDE_CLI and w.backends[s.be].nolinger and not dst.wr_shut:
                # option nolinger: a client that leaves ends the session at once, both
                # sockets reset, instead of a half-close passed on (as HAProxy does)
                s.term0, s.term1 = b'C', b'D'
                session_close(w, idx, s)
                return False
            if s.state == ST_ESTABLISHED and not dst.wr_shut:
                side_shutw(dst, w.now)
            return False
        if not src.readable:
            return False          # drained: the next EPOLLIN edge brings us back
        if src.bulk and s.state == ST_ESTABLISHED and side_may_splice(src, dst):
            # bulk transfer: socket -> pipe -> socket, never copied to user space
            got = side_splice_in(src, w.now)
        else:
            got = side_read(src, &w.pool, w.now)
            if got == IO_DATA and src.tail - src.head == w.bufsize:
                src.bulk = 1      # more than a buffer at once: splice the rest
        if got == IO_NONE:
            return False
        if got == IO_ERROR:
            session_abort(w, idx, s, from_side == SIDE_SRV)
            return False
    return True


cdef void session_event(Worker w, int idx, Session *s, int side, uint32_t events):
    session_step(w, idx, s, side, events)
    if s.state == ST_FREE:
        return
    if w.frontends[s.fe].contstats:
        continuous_account(w, idx, s)
    note_buffer_wait(w, idx, s)


cdef void session_step(Worker w, int idx, Session *s, int side, uint32_t events):
    cdef Side *other = &s.srv if side == SIDE_CLI else &s.cli
    cdef int which = 0
    if s.state == ST_PROXY_HEADER:
        if side == SIDE_CLI:
            proxy_header_event(w, idx, s)
        return
    if s.http == 1:
        http_on_event(w, idx, s, side, events)
        return
    if s.state == ST_INSPECT:
        if side == SIDE_CLI:
            inspect_run(w, idx, s)
        return
    if side == SIDE_SRV and s.state == ST_CONNECTING:
        on_connect_event(w, idx, s)
        return
    if s.state == ST_QUEUED:
        if events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR):
            s.term0 = b'C'        # the client left while waiting for a server
            s.term1 = b'Q'
            session_close(w, idx, s)
        return                    # its data waits in the socket until a server is ours
    # Read the side that spoke; write to it only what waits in the other side's buffer
    # (its EPOLLOUT edge).  The events carry the socket's whole state, so testing
    # more would cost a recv() that finds nothing.
    if events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR):
        which |= 1 << side
    if events & EPOLLOUT and (other.head != other.tail or other.piped):
        which |= 1 << (1 - side)
    if which:
        relay_run(w, idx, s, which)


cdef void relay_run(Worker w, int idx, Session *s, int which):
    """Relay in the directions of ``which`` (bit 0: from the client, bit 1: from the
    server) until each would block."""
    cdef bint more = False
    if which & 1:
        more = relay_pump(w, idx, s, SIDE_CLI)
        if s.state == ST_FREE:
            return
    if which & 2:
        if s.res_hold and not res_inspect(w, idx, s):
            if s.state == ST_FREE:
                return
        else:
            more = relay_pump(w, idx, s, SIDE_SRV) or more
        if s.state == ST_FREE:
            return
    if s.state == ST_ESTABLISHED and s.cli.rd_eof and s.srv.rd_eof \
            and s.cli.wr_shut and s.srv.wr_shut:
        session_close(w, idx, s)        # both directions finished cleanly
        return
    if more:
        w.runq.append((idx, s.gen))
    arm_timer(w, idx, s)


# ---------------------------------------------------------------------------- TCP timeouts
cdef int64_t timeout_base(Side *side, Side *other, bint independent) noexcept nogil:
    """When ``side``'s timeout started: its last read or write. Under option
    independent-streams (HAProxy's read timeout that writes do not refresh) its last read,
    and once nothing more is read from it, only while bytes wait to be written to it
    (-1: none runs)."""
    if not independent:
        return side.last
    if not side.rd_eof:
        return side.last_rd
    if other.head != other.tail or other.piped:
        return side.last
    return -1


cdef int64_t tcp_deadline(Worker w, Session *s):
    """timeout client / server (their -fin variants after a half-close) or tunnel while
    relaying; before that, timeout client and the wait for the server connection."""
    cdef FrontendRt *fe = &w.frontends[s.fe]
    cdef BackendRt *be = &w.backends[s.be]
    cdef int64_t dl = 0, t, cli_to, srv_to
    if s.state == ST_ESTABLISHED and s.res_hold and s.res_until:
        s.timer = TM_RES_INSPECT      # before the others: it comes first (a short delay)
        dl = s.res_until
        if fe.t_client and s.cli.last + fe.t_client < dl:
            s.timer = TM_CLIENT
            dl = s.cli.last + fe.t_client
        return dl
    if s.state == ST_ESTABLISHED:
        t = s.t_tunnel_rule or be.t_tunnel
        if t and not (fe.indep_streams or be.indep_streams):
            s.timer = TM_TUNNEL
            return (s.cli.last if s.cli.last > s.srv.last else s.srv.last) + t
        cli_to = srv_to = t               # timeout tunnel stands for both sides' timeouts
        if not t:
            cli_to = fe.t_client
            if fe.t_client_fin and (s.cli.rd_eof or s.cli.wr_shut):
                cli_to = fe.t_client_fin
            srv_to = s.t_server_rule or be.t_server
            if be.t_server_fin and (s.srv.rd_eof or s.srv.wr_shut):
                srv_to = be.t_server_fin
        if cli_to:
            t = timeout_base(&s.cli, &s.srv, fe.indep_streams)
            if t >= 0:
                dl = t + cli_to
                s.timer = TM_CLIENT
        if srv_to:
            t = timeout_base(&s.srv, &s.cli, be.indep_streams)
            if t >= 0 and (dl == 0 or t + srv_to < dl):
                dl = t + srv_to
                s.timer = TM_SERVER
        return dl
    if fe.t_client:
        dl = s.cli.last + fe.t_client
        s.timer = TM_CLIENT
    t = server_wait_deadline(be, s)       # wins a tie: it is the more precise cause
    if t and (dl == 0 or t <= dl):
        return t
    if dl:
        s.timer = TM_CLIENT
    return dl


cdef void tcp_expired(Worker w, int idx, Session *s):
    if s.timer == TM_QUEUE:
        queue_leave(w, s)
        s.term0 = b's'            # timeout queue
        s.term1 = b'Q'
    elif s.state == ST_INSPECT:
        s.term0 = b'c'            # timeout client while the content rules waited
        s.term1 = b'R'
    elif s.state != ST_ESTABLISHED:
        s.term0 = b'c'            # client timeout before the server connection was made
        s.term1 = b'C' if s.state == ST_CONNECTING else b'Q'
    elif (s.timer == TM_SERVER and w.backends[s.be].indep_streams and not s.srv.rd_eof) or \
            (s.timer == TM_CLIENT and w.frontends[s.fe].indep_streams and not s.cli.rd_eof):
        # independent-streams: a read timeout ends that direction alone, as HAProxy's
        # shutr, the other goes on (its FIN passed on); the first cause is the one logged
        if s.term0 == b'-':
            s.term0 = b's' if s.timer == TM_SERVER else b'c'
            s.term1 = b'D'
        if s.timer == TM_SERVER:
            s.srv.rd_eof = 1
            relay_run(w, idx, s, 2)
        else:
            s.cli.rd_eof = 1
            relay_run(w, idx, s, 1)
        return
    elif s.timer == TM_SERVER:
        s.term0 = b's'
        s.term1 = b'D'
    else:                         # timeout client or tunnel
        s.term0 = b'c'
        s.term1 = b'D'
    session_close(w, idx, s)
