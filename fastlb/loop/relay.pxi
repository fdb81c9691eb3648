# TCP relay: bytes both ways until each side would block; TCP timeouts.
# Interface: relay.pxd.


cdef bint relay_pump(Worker w, int idx, Session *s, int from_side):
    """Move bytes from one side to the other until a socket would block.  True when it
    stopped at its round limit instead: with edge-triggered epoll no new event will
    come for the bytes left, so the caller queues the session to run again."""
    cdef Side *src = &s.cli if from_side == SIDE_CLI else &s.srv
    cdef Side *dst = &s.srv if from_side == SIDE_CLI else &s.cli
    cdef ssize_t n
    cdef int round
    cdef int64_t left
    for round in range(PUMP_ROUNDS):
        # Bytes waiting in this direction: in the pipe (bulk) or in the buffer, never both.
        if src.piped or src.head != src.tail:
            if s.state != ST_ESTABLISHED:
                return False      # keep them until the server connection is up
            if src.piped:
                n = splice(src.pipe_r, NULL, dst.fd, NULL, src.piped,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
            else:
                n = send(dst.fd, src.buf + src.head, src.tail - src.head, MSG_NOSIGNAL)
            if n > 0:
                dst.last = w.now
                if src.piped:
                    src.piped -= n
                    left = src.piped
                else:
                    src.head += n
                    left = src.tail - src.head
                    if left == 0:
                        src.head = src.tail = 0
                        buf_put(w, src.buf)
                        src.buf = NULL
                if left:
                    return False  # the kernel buffer is full: wait for EPOLLOUT
            elif n < 0 and (errno == EAGAIN or errno == EINTR):
                return False
            else:
                session_abort(w, idx, s, from_side == SIDE_CLI)
                return False
        if src.rd_eof:
            if s.state == ST_ESTABLISHED and not dst.wr_shut:
                shutdown(dst.fd, SHUT_WR)   # propagate the half-close
                dst.wr_shut = 1
                dst.last = w.now
            return False
        if not src.readable:
            return False          # drained: the next EPOLLIN edge brings us back
        if src.bulk and s.state == ST_ESTABLISHED and (src.pipe_r >= 0 or side_open_pipe(w, src) == 0):
            # Bulk transfer: the bytes go socket -> pipe -> socket without being copied to
            # user space.  A short splice says nothing about the queue (the pipe also
            # fills by pages), so readiness is cleared by EAGAIN only.
            n = splice(src.fd, NULL, src.pipe_w, NULL, PIPE_BYTES,
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
            if n > 0:
                src.piped = n
                src.bytes_in += n
                src.last = w.now
            elif n == 0:
                src.rd_eof = 1
                src.last = w.now
            elif errno == EAGAIN or errno == EINTR:
                src.readable = 0
                return False
            else:
                session_abort(w, idx, s, from_side == SIDE_SRV)
                return False
            continue
        if src.buf == NULL:
            src.buf = buf_get(w)
            if src.buf == NULL:
                return False
        n = recv(src.fd, src.buf, w.bufsize, 0)
        if n > 0:
            src.head = 0
            src.tail = n
            src.bytes_in += n
            src.last = w.now
            if n == w.bufsize:
                src.bulk = 1      # more than a buffer at once: splice the rest
            note_short_read(src, n, w.bufsize)
        elif n == 0:
            src.rd_eof = 1
            src.last = w.now
        elif errno == EAGAIN or errno == EINTR:
            src.readable = 0
            buf_put(w, src.buf)     # an idle connection holds no buffer
            src.buf = NULL
            return False
        else:
            session_abort(w, idx, s, from_side == SIDE_SRV)
            return False
    return True


cdef void session_event(Worker w, int idx, Session *s, int side, uint32_t events):
    cdef Side *other = &s.srv if side == SIDE_CLI else &s.cli
    cdef int which = 0
    if s.http == 1:
        http_on_event(w, idx, s, side, events)
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
