# The worker loop's C-level interface: its data (sessions, sides, runtime tables, the
# Worker), then each component's functions, declared in the .pxd named after it.

cimport cython
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t
from fastlb.includes.system cimport sockaddr_storage, socklen_t, epoll_event
from fastlb.http.framing cimport ChunkParser

include "defs.pxd"
include "buffers.pxd"
include "transport.pxd"


cdef struct Session:
    uint32_t gen            # bumped at every reuse; stale epoll/timer entries carry the old value
    uint64_t acc_in         # option contstats: the bytes of each way already in the
    uint64_t acc_out        # statistics (TCP: the sides' bytes_in; HTTP: the txn's)
    uint8_t state
    uint8_t http            # 1: mode http, the HttpTxn of this slot drives the session;
                            # 2: an HTTP session turned tunnel (101), relayed as TCP
    uint8_t redispatched
    uint8_t buf_waiting     # on the worker's bufwait list
    uint32_t srv_epoch      # bumped per server socket (see side_tag in core.pyx)
    char term0              # HAProxy termination cause ('-' while running)
    char term1              # HAProxy session state at termination
    Side cli
    Side srv
    int fe                  # frontend index
    int be                  # backend index, -1 if none
    int64_t t_server_rule   # http-request set-timeout server|tunnel for this request
    int64_t t_tunnel_rule   # (0: the backend's)
    int server              # server index in the backend, -1 if none
    int listener
    int retries_left
    int retries_done
    int held_server         # server whose current-session count this session holds (-1: none)
    uint8_t held_shared     # that count is also in the shared totals
    int forced_server       # persistence (cookie) asks for this server (-1: none)
    uint8_t persist_rule    # PERSIST_FORCE / PERSIST_IGNORE of this request (0: neither)
    int avoid_server        # a redispatch after this server failed: pick it last (-1: none)
    int lend_prev           # HTTP: this idle session's server connection may be taken by
    int lend_next           # another session (http-reuse safe); list per server, -1 ends
    uint8_t lent
    uint8_t srv_private     # the server asked for NTLM/Negotiate: its connection is this
                            # session's alone (HAProxy's private connections)
    uint32_t key_hash       # hash of the balancing key (source, uri, url_param, hdr)
    uint8_t has_key         # 0: the key was missing: hashed algorithms fall back to the map walk
    int q_target            # queue this session waits in (-1: none), see assign.pxi
    int q_prev
    int q_next
    uint64_t q_ticket        # its place in the queue: queue_key() of class, date and ticket
    int prio_class          # set-priority-class (-2047..2047): lower is served first
    int prio_offset         # set-priority-offset (ms, -524287..524287): added to the date
    int64_t t_queued        # -1: never queued
    int64_t t_dequeued
    int64_t t_accept        # ms, monotonic
    int64_t t_accept_real   # ms since the epoch, for the log date
    int64_t t_connect       # start of the current connect attempt
    int64_t t_established   # -1 until connected
    int heap_pos            # index of this session's entry in the timer heap, -1: none
    uint8_t timer           # TimerKind of the deadline that entry stands for
    int64_t wake_at         # turn-around end
    int free_next
    uint8_t dst_known       # s.dst holds: 1 the socket's local address, 2 a PROXY header's
    uint8_t unlogged        # closed before it was a session (PROXY header failure, reject)
    uint8_t handshake       # headers still awaited before the session starts (HS_* bits)
    uint8_t res_hold        # tcp-response content rules hold the server's bytes (inspect.pxi)
    int64_t res_until       # ... until then (0: not started)
    uint8_t logged          # option logasap: its line went out when it connected
    int pp_authority_len
    char *pp_authority      # authority TLV of a received PROXY v2 header (malloc), or NULL
    socklen_t addrlen
    sockaddr_storage addr   # client address (a PROXY header's source when one came)
    sockaddr_storage dst    # the address the client reached (see dst_known)
    uint8_t bsrc_known      # s.bsrc holds the server connection's local address (%bi/%bp)
    sockaddr_storage bsrc


# A "source" line (a backend's, or a server's own): what server sockets bind to.
cdef enum:
    USESRC_NONE = 0
    USESRC_ADDR = 1         # usesrc <addr>[:<port>]
    USESRC_CLIENT = 2       # usesrc client: the client's address and port
    USESRC_CLIENTIP = 3     # usesrc clientip: its address, any port
    USESRC_HDR = 4          # usesrc hdr_ip(<name>[,<occ>]): the address in a request header

cdef struct SourceRt:
    sockaddr_storage addr   # <addr>[:<port>] (len 0: no source line); health checks use it
    socklen_t len
    int usesrc              # USESRC_*: the foreign address presented instead (IP_TRANSPARENT)
    sockaddr_storage tproxy # USESRC_ADDR's address
    socklen_t tproxy_len
    int hdr_occ             # USESRC_HDR: which value (1 first, -1 last; 0: none)
    char iface[16]          # interface <name> (SO_BINDTODEVICE), "" for none


cdef struct ServerRt:
    sockaddr_storage addr
    socklen_t addrlen
    int family
    int use_client_port     # server written without a port: use the port the client reached
    int client_dst          # option transparent's entry: connect where the client connected
    int send_proxy          # SEND_PROXY_* (proxy_header.pxd): a header before the client's bytes
    int pp_opts             # PP2_OPT_* for a v2 header
    int tfo                 # server ... tfo: a first attempt with bytes to send carries them on the SYN
    int tcp_ut              # server ... tcp-ut: TCP_USER_TIMEOUT (ms) of its connections, 0: none
    int index               # position in the backend (for shared counters)
    uint32_t shm_index
    SourceRt source         # its own "source" (len 0: the backend's, if any)
    int netns_fd            # "namespace": its sockets are made there (-1: fastlb's own)
    int sockpair_fd         # sockpair@<fd>: connections are socketpair ends passed there (-1: no)


cdef struct BackendRt:
    ServerRt *servers
    int nservers
    int pick                # fastlb/lb/strategy.pxd: PICK_*
    int key                 # KEY_* (KEY_NONE: not a hashed algorithm)
    int shared_counts       # the pick reads servers' current sessions from the shared totals
    int consistent          # hash-type consistent (else map-based)
    int avalanche
    int uri_len             # balance uri options
    int uri_depth
    int uri_whole
    int hdr_domain_only          # balance hdr(...) use_domain_only
    int uri_path_only
    int draws               # balance random(<draws>)
    int hash_balance_factor # bounded loads (percent of the mean, > 100), 0: off
    int *srv_eweight        # per server: its weight in the group x 16 (0: not in it)
    int *srv_cumw           # per server: the group weights declared before it
    int64_t tot_eweight
    uint64_t version        # shared table version the lookups below were built from
    int *seq                # round robin order, or the weight map (static-rr, hashes)
    int seq_prefix          # seq[:prefix] walked once, seq[prefix:len] forever after
    int seq_len
    uint32_t *ring_keys     # consistent hashing / random: points sorted by key
    int *ring_srv
    int ring_len
    int *eligible           # leastconn / first: usable servers in id order
    int *eligible_w
    int neligible
    uint32_t *srv_shm       # per server: its index in the shared server arrays
    int64_t *srv_maxconn    # per server: maxconn (0: none)
    int64_t *srv_minconn    # per server: minconn (= maxconn: a static limit)
    int64_t *srv_limit      # per server: the limits the picks read (srv_maxconn, or the
                            # dynamic ones of this moment when fullconn is set)
    int64_t fullconn        # > 0: some server's limit scales with the backend's sessions
    int64_t *srv_maxqueue   # per server: maxqueue (0: none)
    int limited             # some server has a maxconn: requests may queue
    int observed            # some server has observe layer4|layer7
    int shared_cur          # servers' current sessions are kept in the atomic totals
                            # (a maxconn, leastconn or random needs them there)
    int nactive             # usable active servers
    int64_t t_connect
    int64_t t_server
    int64_t t_server_fin
    int64_t t_tunnel
    int64_t t_queue         # timeout queue (default: timeout connect)
    int retries
    int redispatch          # 0: off, else HAProxy's interval (default -1: last retry)
    int srvtcpka
    int srvtcpka_probes[3]  # TCP_KEEPCNT, TCP_KEEPIDLE, TCP_KEEPINTVL; 0: the system's
    int nolinger            # option nolinger: server connections close with a reset
    int indep_streams       # option independent-streams: writes to the server keep no timeout alive
    int smart_connect       # option tcp-smart-connect: no quick ACK of the SYN-ACK
    int retry_on            # retry-on: RE_* bits (defs.pxd)
    int persist             # option persist: a cookie reaches its server even when down
    int checkcache          # option checkcache: a cacheable response setting a cookie is refused
    int pretend_keepalive   # option http-pretend-keepalive: no "close" announced to servers
    SourceRt source         # "source": server sockets bind to it first (len 0: none)
    int prefer_last         # option prefer-last-server
    int transparent         # option transparent: the server entry of the client's destination
                            # (what persistence or use-server do not send elsewhere), -1: none
    int case_adjust         # option h1-case-adjust-bogus-server: names to servers adjusted
    int accept_invalid      # option accept-invalid-http-response
    int64_t max_ka_queue    # max-keep-alive-queue + 1: the last server's queue may be
                            # shorter than this for a request to wait there (0: any)
    int abortonclose        # option abortonclose: a client's close drops a waiting request
    int http                # mode http
    int http_close          # CLOSE_NONE, CLOSE_SERVER, CLOSE_BOTH (defs.pxd)
    int reuse_never         # http-reuse never: a server connection serves one session only
    int buffer_request      # option http-buffer-request: the body before the backend's rules
    int buffer_response     # the http-response rules read res.body: a copy of what came
    int res_rules           # tcp-response content rules (BackendHooks.res_rules): inspect.pxi
    int64_t res_delay       # tcp-response inspect-delay, ms
    uint32_t shm_index


cdef struct FrontendRt:
    int backend             # -1: no backend, connections are closed
    int http                # mode http
    int http_close          # as in BackendRt; the stronger of the two applies
    int64_t t_http_request
    int64_t t_http_keep_alive
    int64_t t_client
    int64_t t_client_fin
    int clitcpka
    int clitcpka_probes[3]  # as the backend's srvtcpka_probes
    int nolinger            # option nolinger: client connections close with a reset
    int indep_streams       # option independent-streams: writes to the client keep no timeout alive
    int log_mode            # 0 none, 1 connect line at accept, 2 tcplog at end
    int dontlognull
    int buffer_request      # option http-buffer-request: the body before the rules
    int buffer_response     # the http-response rules read res.body: a copy of what came
    int ignore_probes       # option http-ignore-probes: an empty connection gets no 400/408/log
    int tcp_rules           # tcp-request rules (FrontendHooks.tcp_rules): inspect.pxi
    int log_addrs           # its log formats read %fi/%fp/%bi/%bp/%si/%sp (kept past the close)
    int logasap             # option logasap: log at the response head (TCP: once connected)
    int case_adjust         # option h1-case-adjust-bogus-client: names to clients adjusted
    int contstats           # option contstats: byte counters updated as data moves
    int accept_invalid      # option accept-invalid-http-request
    int keep_idle_on_stop   # option idle-close-on-response: idle connections stay at a
                            # soft stop until their next request (answered with close)
    int64_t sess_rate_limit # rate-limit sessions (per second, all workers), 0: none
    uint32_t shm_index


cdef struct ListenerRt:
    int fd
    int fe
    int port
    int paused
    int closed
    int accept_proxy        # bind accept-proxy: connections start with a PROXY header
    int accept_cip          # bind accept-netscaler-cip: ... with a NetScaler CIP header
    uint32_t cip_magic      # ... whose magic number is this (0: none set on the bind line)
    int no_upgrade          # bind proto none: its sessions cannot become HTTP (HAProxy's NO_UPG)
    int sockpair            # sockpair@: connections arrive as descriptors passed over fd
    int stat_row            # option socket-stats: its row in lst_stats (-1: none)
    int luid                # its number in the frontend (a UNIX client is logged unix:<luid>)
    int64_t maxconn         # bind maxconn, 0: only the frontend's
    uint32_t count_off      # its concurrent connections in the count block (all workers)


cdef struct TimerEntry:
    int64_t at
    uint32_t idx            # session index; each session has at most one entry


# The Python a frontend or backend keeps (rules, editors, persistence): one object each,
# read through C fields (the loop's only Python-level per-proxy state).
@cython.final
cdef class FrontendHooks:
    cdef dict error_pages       # {status: bytes | LogFormatPage} from errorfile, http-error
    cdef object request_editor  # option forwardfor: edit(out, headers, client_ip), or None
    cdef object router          # route(...) -> (ROUTE_*, value), or None
    cdef object response_editor # http-response rules: edit(stream) -> deny status, or None
    cdef object captures_req    # [(name, length)] of capture request header, or None
    cdef int restrict_names     # option http-restrict-req-hdr-names: RESTRICT_*
    cdef object captures_rsp
    cdef object capture_cookie  # capture cookie: (name, length) or None
    cdef bint streams           # every request gets a sample Stream (its log has %[...])
    cdef object tcp_rules       # tcp-request rules: a runtime.tcp_rules.TcpRules, or None
    cdef object after_response  # http-after-response rules: edit(stream), or None


@cython.final
cdef class BackendHooks:
    cdef dict error_pages
    cdef object lookup_builder  # () -> fastlb.lb.lookup.Lookup from the shared server states
    cdef object cookie          # fastlb.http.cookies.Persistence, or None
    cdef bytes key_name         # balance url_param / hdr() name
    cdef object response_editor
    cdef object request_rules   # its own http-request rules / stats page, or None
    cdef object server_rules    # use-server: candidates(stream) -> [server index], or None
    cdef object persist_rules   # force-/ignore-persist: verdict(stream) -> PERSIST_*, or None
    cdef object hash_key        # balance hash <expr>: key(stream) -> bytes | None
    cdef object rdp_persist     # persist rdp-cookie: cookie(stream) -> bytes | None
    cdef tuple redirects        # per server: its "redir" prefix, or None (None: no such server)
    cdef int restrict_names
    cdef object after_response
    cdef object res_rules       # tcp-response content: rules(stream) -> TCP_*, or None
    cdef bytes name_header      # http-send-name-header, b"": none
    cdef tuple server_names
    cdef object usesrc_hdr      # usesrc hdr_ip(): {server index or -1 (the backend's): name}
    cdef uint64_t dyncookie_seen   # the BE_DYNCOOKIE word the cookie values were last set from
    cdef tuple static_cookies   # per server: its own "cookie" value, or None


@cython.final
cdef class Worker:
    """One worker process's event loop.  Build it with add_* calls, then run()."""

    cdef int epfd
    cdef int home_netns               # the worker's own network namespace (-1: not opened)
    cdef int worker_id
    cdef int nworkers
    cdef uint32_t bufsize
    cdef public uint32_t head_limit   # largest head: bufsize less tune.maxrewrite
    cdef public int rcvbuf_server     # tune.rcvbuf.server / tune.sndbuf.server, 0: the system's
    cdef public int sndbuf_server
    cdef public int max_accept        # tune.maxaccept: accepts per listener in a row
    cdef public int max_events        # tune.maxpollevents (at most MAX_EVENTS)
    cdef public bint busy_polling     # busy-polling: epoll_wait never sleeps
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

    cdef BufPool pool           # buffers of bufsize bytes (buffers.pxd)

    cdef TimerEntry *heap
    cdef int heap_len
    cdef int heap_cap

    cdef object shm_ref         # keeps the mapping alive while the pointer below is used
    cdef uint64_t *shm
    cdef uint64_t *slot
    cdef uint64_t *totals       # atomic count block (fastlb/shm/): reserved before use
    cdef uint64_t *be_words     # per backend: rr position, table version, queue ticket
    cdef uint64_t *srv_words    # per server: state, weight, health, ...
    cdef uint64_t *lst_stats    # this worker's statistics rows of listeners (socket-stats)
    cdef uint64_t *heads        # per worker: oldest ticket waiting in each queue
    cdef uint64_t *fe_words     # per frontend: maxconn (the stats socket may change it)
    cdef uint64_t *global_words
    cdef uint64_t shutdown_seen # last "shutdown sessions" epoch acted on
    cdef uint64_t *fe_stats     # this worker's statistics rows (accounting.pxi), per frontend,
    cdef uint64_t *be_stats     # per backend
    cdef uint64_t *srv_stats    # and per server (shared index)
    cdef uint64_t *my_heads
    cdef uint32_t slot_base
    cdef uint32_t slot_words
    cdef uint32_t fe_off
    cdef uint32_t lst_off       # the listeners' counts (bind maxconn)
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
    cdef int64_t *idle_purge_ms     # per server: pool-purge-delay (0: never purged)
    cdef int64_t *idle_next_purge   # per server: when half of its idle connections go
    cdef int64_t next_idle_sweep
    cdef int *lend_head         # per server (shared index): idle sessions lending their connection
    cdef int nservers_total
    cdef uint64_t rng
    cdef int64_t global_maxconn
    cdef int64_t conn_rate_limit    # maxconnrate, 0: none
    cdef int64_t sess_rate_limit    # maxsessrate, 0: none

    cdef object log_callback
    cdef object connect_callback
    cdef object cache_alert_callback    # (backend, server): option checkcache blocked a response
    cdef object handshake_log_callback  # (listener, client, accept ms, message): PROXY failure
    cdef object http_log_callback
    cdef object error_capture   # (response, fe, be, srv, bytes, addr, reason): show errors
    cdef list fe_hooks          # FrontendHooks per frontend
    cdef list be_hooks          # BackendHooks per backend
    cdef list txns              # HttpTxn per session slot (mode http)
    cdef list runq              # (idx, gen) of HTTP sessions to run again after this batch
    cdef list bufwait           # (idx, gen) of sessions waiting for a buffer, oldest first
    cdef int wakeup_fd
    cdef public uint64_t internal_errors   # sessions and requests ended by an unforeseen error
    cdef set errors_seen         # kinds already logged (internal_error)


include "sessions.pxd"
include "timers.pxd"
include "listeners.pxd"
include "connect.pxd"
include "relay.pxd"
include "assign.pxd"
include "accounting.pxd"
include "logging.pxd"
include "http_txn.pxd"
include "http_message.pxd"
include "http_request.pxd"
include "http_body.pxd"
include "http_response.pxd"
include "http_flow.pxd"
include "http_pool.pxd"
include "probes.pxd"
include "proxy_header.pxd"
include "inspect.pxd"
