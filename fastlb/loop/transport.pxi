# Byte I/O of one connection side (see transport.pxi for the design).
# Interface: transport.pxd.


# ------------------------------------------------------------------ relay
cdef void side_close(Worker w, Side *side):
    if side.pipe_r >= 0:
        close(side.pipe_r)
        close(side.pipe_w)
        side.pipe_r = side.pipe_w = -1
        side.piped = 0
    if side.fd >= 0:
        close(side.fd)            # also leaves the epoll set (see watch())
        side.fd = -1


cdef int side_open_pipe(Worker w, Side *side):
    """The splice pipe of a bulk direction; -1 when none can be had (then: copy)."""
    cdef int fds[2]
    if pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0:
        side.bulk = 0
        return -1
    fcntl(fds[1], F_SETPIPE_SZ, <int>PIPE_BYTES)     # best effort: fewer, larger moves
    side.pipe_r = fds[0]
    side.pipe_w = fds[1]
    return 0


cdef int64_t buffered(Side *side):
    return side.tail - side.head


cdef int side_read(Worker w, Side *side):
    """Read into the free end of the side's buffer: 1 data, 0 nothing now, -1 EOF, -2 error."""
    cdef ssize_t n, room
    if side.rd_eof or side.fd < 0 or not side.readable:
        return 0
    if side.buf == NULL:
        side.buf = buf_get(w)
        side.head = side.tail = 0
        if side.buf == NULL:
            return 0
    if side.head > 0 and side.tail == w.bufsize:
        memmove(side.buf, side.buf + side.head, side.tail - side.head)
        side.tail -= side.head
        side.head = 0
    if side.tail == w.bufsize:
        return 0
    room = w.bufsize - side.tail
    n = recv(side.fd, side.buf + side.tail, room, 0)
    if n > 0:
        side.tail += n
        side.bytes_in += n
        side.last = w.now
        note_short_read(side, n, room)
        return 1
    if side.head == side.tail:
        # Nothing came: an idle connection holds no buffer (the pool keeps it warm).
        buf_put(w, side.buf)
        side.buf = NULL
        side.head = side.tail = 0
    if n == 0:
        side.rd_eof = 1
        side.last = w.now
        return -1
    if errno == EAGAIN or errno == EINTR:
        side.readable = 0
        return 0
    return -2


cdef void side_consume(Worker w, Side *side, int64_t n):
    side.head += n
    if side.head == side.tail:
        side.head = side.tail = 0
        buf_put(w, side.buf)
        side.buf = NULL


cdef int64_t side_send(Worker w, Side *dst, const char *data, int64_t n):
    """Bytes accepted by the kernel, 0 when full, -1 on error."""
    cdef ssize_t r
    if n <= 0:
        return 0
    r = send(dst.fd, data, n, MSG_NOSIGNAL)
    if r > 0:
        dst.last = w.now
        return r
    if r < 0 and (errno == EAGAIN or errno == EINTR):
        return 0
    return -1
