# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The worker's hot path: an epoll loop over non-blocking sockets relaying TCP sessions.

Everything per connection lives in C structs (sessions, buffers, timers); Python
is called only at the edges: set-up, signals, and one log call per session when
logging is configured.
"""

cimport cython
from cpython.exc cimport PyErr_CheckSignals
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t

from fastlb.includes.system cimport *
from fastlb.lb.algorithms cimport *
from fastlb.lb.roundrobin cimport rr_pick
from fastlb.lb.hashing cimport sdbm, full_hash, address_hash, map_lookup, ring_lookup
from fastlb.lb.leastconn cimport leastconn_pick
from fastlb.lb.first cimport first_pick
from fastlb.http.framing cimport *
from fastlb.shm.words cimport *

import os as _os
import socket as _socket

cdef extern from *:
    const char *FASTLB_CYTHON_VERSION

BUILT_WITH_CYTHON = FASTLB_CYTHON_VERSION.decode()

from fastlb.http.errors import builtin_page
from fastlb.http.fields import HeaderValueError

DEF SESSIONS_PER_CHUNK = 1024
DEF MAX_EVENTS = 256
DEF ACCEPT_BATCH = 64
DEF PUMP_ROUNDS = 8
DEF PIPE_BYTES = 262144    # splice pipe size asked for (the kernel's default is 64 KiB)
DEF RESUME_CHECK_MS = 10
DEF FD_EXHAUSTED_PAUSE_MS = 100

# epoll user data: [tag:32][kind:2][index:29][side:1]; for a session the tag is its generation,
# plus, on the server side, the number of server connections it has had, so that events
# still queued for a replaced server socket are recognised as stale.
DEF KIND_SESSION = 0
DEF KIND_LISTENER = 1
DEF KIND_WAKEUP = 2
DEF KIND_IDLE = 3           # an idle server connection in the pool: [fd:32][3][server:29][0]
DEF IDLE_PER_SERVER = 64    # idle server connections a worker keeps per server (http-reuse)

DEF SIDE_CLI = 0
DEF SIDE_SRV = 1

DEF LOG_NONE = 0
DEF LOG_CONNECT = 1
DEF LOG_TCPLOG = 2
DEF LOG_HTTPLOG = 3

# server assignment and queues (_assign.pxi)
DEF ASSIGN_NONE = -1        # no usable server
DEF ASSIGN_QUEUED = -2      # waiting in a queue
DEF BALANCE_FULL = -3       # usable servers exist, all full

DEF QUEUE_POLL_MS = 1

include "_stats.pxi"


cdef inline int64_t monotonic_ms() nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000 + ts.tv_nsec // 1000000


cdef inline int64_t realtime_ms() nogil:
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    return <int64_t>ts.tv_sec * 1000 + ts.tv_nsec // 1000000


cdef inline uint32_t side_tag(Session *s, int side) nogil:
    # gen and epoch only grow, so a replaced socket never shares a tag with its successor
    return s.gen + (s.srv_epoch if side == SIDE_SRV else 0)


# Read readiness, kept per socket so that a read that would only say EAGAIN is not made
# (epoll is edge-triggered: an edge comes for every arrival after a drain).
cdef inline void note_readable(Side *side, uint32_t events) noexcept nogil:
    if events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR):
        side.readable = 2
    elif events & EPOLLIN and side.readable == 0:
        side.readable = 1


cdef inline void note_short_read(Side *side, ssize_t got, ssize_t asked) noexcept nogil:
    # Less than asked: the receive queue is empty now, and whatever arrives later raises
    # a new edge.  Not after a close was seen, whose edge may already have been consumed.
    if got < asked and side.readable == 1:
        side.readable = 0


cdef inline void side_init(Side *side) noexcept nogil:
    memset(side, 0, sizeof(Side))
    side.fd = -1
    side.pipe_r = -1
    side.pipe_w = -1


cdef inline uint64_t pack_data(uint32_t gen, int kind, uint32_t index, int side) nogil:
    return (<uint64_t>gen << 32) | (<uint64_t>kind << 30) | (<uint64_t>index << 1) | <uint64_t>side


def set_parent_death_signal(int signum):
    """Ask the kernel to send ``signum`` to this process when its parent dies."""
    if prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        raise OSError(errno, "prctl(PR_SET_PDEATHSIG) failed")


cdef void fill_sockaddr(ServerRt *srv, object family, object ip, int port):
    """Convert a textual address into the sockaddr used by connect()."""
    cdef sockaddr_in *sin
    cdef sockaddr_in6 *sin6
    cdef bytes packed
    cdef int i
    memset(&srv.addr, 0, sizeof(sockaddr_storage))
    if family == _socket.AF_INET6:
        sin6 = <sockaddr_in6 *>&srv.addr
        sin6.sin6_family = AF_INET6
        sin6.sin6_port = htons(port)
        packed = _socket.inet_pton(_socket.AF_INET6, ip)
        for i in range(16):
            sin6.sin6_addr.s6_addr[i] = packed[i]
        srv.addrlen = sizeof(sockaddr_in6)
        srv.family = AF_INET6
    else:
        sin = <sockaddr_in *>&srv.addr
        sin.sin_family = AF_INET
        sin.sin_port = htons(port)
        packed = _socket.inet_pton(_socket.AF_INET, ip)
        memcpy(&sin.sin_addr, <char *>packed, 4)
        srv.addrlen = sizeof(sockaddr_in)
        srv.family = AF_INET


cdef object sockaddr_to_tuple(sockaddr_storage *addr):
    cdef sockaddr_in *sin
    cdef sockaddr_in6 *sin6
    if addr.ss_family == AF_INET6:
        sin6 = <sockaddr_in6 *>addr
        ip = _socket.inet_ntop(_socket.AF_INET6, (<char *>sin6.sin6_addr.s6_addr)[:16])
        if ip.startswith("::ffff:") and "." in ip:
            ip = ip[7:]
        return ip, ntohs(sin6.sin6_port)
    sin = <sockaddr_in *>addr
    return _socket.inet_ntop(_socket.AF_INET, (<char *>&sin.sin_addr)[:4]), ntohs(sin.sin_port)


cdef int* int_array(list values):
    cdef int *array = <int *>calloc(max(len(values), 1), sizeof(int))
    cdef int i
    if array == NULL:
        raise MemoryError()
    for i in range(len(values)):
        array[i] = values[i]
    return array


@cython.final
cdef class Worker:
    """One worker process's event loop.  Build it with add_* calls, then run()."""

    cdef int epfd
    cdef int worker_id
    cdef int nworkers
    cdef uint32_t bufsize
    cdef public uint32_t head_limit   # largest head: bufsize less tune.maxrewrite
    cdef int64_t now
    cdef int stopping           # 0 running, 1 soft stop (drain), 2 hard stop
    cdef int64_t stop_deadline  # hard-stop-after for a soft stop, 0: none

    cdef FrontendRt *frontends
    cdef int nfrontends
    cdef BackendRt *backends
    cdef int nbackends
    cdef ListenerRt *listeners
    cdef int nlisteners
    cdef int npaused
    cdef int64_t next_resume_check

    cdef Session **chunks
    cdef int nchunks
    cdef int free_head
    cdef int active

    cdef char **pool
    cdef int pool_len
    cdef int pool_cap

    cdef TimerEntry *heap
    cdef int heap_len
    cdef int heap_cap

    cdef object shm_ref         # keeps the mapping alive while the pointer below is used
    cdef uint64_t *shm
    cdef uint64_t *slot
    cdef uint64_t *totals       # atomic count block (fastlb/shm/): reserved before use
    cdef uint64_t *be_words     # per backend: rr position, table version, queue ticket
    cdef uint64_t *srv_words    # per server: state, weight, health, ...
    cdef uint64_t *heads        # per worker: oldest ticket waiting in each queue
    cdef uint64_t *fe_words     # per frontend: maxconn (the stats socket may change it)
    cdef uint64_t *global_words
    cdef uint64_t shutdown_seen # last "shutdown sessions" epoch acted on
    cdef uint64_t *fe_stats     # this worker's statistics rows (_stats.pxi), per frontend,
    cdef uint64_t *be_stats     # per backend
    cdef uint64_t *srv_stats    # and per server (shared index)
    cdef uint64_t *my_heads
    cdef uint32_t slot_base
    cdef uint32_t slot_words
    cdef uint32_t fe_off
    cdef uint32_t srv_shared_off
    cdef uint32_t beq_off
    cdef uint32_t srvq_off
    cdef uint32_t be_off
    cdef uint32_t srv_off
    cdef uint32_t nqueues       # backends + servers
    cdef int *q_head            # per queue: this worker's oldest waiting session (-1: none)
    cdef int *q_tail
    cdef int nqueued            # sessions this worker has waiting in queues
    cdef int64_t next_queue_poll
    cdef int *idle_fds          # per server (shared index): IDLE_PER_SERVER pooled connections
    cdef int *idle_len
    cdef int *lend_head         # per server (shared index): idle sessions lending their connection
    cdef int nservers_total
    cdef list lookup_builders   # per backend: callable returning a fastlb.lb.lookup.Lookup
    cdef list cookies           # per backend: fastlb.http.cookies.Persistence, or None
    cdef list be_params         # per backend: url_param name / hdr() name (bytes), or b""
    cdef uint64_t rng
    cdef int64_t global_maxconn

    cdef object log_callback
    cdef object connect_callback
    cdef object http_log_callback
    cdef object error_capture   # (response, fe, be, srv, bytes, addr, reason): show errors
    cdef list error_pages       # per frontend: {status: bytes} from errorfile lines
    cdef list be_error_pages    # per backend: the same
    cdef list request_editors   # per frontend: callable adding request headers, or None
    cdef list routers           # per frontend: callable choosing backend / deny, or None
    cdef list response_editors  # per frontend: http-response rules, or None
    cdef list captures          # per frontend: ([(name, len)] | None for requests, ... responses)
    cdef list be_response_editors
    cdef list be_request_rules  # per backend: its own http-request rules, or None
    cdef list txns              # HttpTxn per session slot (mode http)
    cdef list runq              # (idx, gen) of HTTP sessions to run again after this batch
    cdef int wakeup_fd
    cdef public uint64_t internal_errors   # sessions and requests ended by an unforeseen error
    cdef set errors_seen         # kinds already logged (internal_error)

    def __cinit__(self):
        self.txns = []
        self.runq = []
        self.errors_seen = set()
        self.error_pages = []
        self.lookup_builders = []
        self.cookies = []
        self.be_params = []
        self.be_error_pages = []
        self.request_editors = []
        self.routers = []
        self.response_editors = []
        self.captures = []
        self.be_response_editors = []
        self.be_request_rules = []
        self.epfd = -1
        self.wakeup_fd = -1
        self.free_head = -1

    def __init__(self, int worker_id, int nworkers, uint32_t bufsize, shm, int nfrontends,
                 int nbackends, int64_t global_maxconn):
        """shm: a fastlb.shm.SharedState (its layout attributes are read here)."""
        cdef unsigned char[::1] view = shm.mm
        cdef uint32_t i
        self.worker_id = worker_id
        self.nworkers = nworkers
        self.bufsize = bufsize
        self.head_limit = bufsize
        self.shm_ref = shm
        self.shm = <uint64_t *>&view[0]
        self.slot_base = shm.slot_base
        self.slot_words = shm.slot_words
        self.slot = self.shm + self.slot_base + worker_id * self.slot_words
        self.totals = self.shm + <uint32_t>shm.total_base
        self.be_words = self.shm + <uint32_t>shm.be_base
        self.srv_words = self.shm + <uint32_t>shm.srv_base
        self.heads = self.shm + <uint32_t>shm.head_base
        self.fe_words = self.shm + <uint32_t>shm.fe_base
        self.global_words = self.shm + <uint32_t>shm.global_base
        self.shutdown_seen = fl_atomic_load(self.global_words + G_SHUTDOWN)
        self.fe_stats = self.shm + <uint32_t>shm.stats_base + worker_id * <uint32_t>shm.stats_words
        self.be_stats = self.fe_stats + nfrontends * STAT_WORDS
        self.srv_stats = self.be_stats + nbackends * STAT_WORDS
        self.my_heads = self.heads + worker_id * <uint32_t>shm.head_words
        self.fe_off = shm.fe_off
        self.srv_shared_off = shm.srv_shared_off
        self.beq_off = shm.beq_off
        self.srvq_off = shm.srvq_off
        self.be_off = shm.be_off
        self.srv_off = shm.srv_off
        self.nqueues = shm.head_words
        self.q_head = <int *>malloc(max(self.nqueues, 1) * sizeof(int))
        self.q_tail = <int *>malloc(max(self.nqueues, 1) * sizeof(int))
        if self.q_head == NULL or self.q_tail == NULL:
            raise MemoryError()
        for i in range(self.nqueues):
            self.q_head[i] = self.q_tail[i] = -1
        self.nservers_total = shm.nservers
        self.idle_fds = <int *>malloc(max(self.nservers_total, 1) * IDLE_PER_SERVER * sizeof(int))
        self.idle_len = <int *>calloc(max(self.nservers_total, 1), sizeof(int))
        self.lend_head = <int *>malloc(max(self.nservers_total, 1) * sizeof(int))
        if self.lend_head == NULL:
            raise MemoryError()
        for i in range(max(self.nservers_total, 1)):
            self.lend_head[i] = -1
        if self.idle_fds == NULL or self.idle_len == NULL:
            raise MemoryError()
        self.rng = <uint64_t>(_os.getpid() * 2654435761) ^ <uint64_t>realtime_ms()
        self.global_maxconn = global_maxconn
        self.frontends = <FrontendRt *>calloc(max(nfrontends, 1), sizeof(FrontendRt))
        self.backends = <BackendRt *>calloc(max(nbackends, 1), sizeof(BackendRt))
        if self.frontends == NULL or self.backends == NULL:
            raise MemoryError()
        self.epfd = epoll_create1(EPOLL_CLOEXEC)
        if self.epfd < 0:
            raise OSError(errno, "epoll_create1 failed")
        self.now = monotonic_ms()

    def __dealloc__(self):
        cdef int i, j
        if self.epfd >= 0:
            close(self.epfd)
        for i in range(self.nchunks):
            free(self.chunks[i])
        free(self.chunks)
        for i in range(self.pool_len):
            free(self.pool[i])
        free(self.pool)
        free(self.heap)
        for i in range(self.nbackends):
            free(self.backends[i].servers)
            free_lookup(&self.backends[i])
            free(self.backends[i].srv_shm)
            free(self.backends[i].srv_maxconn)
            free(self.backends[i].srv_maxqueue)
        free(self.q_head)
        free(self.q_tail)
        if self.idle_len != NULL:
            for i in range(self.nservers_total):
                for j in range(self.idle_len[i]):
                    close(self.idle_fds[i * IDLE_PER_SERVER + j])
        free(self.idle_fds)
        free(self.idle_len)
        free(self.lend_head)
        free(self.backends)
        free(self.frontends)
        free(self.listeners)

    # ------------------------------------------------------------------ set-up (Python level)
    def add_backend(self, list servers, int algo, dict options, lookup_builder,
                    int64_t t_connect, int64_t t_server, int64_t t_server_fin, int64_t t_tunnel,
                    int64_t t_queue, int retries, int redispatch, int srvtcpka, int shm_index,
                    int first_server_shm, int http=0, error_pages=None, response_editor=None,
                    int http_close=0, request_rules=None, cookie=None):
        """servers: [(family, ip, port, maxqueue)]; lookup_builder() -> Lookup (the usable
        servers as arrays, rebuilt from shared state when the table version moves, with the
        servers' maxconn, which the stats socket may change)."""
        cdef BackendRt *be = &self.backends[self.nbackends]
        cdef int i
        be.nservers = len(servers)
        be.servers = <ServerRt *>calloc(max(be.nservers, 1), sizeof(ServerRt))
        be.srv_shm = <uint32_t *>calloc(max(be.nservers, 1), sizeof(uint32_t))
        be.srv_maxconn = <int64_t *>calloc(max(be.nservers, 1), sizeof(int64_t))
        be.srv_maxqueue = <int64_t *>calloc(max(be.nservers, 1), sizeof(int64_t))
        if be.servers == NULL or be.srv_shm == NULL or be.srv_maxconn == NULL or \
                be.srv_maxqueue == NULL:
            raise MemoryError()
        for i, (family, ip, port, maxqueue) in enumerate(servers):
            fill_sockaddr(&be.servers[i], family, ip, port)
            be.servers[i].use_client_port = port == 0
            be.servers[i].index = i
            be.servers[i].shm_index = first_server_shm + i
            be.srv_shm[i] = first_server_shm + i
            be.srv_maxqueue[i] = maxqueue
        be.algo = algo
        be.observed = options.get("observed", 0)
        be.consistent = options.get("consistent", 0)
        be.avalanche = options.get("avalanche", 0)
        be.uri_len = options.get("len", 0)
        be.uri_depth = options.get("depth", 0)
        be.uri_whole = options.get("whole", 0)
        be.uri_path_only = options.get("path_only", 0)
        be.draws = options.get("draws", 2)
        be.reuse_never = options.get("reuse_never", 0)
        be.t_connect = t_connect
        be.t_server = t_server
        be.t_server_fin = t_server_fin
        be.t_tunnel = t_tunnel
        be.t_queue = t_queue
        be.retries = retries
        be.redispatch = redispatch
        be.srvtcpka = srvtcpka
        be.http = http
        be.http_close = http_close
        be.shm_index = shm_index
        self.lookup_builders.append(lookup_builder)
        self.cookies.append(cookie)
        self.be_params.append((options.get("param") or options.get("header") or "").encode())
        self.be_error_pages.append(error_pages or {})
        self.be_response_editors.append(response_editor)
        self.be_request_rules.append(request_rules)
        self.nbackends += 1
        install_lookup(self, self.nbackends - 1)

    def add_frontend(self, int backend, int64_t t_client, int64_t t_client_fin,
                     int clitcpka, int log_mode, int dontlognull, int shm_index, int http=0,
                     int64_t t_http_request=0, int64_t t_http_keep_alive=0, error_pages=None,
                     request_editor=None, router=None, response_editor=None, int http_close=0,
                     captures=(None, None)):
        """error_pages: {status: bytes}; request_editor(out, headers, client_ip)."""
        cdef FrontendRt *fe = &self.frontends[self.nfrontends]
        fe.backend = backend
        fe.http = http
        fe.http_close = http_close
        fe.t_http_request = t_http_request
        fe.t_http_keep_alive = t_http_keep_alive
        self.error_pages.append(error_pages or {})
        self.request_editors.append(request_editor)
        self.routers.append(router)
        self.response_editors.append(response_editor)
        self.captures.append(captures)
        fe.t_client = t_client
        fe.t_client_fin = t_client_fin
        fe.clitcpka = clitcpka
        fe.log_mode = log_mode
        fe.dontlognull = dontlognull
        fe.shm_index = shm_index
        self.nfrontends += 1

    def add_listener(self, int fd, int frontend, int port):
        cdef ListenerRt *l
        cdef epoll_event ev
        self.listeners = <ListenerRt *>realloc(self.listeners, (self.nlisteners + 1) * sizeof(ListenerRt))
        if self.listeners == NULL:
            raise MemoryError()
        l = &self.listeners[self.nlisteners]
        l.fd = fd
        l.fe = frontend
        l.port = port
        l.paused = 0
        l.closed = 0
        ev.events = EPOLLIN | EPOLLEXCLUSIVE
        ev.data.u64 = pack_data(0, KIND_LISTENER, self.nlisteners, 0)
        if epoll_ctl(self.epfd, EPOLL_CTL_ADD, fd, &ev) != 0:
            raise OSError(errno, "epoll_ctl(listener) failed")
        self.nlisteners += 1

    def set_wakeup_fd(self, int fd):
        """A descriptor that becomes readable when a signal arrives (signal.set_wakeup_fd)."""
        cdef epoll_event ev
        ev.events = EPOLLIN
        ev.data.u64 = pack_data(0, KIND_WAKEUP, 0, 0)
        if epoll_ctl(self.epfd, EPOLL_CTL_ADD, fd, &ev) != 0:
            raise OSError(errno, "epoll_ctl(wakeup) failed")
        self.wakeup_fd = fd

    def set_error_capture(self, capture):
        """capture(response, fe, be, server, data, client address, reason): called with
        every request or response that could not be parsed (fastlb/stats/errors.py)."""
        self.error_capture = capture

    def set_log_callbacks(self, end_callback, connect_callback, http_callback=None):
        """end_callback(fields...) at the end of a tcplog session, connect_callback at accept,
        http_callback(fields...) at the end of each HTTP transaction."""
        self.log_callback = end_callback
        self.connect_callback = connect_callback
        self.http_log_callback = http_callback

    # ------------------------------------------------------------------ HTTP helpers
    cdef bytes error_page(self, int fe, int be, int status, bint raw):
        """The backend's errorfile, else the frontend's, else HAProxy's page."""
        page = self.be_error_pages[be].get(status) if be >= 0 else None
        if page is None:
            page = self.error_pages[fe].get(status)
        if page is None:
            page = builtin_page(status, raw)
        return page

    cdef void add_request_headers(self, int fe, list out, list headers, Session *s):
        editor = self.request_editors[fe]
        if editor is not None:          # the address is formatted only when it is used
            editor(out, headers, sockaddr_to_tuple(&s.addr)[0])

    cdef void http_log(self, Session *s, HttpTxn txn):
        cdef int64_t tr, tw, tc, tresp, ta, bc = 0, sc = 0
        cdef int be
        if txn.logged or txn.request_line is None:
            return        # already logged, or no request began (HAProxy logs nothing either)
        txn.logged = True
        if self.http_log_callback is None or self.frontends[s.fe].log_mode != LOG_HTTPLOG:
            return
        tr = txn.t_head - txn.t_start if txn.t_head >= 0 else -1
        tc = txn.t_connect_ms
        be = s.be if txn.routed else -1
        tresp = txn.t_response - txn.t_sent if txn.t_response >= 0 and txn.t_sent >= 0 else -1
        ta = self.now - txn.t_start
        tw = 0 if txn.log_server >= 0 else -1
        if s.t_queued >= 0:
            tw = (s.t_dequeued if s.q_target < 0 else self.now) - s.t_queued
        if be >= 0:
            bc = self.total(self.be_off + self.backends[be].shm_index)
            if txn.log_server >= 0:
                sc = self.total(self.srv_off + self.backends[be].servers[txn.log_server].shm_index)
        try:
            self.http_log_callback(
                s.fe, be, txn.log_server if be >= 0 else -1, sockaddr_to_tuple(&s.addr),
                txn.t_start_real, tr, tw, tc, tresp, ta,
                txn.status, txn.bytes_out,
                (chr(txn.term0) + chr(txn.term1) if txn.term0 != 45 or s.term0 == 45
                 else chr(s.term0) + chr(s.term1)) + txn.ck_client + txn.ck_server,
                fl_atomic_load(self.totals),
                fl_atomic_load(self.totals + COUNT_FRONTENDS + self.frontends[s.fe].shm_index), bc, sc,
                s.retries_done, s.redispatched, txn.request_line,
                (txn.captures_req, txn.captures_rsp))
        except Exception:
            pass

    def soft_stop(self, int64_t hard_stop_after=0):
        """Stop accepting; finish the sessions in flight, then run() returns."""
        cdef int i
        if self.stopping:
            return
        self.stopping = 1
        if hard_stop_after > 0:
            self.stop_deadline = monotonic_ms() + hard_stop_after
        for i in range(self.nlisteners):
            if not self.listeners[i].closed:
                epoll_ctl(self.epfd, EPOLL_CTL_DEL, self.listeners[i].fd, NULL)
                close(self.listeners[i].fd)
                self.listeners[i].closed = 1

    def hard_stop(self):
        self.stopping = 2

    # ------------------------------------------------------------------ session slab
    cdef inline Session *session_at(self, int idx) nogil:
        return &self.chunks[idx // SESSIONS_PER_CHUNK][idx % SESSIONS_PER_CHUNK]

    cdef int session_new(self) except -1:
        cdef int idx, i, base
        cdef Session *chunk
        cdef Session *s
        if self.free_head < 0:
            chunk = <Session *>calloc(SESSIONS_PER_CHUNK, sizeof(Session))
            self.chunks = <Session **>realloc(self.chunks, (self.nchunks + 1) * sizeof(Session *))
            if chunk == NULL or self.chunks == NULL:
                raise MemoryError()
            self.chunks[self.nchunks] = chunk
            base = self.nchunks * SESSIONS_PER_CHUNK
            for i in range(SESSIONS_PER_CHUNK - 1, -1, -1):
                chunk[i].free_next = self.free_head
                self.free_head = base + i
            self.nchunks += 1
        idx = self.free_head
        s = self.session_at(idx)
        self.free_head = s.free_next
        s.gen += 1
        s.state = ST_CONNECTING
        s.http = 0
        s.redispatched = 0
        s.term0 = b'-'
        s.term1 = b'-'
        side_init(&s.cli)
        side_init(&s.srv)
        s.server = -1
        s.be = -1
        s.held_server = -1
        s.forced_server = -1
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
        self.active += 1
        return idx

    cdef void session_free(self, int idx, Session *s):
        s.state = ST_FREE
        s.gen += 1
        s.free_next = self.free_head
        self.free_head = idx
        self.active -= 1

    # ------------------------------------------------------------------ buffer pool
    cdef char *buf_get(self):
        if self.pool_len > 0:
            self.pool_len -= 1
            return self.pool[self.pool_len]
        return <char *>malloc(self.bufsize)

    cdef void buf_put(self, char *buf):
        if buf == NULL:
            return
        if self.pool_len == self.pool_cap:
            if self.pool_cap >= 4096:
                free(buf)
                return
            self.pool_cap = self.pool_cap * 2 if self.pool_cap else 64
            self.pool = <char **>realloc(self.pool, self.pool_cap * sizeof(char *))
        self.pool[self.pool_len] = buf
        self.pool_len += 1

    # ------------------------------------------------------------------ timers (binary heap)
    # One entry per session at most, keyed by its earliest deadline.  Activity only moves a
    # deadline later, and the heap is not touched for it: when an entry comes due, the real
    # deadline is recomputed and the entry moved down if it is still in the future.

    cdef inline void heap_place(self, int i, TimerEntry entry):
        self.heap[i] = entry
        self.session_at(entry.idx).heap_pos = i

    cdef void heap_sift_up(self, int i):
        cdef TimerEntry entry = self.heap[i]
        cdef int parent
        while i > 0:
            parent = (i - 1) // 2
            if self.heap[parent].at <= entry.at:
                break
            self.heap_place(i, self.heap[parent])
            i = parent
        self.heap_place(i, entry)

    cdef void heap_sift_down(self, int i):
        cdef TimerEntry entry = self.heap[i]
        cdef int child
        while True:
            child = 2 * i + 1
            if child >= self.heap_len:
                break
            if child + 1 < self.heap_len and self.heap[child + 1].at < self.heap[child].at:
                child += 1
            if entry.at <= self.heap[child].at:
                break
            self.heap_place(i, self.heap[child])
            i = child
        self.heap_place(i, entry)

    cdef void timer_set(self, int idx, Session *s, int64_t at):
        cdef int i = s.heap_pos
        cdef int64_t old
        if i < 0:
            if self.heap_len == self.heap_cap:
                self.heap_cap = self.heap_cap * 2 if self.heap_cap else 1024
                self.heap = <TimerEntry *>realloc(self.heap, self.heap_cap * sizeof(TimerEntry))
            i = self.heap_len
            self.heap_len += 1
            self.heap[i].at = at
            self.heap[i].idx = idx
            self.heap_sift_up(i)
            return
        old = self.heap[i].at
        self.heap[i].at = at
        if at < old:
            self.heap_sift_up(i)
        elif at > old:
            self.heap_sift_down(i)

    cdef void timer_remove(self, Session *s):
        cdef int i = s.heap_pos
        cdef int64_t removed_at
        if i < 0:
            return
        s.heap_pos = -1
        self.heap_len -= 1
        if i == self.heap_len:
            return
        removed_at = self.heap[i].at
        self.heap_place(i, self.heap[self.heap_len])
        if self.heap[i].at < removed_at:
            self.heap_sift_up(i)
        else:
            self.heap_sift_down(i)

    cdef int64_t session_deadline(self, int idx, Session *s):
        """The earliest moment something must happen to this session (0: none)."""
        cdef FrontendRt *fe
        cdef BackendRt *be
        cdef int64_t dl = 0, t, cli_to, srv_to
        if s.http == 1:
            return http_deadline(self, idx, s)   # an HTTP session may have no backend yet
        fe = &self.frontends[s.fe]
        be = &self.backends[s.be]
        if s.state == ST_ESTABLISHED:
            if be.t_tunnel:
                return (s.cli.last if s.cli.last > s.srv.last else s.srv.last) + be.t_tunnel
            cli_to = fe.t_client
            if fe.t_client_fin and (s.cli.rd_eof or s.cli.wr_shut):
                cli_to = fe.t_client_fin
            srv_to = be.t_server
            if be.t_server_fin and (s.srv.rd_eof or s.srv.wr_shut):
                srv_to = be.t_server_fin
            if cli_to:
                dl = s.cli.last + cli_to
            if srv_to:
                t = s.srv.last + srv_to
                if dl == 0 or t < dl:
                    dl = t
            return dl
        if fe.t_client:
            dl = s.cli.last + fe.t_client
        if s.state == ST_CONNECTING and be.t_connect:
            t = s.t_connect + be.t_connect
            if dl == 0 or t < dl:
                dl = t
        elif s.state == ST_QUEUED and be.t_queue:
            t = s.t_queued + be.t_queue
            if dl == 0 or t < dl:
                dl = t
        elif s.state == ST_TURNAROUND:
            if dl == 0 or s.wake_at < dl:
                dl = s.wake_at
        return dl

    cdef void arm_timer(self, int idx, Session *s):
        """Make sure the heap entry is no later than the session's deadline."""
        cdef int64_t dl = self.session_deadline(idx, s)
        if dl == 0:
            return    # an entry left in place finds no deadline when it comes due
        if s.heap_pos < 0 or dl < self.heap[s.heap_pos].at:
            self.timer_set(idx, s, dl)

    cdef void run_timers(self):
        cdef Session *s
        cdef int idx
        cdef int64_t dl
        while self.heap_len > 0 and self.heap[0].at <= self.now:
            idx = self.heap[0].idx
            s = self.session_at(idx)
            dl = self.session_deadline(idx, s)
            if dl > self.now:
                self.timer_set(idx, s, dl)
                continue
            self.timer_remove(s)
            if dl != 0:
                try:
                    self.session_expired(idx, s)
                except Exception as exc:
                    self.session_failed(idx, s, exc)

    cdef int next_timeout_ms(self):
        cdef int64_t wait = 1000
        if self.heap_len > 0:
            wait = self.heap[0].at - self.now
            if wait < 0:
                wait = 0
            elif wait > 1000:
                wait = 1000
        if self.npaused and wait > RESUME_CHECK_MS:
            wait = RESUME_CHECK_MS
        if self.nqueued and wait > 1:
            wait = 1                  # waiting requests: look for free places every ms
        if self.runq:
            wait = 0
        return <int>wait

    cdef void session_expired(self, int idx, Session *s):
        cdef FrontendRt *fe
        cdef BackendRt *be
        if s.http == 1:
            http_expired(self, idx, s)
            return
        fe = &self.frontends[s.fe]
        be = &self.backends[s.be]
        if s.state == ST_CONNECTING and be.t_connect and s.t_connect + be.t_connect <= self.now:
            self.connect_failed(idx, s, 1)
            return
        if s.state == ST_TURNAROUND and s.wake_at <= self.now:
            self.start_connect(idx, s)
            return
        if s.state == ST_QUEUED and be.t_queue and s.t_queued + be.t_queue <= self.now:
            queue_leave(self, s)
            s.term0 = b's'            # timeout queue
            s.term1 = b'Q'
            self.session_close(idx, s)
            return
        if s.state != ST_ESTABLISHED:
            s.term0 = b'c'            # client timeout before the server connection was made
            s.term1 = b'C' if s.state == ST_CONNECTING else b'Q'
        elif be.t_tunnel:
            s.term0 = b'c'
            s.term1 = b'D'
        elif fe.t_client and s.cli.last + (fe.t_client_fin if fe.t_client_fin and (s.cli.rd_eof or s.cli.wr_shut) else fe.t_client) <= self.now:
            s.term0 = b'c'
            s.term1 = b'D'
        else:
            s.term0 = b's'
            s.term1 = b'D'
        self.session_close(idx, s)

    # ------------------------------------------------------------------ shared counters
    cdef inline void count(self, uint32_t offset, int64_t delta) nogil:
        self.slot[offset] = <uint64_t>(<int64_t>self.slot[offset] + delta)

    cdef int64_t total(self, uint32_t offset) nogil:
        cdef int64_t sum = 0
        cdef int w
        cdef uint64_t *base = self.shm + self.slot_base + offset
        for w in range(self.nworkers):
            sum += <int64_t>fl_atomic_load(base + w * self.slot_words)
        return sum

    # ------------------------------------------------------------------ epoll registration
    cdef int watch(self, int idx, Session *s, Side *side, int which):
        """Register a new socket once, edge-triggered for both directions.  The session's
        state machine tries a read or a write whenever it wants one and stops at EAGAIN, so
        the interest never has to change: no epoll_ctl() per request, and close() alone
        takes the socket out of the set (it is never shared with another process)."""
        cdef epoll_event ev
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET
        ev.data.u64 = pack_data(side_tag(s, which), KIND_SESSION, idx, which)
        if epoll_ctl(self.epfd, EPOLL_CTL_ADD, side.fd, &ev) != 0:
            return -1
        return 0

    # ------------------------------------------------------------------ accept
    cdef inline int64_t fe_maxconn(self, FrontendRt *fe) nogil:
        return <int64_t>fl_atomic_load(self.fe_words + fe.shm_index * FE_WORDS + FE_MAXCONN)

    cdef bint over_maxconn(self, FrontendRt *fe):
        cdef int64_t maxconn = self.fe_maxconn(fe)
        if maxconn and <int64_t>fl_atomic_load(self.totals + COUNT_FRONTENDS + fe.shm_index) >= maxconn:
            return True
        if self.global_maxconn and <int64_t>fl_atomic_load(self.totals) >= self.global_maxconn:
            return True
        return False

    cdef bint conn_reserve(self, FrontendRt *fe):
        """Take a connection slot in the shared totals, or fail if a maxconn is reached."""
        cdef int64_t g = <int64_t>fl_atomic_fetch_add(self.totals, 1)
        cdef int64_t f = <int64_t>fl_atomic_fetch_add(self.totals + COUNT_FRONTENDS + fe.shm_index, 1)
        cdef int64_t maxconn = self.fe_maxconn(fe)
        self.count(0, 1)
        self.count(self.fe_off + fe.shm_index, 1)
        if (self.global_maxconn and g >= self.global_maxconn) or (maxconn and f >= maxconn):
            self.conn_release(fe)
            return False
        stat_max(self.fe_stats + fe.shm_index * STAT_WORDS, STAT_SMAX, f + 1)
        return True

    cdef void conn_release(self, FrontendRt *fe):
        fl_atomic_fetch_sub(self.totals, 1)
        fl_atomic_fetch_sub(self.totals + COUNT_FRONTENDS + fe.shm_index, 1)
        self.count(0, -1)
        self.count(self.fe_off + fe.shm_index, -1)

    cdef void pause_listener(self, int li):
        cdef ListenerRt *l = &self.listeners[li]
        if l.paused or l.closed:
            return
        epoll_ctl(self.epfd, EPOLL_CTL_DEL, l.fd, NULL)
        l.paused = 1
        self.npaused += 1
        self.next_resume_check = self.now + RESUME_CHECK_MS

    cdef void resume_listeners(self):
        cdef int i
        cdef ListenerRt *l
        cdef epoll_event ev
        if self.now < self.next_resume_check:
            return
        self.next_resume_check = self.now + RESUME_CHECK_MS
        for i in range(self.nlisteners):
            l = &self.listeners[i]
            if not l.paused or l.closed or self.over_maxconn(&self.frontends[l.fe]):
                continue
            ev.events = EPOLLIN | EPOLLEXCLUSIVE
            ev.data.u64 = pack_data(0, KIND_LISTENER, i, 0)
            epoll_ctl(self.epfd, EPOLL_CTL_ADD, l.fd, &ev)
            l.paused = 0
            self.npaused -= 1

    cdef void on_accept(self, int li):
        cdef ListenerRt *l = &self.listeners[li]
        cdef FrontendRt *fe = &self.frontends[l.fe]
        cdef int n, fd, idx, one = 1
        cdef Session *s
        cdef sockaddr_storage addr
        cdef socklen_t addrlen
        for n in range(ACCEPT_BATCH):
            if not self.conn_reserve(fe):
                self.pause_listener(li)
                return
            addrlen = sizeof(sockaddr_storage)
            fd = accept4(l.fd, <sockaddr *>&addr, &addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC)
            if fd < 0:
                self.conn_release(fe)
                if errno == EINTR or errno == ECONNABORTED:
                    continue
                if errno == EMFILE or errno == ENFILE or errno == ENOBUFS or errno == ENOMEM:
                    # Out of descriptors: stop accepting for a moment instead of spinning.
                    self.pause_listener(li)
                    self.next_resume_check = self.now + FD_EXHAUSTED_PAUSE_MS
                return
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(int))
            self.fe_stats[fe.shm_index * STAT_WORDS + STAT_CONN_TOT] += 1
            self.fe_stats[fe.shm_index * STAT_WORDS + STAT_SESS_TOT] += 1
            if fe.clitcpka:
                setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(int))
            idx = self.session_new()
            s = self.session_at(idx)
            s.cli.fd = fd
            s.cli.readable = 1        # the request often came with the handshake: try at once
            s.cli.last = self.now
            s.fe = l.fe
            s.listener = li
            s.t_accept = self.now
            s.t_accept_real = realtime_ms()
            s.t_connect = self.now
            memcpy(&s.addr, &addr, addrlen)
            s.addrlen = addrlen
            if self.watch(idx, s, &s.cli, SIDE_CLI) != 0:
                s.term0 = b'R'        # no room in the epoll set: a resource shortage
                s.term1 = b'C'
                self.session_close(idx, s)
                continue
            try:
                self.accepted(idx, s, fe)
            except Exception as exc:
                self.session_failed(idx, s, exc)

    cdef void accepted(self, int idx, Session *s, FrontendRt *fe):
        """A new client connection, registered: log it, then start HTTP or connect."""
        if fe.log_mode == LOG_CONNECT and self.connect_callback is not None:
            self.log_connect(s)
        if fe.http or (fe.backend >= 0 and self.backends[fe.backend].http):
            s.be = fe.backend            # an HTTP backend makes a TCP frontend's session HTTP
            http_start(self, idx, s)
            return
        if fe.backend < 0:
            s.term0 = b'S'        # no backend to route to
            s.term1 = b'C'
            self.session_close(idx, s)
            return
        s.be = fe.backend
        s.retries_left = self.backends[s.be].retries
        self.count(self.be_off + self.backends[s.be].shm_index, 1)
        self.be_stats[self.backends[s.be].shm_index * STAT_WORDS + STAT_SESS_TOT] += 1
        stat_max(self.be_stats + self.backends[s.be].shm_index * STAT_WORDS, STAT_SMAX,
                 <int64_t>self.slot[self.be_off + self.backends[s.be].shm_index])
        set_source_key(&self.backends[s.be], s)
        self.start_connect(idx, s)

    # ------------------------------------------------------------------ server connection
    cdef void start_connect(self, int idx, Session *s):
        cdef BackendRt *be = &self.backends[s.be]
        cdef ServerRt *srv
        cdef sockaddr_storage addr
        cdef int fd, rc, one = 1
        if s.server < 0:
            s.server = assign_server(self, idx, s)
            if s.server == ASSIGN_QUEUED:
                s.server = -1
                return                    # waits in a queue (run_queues() goes on)
            if s.server < 0:
                s.server = -1
                self.no_connection(idx, s, b'S')
                return
        if s.http:
            http_txn(self, idx).log_server = s.server
        srv = &be.servers[s.server]
        memcpy(&addr, &srv.addr, srv.addrlen)
        if srv.use_client_port:
            (<sockaddr_in *>&addr).sin_port = htons(self.listeners[s.listener].port)
        fd = socket(srv.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)
        if fd < 0:
            self.no_connection(idx, s, b'R')     # resource shortage on our side
            return
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(int))
        if be.srvtcpka:
            setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(int))
        s.srv.fd = fd
        s.srv.readable = 0        # its first EPOLLIN edge says when the server has spoken
        s.srv.last = self.now
        s.srv_epoch += 1          # a new server socket: its older queued events are stale
        s.t_connect = self.now
        s.state = ST_CONNECTING
        if self.watch(idx, s, &s.srv, SIDE_SRV) != 0:
            self.close_side(&s.srv)
            self.no_connection(idx, s, b'R')
            return
        rc = connect(fd, <sockaddr *>&addr, srv.addrlen)
        if rc == 0:
            self.connected(idx, s)
        elif errno == EINPROGRESS:
            self.arm_timer(idx, s)
        else:
            self.connect_failed(idx, s, 0)

    cdef void no_connection(self, int idx, Session *s, char cause):
        """No server connection could be made: TCP closes, HTTP answers 503."""
        if s.http:
            http_error(self, idx, s, http_txn(self, idx), 503, False, cause, b'C')
            http_run(self, idx, s)
            return
        s.term0 = cause
        s.term1 = b'C'
        self.session_close(idx, s)

    cdef void on_connect_event(self, int idx, Session *s):
        cdef int err = 0
        cdef socklen_t len = sizeof(int)
        if getsockopt(s.srv.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0:
            err = errno
        if err == 0:
            self.connected(idx, s)
        elif err != EINPROGRESS:
            self.connect_failed(idx, s, 0)

    cdef void connected(self, int idx, Session *s):
        observe(self, &self.backends[s.be], s.server, OBSERVE_LAYER4, False)
        self.be_stats[self.backends[s.be].shm_index * STAT_WORDS + STAT_CONNECT] += 1
        self.srv_stats[self.backends[s.be].srv_shm[s.server] * STAT_WORDS + STAT_CONNECT] += 1
        s.state = ST_ESTABLISHED
        s.t_established = self.now
        s.srv.last = self.now
        if s.http:
            http_txn(self, idx).t_connect_ms = self.now - s.t_connect
            http_run(self, idx, s)
            return
        # Data the client sent while we were connecting goes out now; a server that spoke
        # first gave its only edge with the connect one.
        self.tcp_run(idx, s, 3)

    cdef void connect_failed(self, int idx, Session *s, bint timed_out):
        """Retry per HAProxy's rules (retries, option redispatch), or give up."""
        cdef BackendRt *be = &self.backends[s.be]
        cdef bint redispatch = False
        cdef int64_t delay
        observe(self, be, s.server, OBSERVE_LAYER4, True)
        self.be_stats[be.shm_index * STAT_WORDS + STAT_ERR_CONN] += 1
        self.srv_stats[be.srv_shm[s.server] * STAT_WORDS + STAT_ERR_CONN] += 1
        self.close_side(&s.srv)
        if s.retries_left <= 0:
            self.no_connection(idx, s, b's' if timed_out else b'S')
            return
        s.retries_left -= 1
        s.retries_done += 1
        self.be_stats[be.shm_index * STAT_WORDS + STAT_RETRIES] += 1
        self.srv_stats[be.srv_shm[s.server] * STAT_WORDS + STAT_RETRIES] += 1
        if be.redispatch:
            if be.nactive > 1:
                redispatch = True        # a round robin with choice moves on at once
            elif be.redispatch > 0:
                redispatch = s.retries_done % be.redispatch == 0
            else:
                redispatch = s.retries_done % (be.retries + 1 + be.redispatch) == 0
        if redispatch:
            self.be_stats[be.shm_index * STAT_WORDS + STAT_REDISPATCHES] += 1
            self.srv_stats[be.srv_shm[s.server] * STAT_WORDS + STAT_REDISPATCHES] += 1
            server_release(self, s)
            s.avoid_server = s.server    # HAProxy's srvtoavoid: anywhere but there
            s.forced_server = -1         # persistence gives way to the redispatch
            s.has_key = 0                # as does a hash: the map walk picks another
            s.server = -1
            s.redispatched = 1
        if not timed_out and (not redispatch or be.nactive <= 1):
            # Refused right away: wait min(timeout connect, 1s) before trying again (HAProxy's
            # turn-around), so a restarting server is not hammered.
            delay = be.t_connect if be.t_connect and be.t_connect < 1000 else 1000
            s.state = ST_TURNAROUND
            s.wake_at = self.now + delay
            self.arm_timer(idx, s)
            return
        self.start_connect(idx, s)

    # ------------------------------------------------------------------ relay
    cdef void close_side(self, Side *side):
        if side.pipe_r >= 0:
            close(side.pipe_r)
            close(side.pipe_w)
            side.pipe_r = side.pipe_w = -1
            side.piped = 0
        if side.fd >= 0:
            close(side.fd)            # also leaves the epoll set (see watch())
            side.fd = -1

    cdef int open_pipe(self, Side *side):
        """The splice pipe of a bulk direction; -1 when none can be had (then: copy)."""
        cdef int fds[2]
        if pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0:
            side.bulk = 0
            return -1
        fcntl(fds[1], F_SETPIPE_SZ, <int>PIPE_BYTES)     # best effort: fewer, larger moves
        side.pipe_r = fds[0]
        side.pipe_w = fds[1]
        return 0

    cdef bint pump(self, int idx, Session *s, int from_side):
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
                    dst.last = self.now
                    if src.piped:
                        src.piped -= n
                        left = src.piped
                    else:
                        src.head += n
                        left = src.tail - src.head
                        if left == 0:
                            src.head = src.tail = 0
                            self.buf_put(src.buf)
                            src.buf = NULL
                    if left:
                        return False  # the kernel buffer is full: wait for EPOLLOUT
                elif n < 0 and (errno == EAGAIN or errno == EINTR):
                    return False
                else:
                    self.abort(idx, s, from_side == SIDE_CLI)
                    return False
            if src.rd_eof:
                if s.state == ST_ESTABLISHED and not dst.wr_shut:
                    shutdown(dst.fd, SHUT_WR)   # propagate the half-close
                    dst.wr_shut = 1
                    dst.last = self.now
                return False
            if not src.readable:
                return False          # drained: the next EPOLLIN edge brings us back
            if src.bulk and s.state == ST_ESTABLISHED and (src.pipe_r >= 0 or self.open_pipe(src) == 0):
                # Bulk transfer: the bytes go socket -> pipe -> socket without being copied to
                # user space.  A short splice says nothing about the queue (the pipe also
                # fills by pages), so readiness is cleared by EAGAIN only.
                n = splice(src.fd, NULL, src.pipe_w, NULL, PIPE_BYTES,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
                if n > 0:
                    src.piped = n
                    src.bytes_in += n
                    src.last = self.now
                elif n == 0:
                    src.rd_eof = 1
                    src.last = self.now
                elif errno == EAGAIN or errno == EINTR:
                    src.readable = 0
                    return False
                else:
                    self.abort(idx, s, from_side == SIDE_SRV)
                    return False
                continue
            if src.buf == NULL:
                src.buf = self.buf_get()
                if src.buf == NULL:
                    return False
            n = recv(src.fd, src.buf, self.bufsize, 0)
            if n > 0:
                src.head = 0
                src.tail = n
                src.bytes_in += n
                src.last = self.now
                if n == self.bufsize:
                    src.bulk = 1      # more than a buffer at once: splice the rest
                note_short_read(src, n, self.bufsize)
            elif n == 0:
                src.rd_eof = 1
                src.last = self.now
            elif errno == EAGAIN or errno == EINTR:
                src.readable = 0
                self.buf_put(src.buf)     # an idle connection holds no buffer
                src.buf = NULL
                return False
            else:
                self.abort(idx, s, from_side == SIDE_SRV)
                return False
        return True

    cdef void abort(self, int idx, Session *s, bint server_side):
        """A socket error (reset, broken pipe) on one side ends the whole session."""
        s.term0 = b'S' if server_side else b'C'
        s.term1 = b'D' if s.state == ST_ESTABLISHED else b'C'
        self.session_close(idx, s)

    cdef void on_session_event(self, int idx, Session *s, int side, uint32_t events):
        cdef Side *other = &s.srv if side == SIDE_CLI else &s.cli
        cdef int which = 0
        if s.http == 1:
            http_on_event(self, idx, s, side, events)
            return
        if side == SIDE_SRV and s.state == ST_CONNECTING:
            self.on_connect_event(idx, s)
            return
        if s.state == ST_QUEUED:
            if events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR):
                s.term0 = b'C'        # the client left while waiting for a server
                s.term1 = b'Q'
                self.session_close(idx, s)
            return                    # its data waits in the socket until a server is ours
        # Read the side that spoke; write to it only what waits in the other side's buffer
        # (its EPOLLOUT edge).  The events carry the socket's whole state, so testing
        # more would cost a recv() that finds nothing.
        if events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR):
            which |= 1 << side
        if events & EPOLLOUT and (other.head != other.tail or other.piped):
            which |= 1 << (1 - side)
        if which:
            self.tcp_run(idx, s, which)

    cdef void tcp_run(self, int idx, Session *s, int which):
        """Relay in the directions of ``which`` (bit 0: from the client, bit 1: from the
        server) until each would block."""
        cdef bint more = False
        if which & 1:
            more = self.pump(idx, s, SIDE_CLI)
            if s.state == ST_FREE:
                return
        if which & 2:
            more = self.pump(idx, s, SIDE_SRV) or more
            if s.state == ST_FREE:
                return
        if s.state == ST_ESTABLISHED and s.cli.rd_eof and s.srv.rd_eof \
                and s.cli.wr_shut and s.srv.wr_shut:
            self.session_close(idx, s)        # both directions finished cleanly
            return
        if more:
            self.runq.append((idx, s.gen))
        self.arm_timer(idx, s)

    cdef void session_close(self, int idx, Session *s):
        cdef FrontendRt *fe = &self.frontends[s.fe]
        cdef char scratch[4096]
        cdef int i
        if s.cli.fd >= 0 and not s.cli.rd_eof:
            # Unread input turns close() into a reset; read it away so the client sees a FIN.
            for i in range(4):
                if recv(s.cli.fd, scratch, sizeof(scratch), MSG_DONTWAIT) <= 0:
                    break
        http_unlend(self, s)
        self.close_side(&s.cli)
        self.close_side(&s.srv)
        self.buf_put(s.cli.buf)
        self.buf_put(s.srv.buf)
        s.cli.buf = s.srv.buf = NULL
        # Backend and server counts drop before the log line, frontend ones after, so the
        # %ac/%fc/%bc/%sc figures read as HAProxy's do.
        queue_leave(self, s)
        if s.http:
            http_untrack(self, s, http_txn(self, idx))
            http_account(self, s, http_txn(self, idx))
        else:
            self.tcp_account(s)
        if not s.http and s.be >= 0:
            self.count(self.be_off + self.backends[s.be].shm_index, -1)
            server_release(self, s)
        if s.http and fe.log_mode == LOG_HTTPLOG:
            self.http_log(s, http_txn(self, idx))    # a transaction cut short
        elif fe.log_mode == LOG_TCPLOG and self.log_callback is not None:
            if not (fe.dontlognull and s.cli.bytes_in == 0):
                self.log_end(s)
        self.conn_release(fe)
        self.timer_remove(s)
        self.session_free(idx, s)

    cdef void shutdown_sessions(self):
        """"shutdown sessions server b/s" (stats socket): close this worker's sessions on
        the servers whose shutdown epoch is newer than the last one acted on."""
        cdef uint64_t seen = self.shutdown_seen
        cdef int idx
        cdef Session *s
        self.shutdown_seen = fl_atomic_load(self.global_words + G_SHUTDOWN)
        for idx in range(self.nchunks * SESSIONS_PER_CHUNK):
            s = self.session_at(idx)
            if s.state == ST_FREE or s.be < 0 or s.server < 0:
                continue
            if fl_atomic_load(self.srv_words + self.backends[s.be].srv_shm[s.server] * SRV_WORDS
                              + SRV_SHUTDOWN) > seen:
                s.term0, s.term1 = b'K', b'D'
                if s.http == 1:
                    http_txn(self, idx).term0, http_txn(self, idx).term1 = b'K', b'D'
                self.session_close(idx, s)

    cdef void tcp_account(self, Session *s):
        """Statistics of an ending TCP session."""
        cdef uint64_t *row = self.fe_stats + s.fe * STAT_WORDS
        cdef int64_t tq = 0, tc = -1
        row[STAT_BYTES_IN] += s.cli.bytes_in
        row[STAT_BYTES_OUT] += s.srv.bytes_in
        if s.be < 0:
            return
        if s.t_queued >= 0:
            tq = s.t_dequeued - s.t_queued
        if s.t_established >= 0:
            tc = s.t_established - s.t_connect
        tcp_account_row(self.be_stats + self.backends[s.be].shm_index * STAT_WORDS, s, tq, tc,
                        self.now - s.t_accept)
        if s.server >= 0:
            tcp_account_row(self.srv_stats + self.backends[s.be].srv_shm[s.server] * STAT_WORDS,
                            s, tq, tc, self.now - s.t_accept)

    # ------------------------------------------------------------------ logging (Python edge)
    cdef void log_connect(self, Session *s):
        try:
            self.connect_callback(s.fe, sockaddr_to_tuple(&s.addr), self.listeners[s.listener].port,
                                  self.frontends[s.fe].http)
        except Exception:
            pass

    cdef void log_end(self, Session *s):
        cdef int64_t tw = -1, tc = -1
        cdef int64_t bc = 0, sc = 0
        if s.server >= 0 or s.redispatched:
            tw = s.t_dequeued - s.t_queued if s.t_queued >= 0 else 0
        if s.t_established >= 0:
            tc = s.t_established - s.t_connect
        if s.be >= 0:
            bc = self.total(self.be_off + self.backends[s.be].shm_index)
            if s.server >= 0:
                sc = self.total(self.srv_off + self.backends[s.be].servers[s.server].shm_index)
        try:
            self.log_callback(
                s.fe, s.be, s.server, sockaddr_to_tuple(&s.addr), s.t_accept_real,
                tw, tc, self.now - s.t_accept, s.srv.bytes_in, chr(s.term0) + chr(s.term1),
                fl_atomic_load(self.totals), fl_atomic_load(self.totals + COUNT_FRONTENDS + self.frontends[s.fe].shm_index),
                bc, sc, s.retries_done, s.redispatched)
        except Exception:
            pass

    # ------------------------------------------------------------------ the loop
    def run(self):
        """Serve until stopped; returns when a hard stop is asked or a soft stop has drained."""
        cdef epoll_event events[MAX_EVENTS]
        cdef int n, i, kind, side
        cdef uint32_t idx, gen
        cdef uint64_t data
        cdef Session *s
        cdef char drain[64]
        while True:
            if self.stopping == 2:
                break
            if self.stopping == 1 and (self.active == 0 or
                                       (self.stop_deadline and self.now >= self.stop_deadline)):
                break
            n = epoll_wait(self.epfd, events, MAX_EVENTS, self.next_timeout_ms())
            self.now = monotonic_ms()
            if n < 0:
                if errno == EINTR:
                    PyErr_CheckSignals()
                    continue
                raise OSError(errno, "epoll_wait failed")
            for i in range(n):
                data = events[i].data.u64
                kind = (data >> 30) & 3
                if kind == KIND_SESSION:
                    idx = (data & 0x3FFFFFFF) >> 1
                    gen = <uint32_t>(data >> 32)
                    side = data & 1
                    s = self.session_at(idx)
                    if side_tag(s, side) != gen or s.state == ST_FREE:
                        continue          # closed earlier in this batch
                    note_readable(&s.cli if side == SIDE_CLI else &s.srv, events[i].events)
                    try:
                        self.on_session_event(idx, s, side, events[i].events)
                    except Exception as exc:
                        self.session_failed(idx, s, exc)
                elif kind == KIND_IDLE:
                    idle_event(self, (data & 0x3FFFFFFF) >> 1, <int>(data >> 32),
                               events[i].events)
                elif kind == KIND_LISTENER:
                    idx = (data & 0x3FFFFFFF) >> 1
                    if not self.listeners[idx].closed and not self.stopping:
                        self.on_accept(idx)
                else:
                    while read(self.wakeup_fd, drain, sizeof(drain)) > 0:
                        pass
                    PyErr_CheckSignals()
            self.run_timers()
            if fl_atomic_load(self.global_words + G_SHUTDOWN) != self.shutdown_seen:
                self.shutdown_sessions()
            if self.nqueued and self.now >= self.next_queue_poll:
                run_queues(self)
            if self.runq:
                self.run_queued()
            if self.npaused:
                self.resume_listeners()
        self.close_all()

    cdef void internal_error(self, object exc, str where):
        """Count an unforeseen error; its first occurrence of each kind is logged, with
        its traceback, so that a client repeating it cannot flood the log."""
        import traceback
        import sys
        self.internal_errors += 1
        kind = (where, type(exc).__name__, str(exc)[:80])
        if kind in self.errors_seen or len(self.errors_seen) > 64:
            return
        self.errors_seen.add(kind)
        sys.stderr.write(f"[ALERT]    ({_os.getpid()}) : worker: {where}: internal error "
                         f"{exc!r} (later ones of this kind are counted, not logged)\n"
                         f"{traceback.format_exc()}")

    cdef void session_failed(self, int idx, Session *s, object exc):
        """A bug or an unforeseen input broke one session: close it, keep the worker."""
        self.internal_error(exc, "session aborted")
        if s.state != ST_FREE:
            s.term0, s.term1 = b'I', b'D'      # HAProxy's "internal error" termination
            self.session_close(idx, s)

    cdef void run_queued(self):
        cdef list queued = self.runq
        cdef Session *s
        self.runq = []
        for idx, gen in queued:
            s = self.session_at(idx)
            if s.gen != gen or s.state == ST_FREE:
                continue
            try:
                if s.http == 1:
                    http_run(self, idx, s)
                elif s.state == ST_ESTABLISHED:
                    self.tcp_run(idx, s, 3)
            except Exception as exc:
                self.session_failed(idx, s, exc)

    cdef void close_all(self):
        cdef int c, i
        cdef Session *s
        for c in range(self.nchunks):
            for i in range(SESSIONS_PER_CHUNK):
                s = &self.chunks[c][i]
                if s.state != ST_FREE:
                    s.term0 = b'K'
                    s.term1 = b'D' if s.state == ST_ESTABLISHED else b'C'
                    self.session_close(c * SESSIONS_PER_CHUNK + i, s)


include "_assign.pxi"
include "_http.pxi"
