"""The worker's hot path: an epoll loop over non-blocking sockets, one per worker process.

One extension built from the files of this folder (uvloop's layout): core.pxd declares the
data and includes each component's interface (<component>.pxd); this file includes their
implementations (<component>.pxi) and defines the Worker, the loop's Python face: set-up
from the compiled specs, run(), soft and hard stop.  Everything per connection lives in C
structs; Python is called only at the edges: set-up, signals, HTTP rules that are Python
callables, and one log call per logged session or transaction.

Data path: listeners.pxi (accept) -> assign.pxi (server) -> connect.pxi -> relay.pxi (TCP)
or http_*.pxi (HTTP analysers), all byte I/O through transport.pxi; timers.pxi, accounting.pxi
and logging.pxi serve them all.
"""

from cpython.exc cimport PyErr_CheckSignals

from fastlb.includes.system cimport *
from fastlb.lb.strategy cimport *
from fastlb.lb.roundrobin cimport rr_pick
from fastlb.lb.hashing cimport sdbm, full_hash, address_hash, map_lookup, ring_lookup, ring_point
from fastlb.lb.leastconn cimport leastconn_pick
from fastlb.lb.first cimport first_pick
from fastlb.http.framing cimport *
from fastlb.shm.words cimport *

import os as _os
import re
import socket as _socket

from fastlb.http.errors import MESSAGES as ERROR_MESSAGES, builtin_page, reason_phrase
from fastlb.http.cacheability import blocks_cacheable_cookie
from fastlb.sample.stream import MOVED_DST, MOVED_PRIORITY, MOVED_SOCKET, MOVED_SRC, MOVED_TIMEOUT, Stream, \
    split_target, var_store
from fastlb.http.fields import HeaderValueError
from fastlb.http.rules import LocalAnswer, LocalStatus, early_hints_response

cdef extern from *:
    const char *FASTLB_CYTHON_VERSION

BUILT_WITH_CYTHON = FASTLB_CYTHON_VERSION.decode()


cdef inline int64_t monotonic_ms() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <int64_t>ts.tv_sec * 1000 + ts.tv_nsec // 1000000

cdef inline int64_t realtime_ms() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_REALTIME, &ts)
    return <int64_t>ts.tv_sec * 1000 + ts.tv_nsec // 1000000

cdef inline uint32_t side_tag(Session *s, int side) noexcept nogil:
    # gen and epoch only grow, so a replaced socket never shares a tag with its successor
    return s.gen + (s.srv_epoch if side == SIDE_SRV else 0)

cdef inline uint64_t pack_data(uint32_t gen, int kind, uint32_t index, int side) noexcept nogil:
    return (<uint64_t>gen << 32) | (<uint64_t>kind << 30) | (<uint64_t>index << 1) | <uint64_t>side

def set_no_new_privileges():
    """No exec() from this process may gain privileges (setuid programs run as the caller)."""
    if prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(errno, "prctl(PR_SET_NO_NEW_PRIVS) failed")


def set_parent_death_signal(int signum):
    """Ask the kernel to send ``signum`` to this process when its parent dies."""
    if prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        raise OSError(errno, "prctl(PR_SET_PDEATHSIG) failed")

cdef void fill_source(SourceRt *out, object source, object usesrc, object iface):
    """A source line's spec (runtime.tables) into the loop's SourceRt."""
    cdef bytes name
    memset(out, 0, sizeof(SourceRt))
    if source is None:
        return
    out.len = fill_sockaddr(&out.addr, source[0], source[1], source[2])
    if iface:
        name = iface.encode("latin-1")[:15]
        memcpy(out.iface, <char *>name, len(name))
    if not usesrc:
        return
    out.usesrc = {"addr": USESRC_ADDR, "client": USESRC_CLIENT, "clientip": USESRC_CLIENTIP,
                  "hdr": USESRC_HDR}[usesrc[0]]
    if usesrc[0] == "addr":
        out.tproxy_len = fill_sockaddr(&out.tproxy, usesrc[1], usesrc[2], usesrc[3])
    elif usesrc[0] == "hdr":
        out.hdr_occ = usesrc[2]


cdef socklen_t fill_sockaddr(sockaddr_storage *addr, object family, object ip, int port):
    """Convert a textual address into the sockaddr used by connect() or bind(); its length."""
    cdef sockaddr_in *sin
    cdef sockaddr_in6 *sin6
    cdef bytes packed
    cdef int i
    cdef sockaddr_un *sun
    cdef bytes path
    memset(addr, 0, sizeof(sockaddr_storage))
    if family == _socket.AF_UNIX:          # ip: the path (abns@: a leading NUL)
        sun = <sockaddr_un *>addr
        sun.sun_family = AF_UNIX
        path = ip.encode()
        memcpy(sun.sun_path, <char *>path, len(path))
        return 2 + len(path) + (0 if path.startswith(b"\0") else 1)
    if family == _socket.AF_INET6:
        sin6 = <sockaddr_in6 *>addr
        sin6.sin6_family = AF_INET6
        sin6.sin6_port = htons(port)
        packed = _socket.inet_pton(_socket.AF_INET6, ip)
        for i in range(16):
            sin6.sin6_addr.s6_addr[i] = packed[i]
        return sizeof(sockaddr_in6)
    sin = <sockaddr_in *>addr
    sin.sin_family = AF_INET
    sin.sin_port = htons(port)
    packed = _socket.inet_pton(_socket.AF_INET, ip)
    memcpy(&sin.sin_addr, <char *>packed, 4)
    return sizeof(sockaddr_in)

cdef inline void mark_unix_client(sockaddr_storage *addr, int luid) noexcept nogil:
    """A UNIX client has no address of its own: HAProxy logs it as unix:<listener id>,
    which its s.addr keeps in place of the (unnamed) peer path."""
    memcpy((<sockaddr_un *>addr).sun_path, &luid, sizeof(int))

cdef object sockaddr_to_tuple(sockaddr_storage *addr):
    cdef sockaddr_in *sin
    cdef sockaddr_in6 *sin6
    cdef int luid
    if addr.ss_family == AF_UNIX:
        memcpy(&luid, (<sockaddr_un *>addr).sun_path, sizeof(int))
        return "unix", luid
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


include "buffers.pxi"
include "transport.pxi"
include "sessions.pxi"
include "timers.pxi"
include "listeners.pxi"
include "connect.pxi"
include "relay.pxi"
include "assign.pxi"
include "accounting.pxi"
include "logging.pxi"
include "http_txn.pxi"
include "http_message.pxi"
include "http_request.pxi"
include "http_body.pxi"
include "http_response.pxi"
include "http_flow.pxi"
include "http_pool.pxi"
include "probes.pxi"
include "proxy_header.pxi"
include "inspect.pxi"


cdef class FrontendHooks:
    """A frontend's Python hooks (declared in core.pxd)."""


cdef class BackendHooks:
    """A backend's Python hooks (declared in core.pxd)."""


cdef class Worker:
    """One worker process's event loop.  Build it with add_* calls, then run()."""

    def __cinit__(self):
        self.home_netns = -1
        self.txns = []
        self.fe_hooks = []
        self.be_hooks = []
        self.runq = []
        self.bufwait = []
        self.errors_seen = set()
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
        self.pool.size = bufsize
        self.head_limit = bufsize
        self.max_accept = ACCEPT_BATCH
        self.max_events = POLL_EVENTS
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
        self.lst_stats = self.srv_stats + <uint32_t>shm.nservers * STAT_WORDS
        self.my_heads = self.heads + worker_id * <uint32_t>shm.head_words
        self.pool.total = self.totals + <uint32_t>shm.buf_off
        self.pool.share = self.slot + <uint32_t>shm.buf_off
        self.pool.used = self.slot + <uint32_t>shm.pool_off
        self.pool.failed = self.pool.used + 1
        self.fe_off = shm.fe_off
        self.lst_off = shm.lst_off
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
        self.idle_purge_ms = <int64_t *>calloc(max(self.nservers_total, 1), sizeof(int64_t))
        self.idle_next_purge = <int64_t *>calloc(max(self.nservers_total, 1), sizeof(int64_t))
        self.lend_head = <int *>malloc(max(self.nservers_total, 1) * sizeof(int))
        if self.lend_head == NULL:
            raise MemoryError()
        for i in range(max(self.nservers_total, 1)):
            self.lend_head[i] = -1
        if self.idle_fds == NULL or self.idle_len == NULL or self.idle_purge_ms == NULL or \
                self.idle_next_purge == NULL:
            raise MemoryError()
        for i in range(self.nservers_total):
            self.idle_purge_ms[i] = DEFAULT_POOL_PURGE_MS
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
        pool_free(&self.pool)
        free(self.heap)
        for i in range(self.nbackends):
            free(self.backends[i].servers)
            free_lookup(&self.backends[i])
            free(self.backends[i].srv_shm)
            free(self.backends[i].srv_maxconn)
            free(self.backends[i].srv_minconn)
            free(self.backends[i].srv_limit)
            free(self.backends[i].srv_maxqueue)
            free(self.backends[i].srv_eweight)
            free(self.backends[i].srv_cumw)
        free(self.q_head)
        free(self.q_tail)
        if self.idle_len != NULL:
            for i in range(self.nservers_total):
                for j in range(self.idle_len[i]):
                    close(self.idle_fds[i * IDLE_PER_SERVER + j])
        free(self.idle_fds)
        free(self.idle_len)
        free(self.idle_purge_ms)
        free(self.idle_next_purge)
        free(self.lend_head)
        free(self.backends)
        free(self.frontends)
        free(self.listeners)

    # ------------------------------------------------------------------ set-up (Python level)
    def add_backend(self, spec, lookup_builder):
        """spec: a fastlb.runtime.tables.BackendSpec; lookup_builder() -> Lookup (the usable
        servers as arrays, rebuilt from shared state when the table version moves, with
        the servers' maxconn, which the stats socket may change)."""
        cdef BackendRt *be = &self.backends[self.nbackends]
        cdef int i
        be.nservers = len(spec.servers)
        be.servers = <ServerRt *>calloc(max(be.nservers, 1), sizeof(ServerRt))
        be.srv_shm = <uint32_t *>calloc(max(be.nservers, 1), sizeof(uint32_t))
        be.srv_maxconn = <int64_t *>calloc(max(be.nservers, 1), sizeof(int64_t))
        be.srv_maxqueue = <int64_t *>calloc(max(be.nservers, 1), sizeof(int64_t))
        be.srv_minconn = <int64_t *>calloc(max(be.nservers, 1), sizeof(int64_t))
        be.srv_limit = <int64_t *>calloc(max(be.nservers, 1), sizeof(int64_t))
        be.fullconn = spec.fullconn
        if be.srv_minconn == NULL or be.srv_limit == NULL:
            raise MemoryError()
        be.srv_eweight = <int *>calloc(max(be.nservers, 1), sizeof(int))
        be.srv_cumw = <int *>calloc(max(be.nservers, 1), sizeof(int))
        if be.servers == NULL or be.srv_shm == NULL or be.srv_maxconn == NULL or \
                be.srv_maxqueue == NULL or be.srv_eweight == NULL or be.srv_cumw == NULL:
            raise MemoryError()
        for i, server in enumerate(spec.servers):
            be.servers[i].addrlen = fill_sockaddr(&be.servers[i].addr, server.family,
                                                  server.ip, server.port)
            be.servers[i].family = server.family
            be.servers[i].use_client_port = server.port == 0 and server.family != _socket.AF_UNIX
            be.servers[i].client_dst = server.client_dst
            be.servers[i].send_proxy = server.send_proxy
            be.servers[i].pp_opts = server.pp_opts
            be.servers[i].tfo = server.tfo
            be.servers[i].tcp_ut = server.tcp_ut
            be.servers[i].index = i
            be.servers[i].shm_index = server.shm_index
            be.servers[i].netns_fd = -1
            be.servers[i].sockpair_fd = -1 if server.sockpair is None else server.sockpair
            if server.namespace is not None:
                be.servers[i].netns_fd = _os.open(server.namespace, _os.O_RDONLY | _os.O_CLOEXEC)
                if self.home_netns < 0:
                    self.home_netns = _os.open("/proc/self/ns/net", _os.O_RDONLY | _os.O_CLOEXEC)
            fill_source(&be.servers[i].source, server.source, server.usesrc,
                        server.source_interface)
            be.srv_shm[i] = server.shm_index
            be.srv_maxqueue[i] = server.maxqueue
            be.srv_minconn[i] = server.minconn
            if server.shm_index < <uint32_t>self.nservers_total:
                self.idle_purge_ms[server.shm_index] = server.pool_purge_ms
        algorithm = spec.algorithm
        be.pick = algorithm.pick
        be.key = algorithm.key
        be.shared_counts = algorithm.shared_counts
        be.observed = spec.observed
        be.consistent = spec.consistent
        be.avalanche = spec.avalanche
        be.uri_len = spec.uri_len
        be.uri_depth = spec.uri_depth
        be.uri_whole = spec.uri_whole
        be.hdr_domain_only = spec.hdr_domain_only
        be.uri_path_only = spec.uri_path_only
        be.draws = spec.draws
        be.hash_balance_factor = spec.hash_balance_factor
        if spec.hash_balance_factor:
            be.shared_counts = 1        # the bound reads every server's current sessions
        be.reuse_never = spec.reuse_never
        be.buffer_request = spec.buffer_request
        be.buffer_response = spec.buffer_response
        be.t_connect = spec.t_connect
        be.t_server = spec.t_server
        be.t_server_fin = spec.t_server_fin
        be.t_tunnel = spec.t_tunnel
        be.t_queue = spec.t_queue
        be.retries = spec.retries
        be.redispatch = spec.redispatch
        be.srvtcpka = spec.srvtcpka
        for i in range(3):
            be.srvtcpka_probes[i] = spec.srvtcpka_probes[i]
        be.nolinger = spec.nolinger
        be.indep_streams = spec.indep_streams
        be.smart_connect = spec.smart_connect
        be.persist = spec.persist
        be.checkcache = spec.checkcache
        be.pretend_keepalive = spec.pretend_keepalive
        be.retry_on = spec.retry_on if spec.http else RE_CONN_FAILED    # HTTP only, as HAProxy
        fill_source(&be.source, spec.source, spec.usesrc, spec.source_interface)
        be.prefer_last = spec.prefer_last
        be.transparent = spec.transparent
        be.case_adjust = spec.case_adjust
        be.accept_invalid = spec.accept_invalid
        be.max_ka_queue = spec.max_ka_queue
        be.abortonclose = spec.abortonclose
        be.http = spec.http
        be.http_close = spec.http_close
        be.res_rules = spec.res_rules is not None
        be.res_delay = spec.res_delay
        be.shm_index = spec.index
        hooks = BackendHooks()
        hooks.error_pages = spec.error_pages
        hooks.lookup_builder = lookup_builder
        hooks.cookie = spec.cookie
        hooks.dyncookie_seen = 0
        hooks.static_cookies = tuple(None if server.model is None else server.model.cookie
                                     for server in spec.servers)
        hooks.key_name = spec.key_name
        hooks.response_editor = spec.response_editor
        hooks.request_rules = spec.request_rules
        hooks.server_rules = spec.server_rules
        hooks.persist_rules = spec.persist_rules
        hooks.hash_key = spec.hash_key
        hooks.rdp_persist = spec.rdp_persist
        hooks.redirects = spec.redirects
        hooks.restrict_names = spec.restrict_names
        hooks.after_response = spec.after_response
        hooks.res_rules = spec.res_rules
        hooks.name_header = spec.name_header
        hooks.server_names = spec.server_names
        hooks.usesrc_hdr = {i: server.usesrc[1].encode("latin-1")
                            for i, server in enumerate(spec.servers)
                            if server.usesrc and server.usesrc[0] == "hdr"}
        if spec.usesrc and spec.usesrc[0] == "hdr":
            hooks.usesrc_hdr.update({-1: spec.usesrc[1].encode("latin-1")})
        self.be_hooks.append(hooks)
        self.nbackends += 1
        install_lookup(self, self.nbackends - 1)

    def add_frontend(self, spec):
        """spec: a fastlb.runtime.tables.FrontendSpec."""
        cdef FrontendRt *fe = &self.frontends[self.nfrontends]
        fe.backend = spec.backend
        fe.http = spec.http
        fe.http_close = spec.http_close
        fe.t_http_request = spec.t_http_request
        fe.t_http_keep_alive = spec.t_http_keep_alive
        fe.t_client = spec.t_client
        fe.t_client_fin = spec.t_client_fin
        fe.clitcpka = spec.clitcpka
        for i in range(3):
            fe.clitcpka_probes[i] = spec.clitcpka_probes[i]
        fe.nolinger = spec.nolinger
        fe.indep_streams = spec.indep_streams
        fe.log_mode = spec.log_mode
        fe.dontlognull = spec.dontlognull
        fe.buffer_request = spec.buffer_request
        fe.buffer_response = spec.buffer_response
        fe.ignore_probes = spec.ignore_probes
        fe.log_addrs = spec.log_addrs
        fe.logasap = spec.logasap
        fe.case_adjust = spec.case_adjust
        fe.contstats = spec.contstats
        fe.accept_invalid = spec.accept_invalid
        fe.keep_idle_on_stop = spec.keep_idle_on_stop
        fe.sess_rate_limit = spec.sess_rate_limit
        fe.shm_index = spec.index
        hooks = FrontendHooks()
        hooks.error_pages = spec.error_pages
        hooks.request_editor = spec.request_editor
        hooks.router = spec.router
        hooks.restrict_names = spec.restrict_names
        hooks.response_editor = spec.response_editor
        hooks.captures_req, hooks.captures_rsp = spec.captures
        hooks.capture_cookie = spec.capture_cookie
        hooks.streams = spec.streams
        hooks.tcp_rules = spec.tcp_rules
        fe.tcp_rules = spec.tcp_rules is not None
        hooks.after_response = spec.after_response
        self.fe_hooks.append(hooks)
        self.nfrontends += 1

    def set_rate_limits(self, int64_t conn_rate, int64_t sess_rate):
        """maxconnrate and maxsessrate (per second, all workers together; 0: none)."""
        self.conn_rate_limit = conn_rate
        self.sess_rate_limit = sess_rate

    def add_listener(self, int fd, int frontend, int port, bint accept_proxy=False, int luid=1,
                     int64_t maxconn=0, uint32_t slot=0, bint no_upgrade=False,
                     bint sockpair=False, bint socket_stats=False, int64_t cip_magic=-1):
        """slot: the listener's number among all of the configuration's (its shared count);
        no_upgrade: bind proto none; cip_magic: bind accept-netscaler-cip's magic number
        (-1: none); sockpair: a sockpair@ listener (fd is the UNIX socket
        the connections' descriptors come over); fd -1: a listener this worker does not
        accept on (bind ... thread), kept closed so that the listeners keep their numbers."""
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
        l.accept_proxy = accept_proxy
        l.accept_cip = cip_magic >= 0
        l.cip_magic = <uint32_t>cip_magic if cip_magic >= 0 else 0
        l.no_upgrade = no_upgrade
        l.sockpair = sockpair
        l.stat_row = slot if socket_stats else -1
        l.luid = luid
        l.maxconn = maxconn
        l.count_off = self.lst_off + slot
        if fd < 0:
            l.closed = 1
            self.nlisteners += 1
            return
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

    def set_cache_alert(self, callback):
        """callback(backend index, server index) when option checkcache blocks a response:
        HAProxy's alert, on stderr and to the backend's log targets."""
        self.cache_alert_callback = callback

    def set_handshake_log(self, callback):
        """callback(listener, client, accept ms, message, record) when a connection is closed
        before it became a session (a bad or missing PROXY header): HAProxy's embryonic log
        line (record: a LogRecord, for an error-log-format)."""
        self.handshake_log_callback = callback

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
        close_idle_http(self)

    def set_splice_limits(self, int pipesize, int maxpipes):
        """tune.pipesize (0: fastlb's default) and this process's share of maxpipes
        (0: never splice, as nosplice; -1: no limit)."""
        global pipe_bytes, pipes_left
        if pipesize > 0:
            pipe_bytes = pipesize
        pipes_left = maxpipes

    def set_buffer_limit(self, int64_t limit):
        """tune.buffers.limit: the I/O buffers all workers may hold together (0: no limit)."""
        self.pool.limit = limit

    def hard_stop(self):
        self.stopping = 2

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
            n = epoll_wait(self.epfd, events, self.max_events,
                           0 if self.busy_polling else next_timeout_ms(self))
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
                    s = session_at(self, idx)
                    if side_tag(s, side) != gen or s.state == ST_FREE:
                        continue          # closed earlier in this batch
                    note_readable(&s.cli if side == SIDE_CLI else &s.srv, events[i].events)
                    try:
                        session_event(self, idx, s, side, events[i].events)
                    except Exception as exc:
                        session_failed(self, idx, s, exc)
                elif kind == KIND_IDLE:
                    idle_event(self, (data & 0x3FFFFFFF) >> 1, <int>(data >> 32),
                               events[i].events)
                elif kind == KIND_LISTENER:
                    idx = (data & 0x3FFFFFFF) >> 1
                    if not self.listeners[idx].closed and not self.stopping:
                        listener_accept(self, idx)
                else:
                    while read(self.wakeup_fd, drain, sizeof(drain)) > 0:
                        pass
                    PyErr_CheckSignals()
            run_timers(self)
            if fl_atomic_load(self.global_words + G_SHUTDOWN) != self.shutdown_seen:
                shutdown_sessions(self)
            if self.nqueued and self.now >= self.next_queue_poll:
                run_queues(self)
            if self.runq:
                run_requeued(self)
            if self.bufwait and pool_available(&self.pool):
                wake_buffer_waiters(self)
            if self.npaused:
                resume_listeners(self)
            if self.now >= self.next_idle_sweep:
                purge_idle(self)
        close_all(self)
