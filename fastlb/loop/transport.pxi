# Byte I/O of one connection side.  Interface: transport.pxd.
#
# Why a layer: the TCP relay (relay.pxi) and the HTTP analysers (http_*.pxi) move bytes
# only through the side_* functions here, and these reach the connection only through
# side.xprt, the side's Transport (HAProxy's xprt_ops; Pingora's one IO interface).  What
# the rest of the loop sees of a connection is a buffer, readiness (side.readable, kept
# from epoll edges and short reads) and four outcomes: data, nothing now, EOF, error.
#
# Today every side uses raw_socket.  A TLS transport slots in beside it, without touching
# the relay or the HTTP code:
# - a Transport whose recv/send call SSL_read/SSL_write on the SSL object kept in
#   side.xprt_ctx (OpenSSL through a .pxd in includes/), mapping SSL_ERROR_WANT_READ /
#   WANT_WRITE to -1 with errno EAGAIN, so "nothing now" means the same to every caller;
# - the handshake as the first thing recv/send do while it is not finished (they report
#   EAGAIN until it is: the session's state machine needs no new state), a failed one as
#   an error, with the cause kept in xprt_ctx for the log;
# - splice = 0: side_may_splice refuses, and the relay copies through the buffer;
# - shutw sends close_notify before shutdown(2); close frees the SSL object;
# - side_attach(side, fd, &tls_transport) where a listener or a server says "ssl" (the
#   compiled specs carry the choice and the SSL_CTX).
# One thing outside this file would change: idle server connections are pooled as bare
# descriptors (http_pool.pxi); a TLS one must keep its xprt_ctx with it.

# ---------------------------------------------------------------------------- raw socket
cdef ssize_t raw_recv(Side *side, char *buf, size_t n) noexcept nogil:
    return recv(side.fd, buf, n, 0)


cdef ssize_t raw_send(Side *side, const char *buf, size_t n) noexcept nogil:
    return send(side.fd, buf, n, MSG_NOSIGNAL)


cdef int raw_shutw(Side *side) noexcept nogil:
    return shutdown(side.fd, SHUT_WR)


cdef void raw_close(Side *side) noexcept nogil:
    close(side.fd)              # also leaves the epoll set (see side_watch())


raw_socket.name = b"raw"
raw_socket.recv = raw_recv
raw_socket.send = raw_send
raw_socket.shutw = raw_shutw
raw_socket.close = raw_close
raw_socket.splice = 1


# ---------------------------------------------------------------------------- sides
cdef void keepalive(int fd, const int *probes) noexcept nogil:
    """SO_KEEPALIVE on, with the probes' count, idle and interval (s) that are set (0:
    the system's); on a UNIX socket the TCP ones fail, harmlessly."""
    cdef int one = 1
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(int))
    if probes[0]:
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes[0], sizeof(int))
    if probes[1]:
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &probes[1], sizeof(int))
    if probes[2]:
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &probes[2], sizeof(int))


cdef void side_init(Side *side) noexcept nogil:
    memset(side, 0, sizeof(Side))
    side.fd = -1
    side.pipe_r = -1
    side.pipe_w = -1
    side.xprt = &raw_socket


cdef void side_attach(Side *side, int fd, const Transport *xprt) noexcept nogil:
    """A connected (or connecting) descriptor becomes this side's connection."""
    side.fd = fd
    side.xprt = xprt


cdef void note_readable(Side *side, uint32_t events) noexcept nogil:
    """Read readiness, kept per socket so that a read that would only say EAGAIN is not
    made (epoll is edge-triggered: an edge comes for every arrival after a drain)."""
    if events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR):
        side.readable = 2
    elif events & EPOLLIN and side.readable == 0:
        side.readable = 1


cdef inline void note_short_read(Side *side, ssize_t got, ssize_t asked) noexcept nogil:
    # Less than asked: the receive queue is empty now, and whatever arrives later raises
    # a new edge.  Not after a close was seen, whose edge may already have been consumed.
    if got < asked and side.readable == 1:
        side.readable = 0


cdef int side_read(Side *side, BufPool *pool, int64_t now) noexcept nogil:
    """Read into the free end of the side's buffer (IoResult)."""
    cdef ssize_t n, room
    if side.rd_eof or side.fd < 0 or not side.readable:
        return IO_NONE
    if side.buf == NULL:
        side.buf = pool_get(pool)
        side.head = side.tail = 0
        if side.buf == NULL:
            side.buf_wait = 1
            return IO_NONE
    if side.head > 0 and side.tail == pool.size:
        memmove(side.buf, side.buf + side.head, side.tail - side.head)
        side.tail -= side.head
        side.head = 0
    if side.tail == pool.size:
        return IO_NONE
    room = pool.size - side.tail
    n = side.xprt.recv(side, side.buf + side.tail, room)
    if n > 0:
        side.tail += n
        side.bytes_in += n
        side.last = side.last_rd = now
        note_short_read(side, n, room)
        return IO_DATA
    if side.head == side.tail:
        side_release(side, pool)    # nothing came: an idle connection holds no buffer
    if n == 0:
        side.rd_eof = 1
        side.last = side.last_rd = now
        return IO_EOF
    if errno == EAGAIN or errno == EINTR:
        side.readable = 0
        return IO_NONE
    return IO_ERROR


cdef int64_t side_write(Side *side, const char *data, int64_t n, int64_t now) noexcept nogil:
    """Bytes the transport took, 0 when it would block, -1 on error."""
    cdef ssize_t r
    if n <= 0:
        return 0
    r = side.xprt.send(side, data, n)
    if r > 0:
        side.last = now
        return r
    if r < 0 and (errno == EAGAIN or errno == EINTR):
        return 0
    return -1


cdef void side_consume(Side *side, BufPool *pool, int64_t n) noexcept nogil:
    """n bytes at the front of the buffer are done with; an emptied buffer goes back."""
    side.head += n
    if side.head == side.tail:
        side_release(side, pool)


cdef void side_release(Side *side, BufPool *pool) noexcept nogil:
    pool_put(pool, side.buf)
    side.buf = NULL
    side.head = side.tail = 0


cdef void side_shutw(Side *side, int64_t now) noexcept nogil:
    """Propagate a half-close: our FIN to this side."""
    side.xprt.shutw(side)
    side.wr_shut = 1
    side.last = now


cdef void side_discard_input(Side *side) noexcept nogil:
    """Unread input turns close() into a reset: read some away so the peer sees a FIN."""
    cdef char scratch[4096]
    cdef int i
    for i in range(4):
        if side.xprt.recv(side, scratch, sizeof(scratch)) <= 0:
            break


cdef void side_close(Side *side) noexcept nogil:
    """Close the connection and its splice pipe (the buffer is the caller's)."""
    global pipes_left
    if side.pipe_r >= 0:
        close(side.pipe_r)
        close(side.pipe_w)
        side.pipe_r = side.pipe_w = -1
        if pipes_left >= 0:
            pipes_left += 1
        side.piped = 0
    if side.fd >= 0:
        side.xprt.close(side)
        side.fd = -1
        side.xprt_ctx = NULL


# ---------------------------------------------------------------------------- under the transport
# A PROXY header comes before any transport's own bytes (TLS included): it is read from
# the descriptor itself, peeked until whole, then taken off.
cdef ssize_t side_peek(Side *side, char *buf, size_t n) noexcept nogil:
    return recv(side.fd, buf, n, MSG_PEEK)


cdef ssize_t side_peek_consume(Side *side, char *buf, size_t n) noexcept nogil:
    cdef ssize_t r = recv(side.fd, buf, n, 0)
    if r < 0 and errno == EINTR:
        r = recv(side.fd, buf, n, 0)
    return r


# ---------------------------------------------------------------------------- splice
# tune.pipesize, and the pipes this process may still open (maxpipes, its share of it;
# nosplice: none; -1: no limit).  Set once by Worker.set_splice_limits.
cdef int pipe_bytes = PIPE_BYTES
cdef int pipes_left = -1


cdef bint side_may_splice(Side *src, Side *dst) noexcept nogil:
    """Both transports let the kernel move the payload, and src has (or gets) its pipe."""
    global pipes_left
    cdef int fds[2]
    if not (src.xprt.splice and dst.xprt.splice):
        return False
    if src.pipe_r >= 0:
        return True
    if pipes_left == 0:
        return False                # at maxpipes (or nosplice): copied through the buffer
    if pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0:
        src.bulk = 0                # no pipe to be had: copy from now on
        return False
    if pipes_left > 0:
        pipes_left -= 1
    fcntl(fds[1], F_SETPIPE_SZ, pipe_bytes)     # best effort: fewer, larger moves
    src.pipe_r = fds[0]
    src.pipe_w = fds[1]
    return True


cdef int side_splice_in(Side *side, int64_t now) noexcept nogil:
    """Socket -> the side's pipe (IoResult).  A short splice says nothing about the queue
    (the pipe also fills by pages), so readiness is cleared by EAGAIN only."""
    cdef ssize_t n = splice(side.fd, NULL, side.pipe_w, NULL, pipe_bytes,
                            SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
    if n > 0:
        side.piped = n
        side.bytes_in += n
        side.last = side.last_rd = now
        return IO_DATA
    if n == 0:
        side.rd_eof = 1
        side.last = side.last_rd = now
        return IO_EOF
    if errno == EAGAIN or errno == EINTR:
        side.readable = 0
        return IO_NONE
    return IO_ERROR


cdef int64_t side_splice_out(Side *src, Side *dst, int64_t now) noexcept nogil:
    """src's pipe -> dst's socket: bytes moved, 0 when it would block, -1 on error."""
    cdef ssize_t n = splice(src.pipe_r, NULL, dst.fd, NULL, src.piped,
                            SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
    if n > 0:
        src.piped -= n
        dst.last = now
        return n
    if n < 0 and (errno == EAGAIN or errno == EINTR):
        return 0
    return -1


# ------------------------------------------------------------------ descriptors passed
# HAProxy's sockpair@: an SCM_RIGHTS message with two bytes per connection handed over
# (it sends two and reads up to two: the same here, so either end may be haproxy).
cdef int fd_receive(int via) noexcept nogil:
    """A descriptor received over ``via`` (non-blocking, close-on-exec); -1 with errno
    EAGAIN when none waits, -1 with errno 0 when the sender has gone (EOF)."""
    cdef char data[2]
    cdef char control[64]
    cdef iovec iov
    cdef msghdr msg
    cdef cmsghdr *cmsg
    cdef int fd = -1
    cdef ssize_t n
    iov.iov_base = data
    iov.iov_len = 2
    memset(&msg, 0, sizeof(msghdr))
    msg.msg_iov = &iov
    msg.msg_iovlen = 1
    msg.msg_control = control
    msg.msg_controllen = CMSG_SPACE(sizeof(int))
    n = recvmsg(via, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT)
    if n == 0:
        errno = 0
        return -1
    if n < 0:
        return -1
    cmsg = CMSG_FIRSTHDR(&msg)
    if cmsg != NULL and cmsg.cmsg_level == SOL_SOCKET and cmsg.cmsg_type == SCM_RIGHTS:
        memcpy(&fd, CMSG_DATA(cmsg), sizeof(int))
    if fd < 0:
        errno = EAGAIN                  # bytes without a descriptor: nothing to accept
        return -1
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    return fd


cdef int fd_send(int via, int fd) noexcept nogil:
    """Hand ``fd`` over ``via``: 0, or -1 with errno."""
    cdef char data[2]
    cdef char control[64]
    cdef iovec iov
    cdef msghdr msg
    cdef cmsghdr *cmsg
    data[0] = data[1] = 0
    iov.iov_base = data
    iov.iov_len = 2
    memset(&msg, 0, sizeof(msghdr))
    memset(control, 0, sizeof(control))
    msg.msg_iov = &iov
    msg.msg_iovlen = 1
    msg.msg_control = control
    msg.msg_controllen = CMSG_SPACE(sizeof(int))
    cmsg = CMSG_FIRSTHDR(&msg)
    cmsg.cmsg_level = SOL_SOCKET
    cmsg.cmsg_type = SCM_RIGHTS
    cmsg.cmsg_len = CMSG_LEN(sizeof(int))
    memcpy(CMSG_DATA(cmsg), &fd, sizeof(int))
    return 0 if sendmsg(via, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) == 2 else -1
