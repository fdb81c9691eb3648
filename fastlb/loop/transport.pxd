# Byte I/O of one connection side: the only place the loop reads, writes, splices, shuts
# down or closes a connection.  Design notes in transport.pxi.

from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t

cdef struct Side

# A transport (HAProxy's xprt_ops): how bytes cross one connection.  Each returns like
# the system call it stands for (recv/send: >0 bytes, 0 EOF for recv, -1 with errno).
ctypedef ssize_t (*xprt_recv_t)(Side *side, char *buf, size_t n) noexcept nogil
ctypedef ssize_t (*xprt_send_t)(Side *side, const char *buf, size_t n) noexcept nogil
ctypedef int (*xprt_shutw_t)(Side *side) noexcept nogil
ctypedef void (*xprt_close_t)(Side *side) noexcept nogil

cdef struct Transport:
    const char *name
    xprt_recv_t recv
    xprt_send_t send
    xprt_shutw_t shutw      # send our FIN (TLS: close_notify first)
    xprt_close_t close      # release the transport's state and the descriptor
    uint8_t splice          # the kernel sees the payload: splice(2) may bypass user space

cdef struct Side:
    int fd                  # -1 when closed or not yet opened
    const Transport *xprt   # how bytes cross this connection (raw_socket until TLS)
    void *xprt_ctx          # that transport's own state (none for a raw socket)
    char *buf               # bytes read from this side, waiting to go to the other side
    uint32_t head
    uint32_t tail
    uint8_t readable        # 0: drained (the next EPOLLIN edge says when to read), 1: may
                            # have data, 2: the peer closed or failed: read until EOF/error
    uint8_t rd_eof          # this side sent FIN
    uint8_t wr_shut         # we sent FIN to this side
    int pipe_r              # TCP bulk transfer: bytes read from this side wait in a pipe
    int pipe_w              # (splice(2), no copy to user space); -1: no pipe
    uint32_t piped          # bytes in that pipe
    uint8_t bulk            # a read filled a whole buffer: splice from now on
    uint8_t buf_wait        # a read found no buffer to be had (tune.buffers.limit): the
                            # session waits on the worker's bufwait list
    int64_t last            # last read or write on this socket, ms (monotonic)
    int64_t last_rd         # last read (option independent-streams times reads alone)
    uint64_t bytes_in       # bytes read from this side

# what side_read and side_splice_in report
cdef enum IoResult:
    IO_DATA = 1             # bytes came
    IO_NONE = 0             # nothing now (would block, buffer full, no buffer to be had)
    IO_EOF = -1             # the peer sent FIN
    IO_ERROR = -2           # reset, or any other error: the connection is lost

cdef Transport raw_socket   # plain TCP: recv/send/shutdown/close on the descriptor

cdef inline int64_t buffered(Side *side) noexcept nogil:
    """Bytes read from this side and not yet consumed."""
    return side.tail - side.head

cdef void keepalive(int fd, const int *probes) noexcept nogil
cdef void side_init(Side *side) noexcept nogil
cdef void side_attach(Side *side, int fd, const Transport *xprt) noexcept nogil
cdef void note_readable(Side *side, uint32_t events) noexcept nogil
cdef int side_read(Side *side, BufPool *pool, int64_t now) noexcept nogil
cdef int64_t side_write(Side *side, const char *data, int64_t n, int64_t now) noexcept nogil
cdef void side_consume(Side *side, BufPool *pool, int64_t n) noexcept nogil
cdef void side_release(Side *side, BufPool *pool) noexcept nogil
cdef void side_shutw(Side *side, int64_t now) noexcept nogil
cdef void side_discard_input(Side *side) noexcept nogil
cdef void side_close(Side *side) noexcept nogil
cdef ssize_t side_peek(Side *side, char *buf, size_t n) noexcept nogil
cdef ssize_t side_peek_consume(Side *side, char *buf, size_t n) noexcept nogil
cdef bint side_may_splice(Side *src, Side *dst) noexcept nogil
cdef int side_splice_in(Side *side, int64_t now) noexcept nogil
cdef int64_t side_splice_out(Side *src, Side *dst, int64_t now) noexcept nogil
# sockpair@: a connection's descriptor passed over a connected UNIX socket
cdef int fd_receive(int via) noexcept nogil
cdef int fd_send(int via, int fd) noexcept nogil
