# C-level interface of the worker loop: runtime tables, sessions, timers.

from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t
from fastlb.includes.system cimport sockaddr_storage, socklen_t, epoll_event


cdef enum SessionState:
    ST_FREE = 0
    ST_CONNECTING = 1       # server socket connect() in progress
    ST_TURNAROUND = 2       # waiting before retrying the same server
    ST_ESTABLISHED = 3      # server connection up (TCP: relaying both ways)
    ST_IDLE = 4             # HTTP: no server connection (between requests, or before one)
    ST_QUEUED = 5           # every eligible server is full: waiting in a queue (_assign.pxi)


cdef struct Side:
    int fd                  # -1 when closed or not yet opened
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
    int64_t last            # last read or write on this socket, ms (monotonic)
    uint64_t bytes_in       # bytes read from this side


cdef struct Session:
    uint32_t gen            # bumped at every reuse; stale epoll/timer entries carry the old value
    uint8_t state
    uint8_t http            # 1: mode http, the HttpTxn of this slot drives the session;
                            # 2: an HTTP session turned tunnel (101), relayed as TCP
    uint8_t redispatched
    uint32_t srv_epoch      # bumped per server socket (see side_tag in _core.pyx)
    char term0              # HAProxy termination cause ('-' while running)
    char term1              # HAProxy session state at termination
    Side cli
    Side srv
    int fe                  # frontend index
    int be                  # backend index, -1 if none
    int server              # server index in the backend, -1 if none
    int listener
    int retries_left
    int retries_done
    int held_server         # server whose current-session count this session holds (-1: none)
    uint8_t held_shared     # that count is also in the shared totals
    int forced_server       # persistence (cookie) asks for this server (-1: none)
    int avoid_server        # a redispatch after this server failed: pick it last (-1: none)
    int lend_prev           # HTTP: this idle session's server connection may be taken by
    int lend_next           # another session (http-reuse safe); list per server, -1 ends
    uint8_t lent
    uint8_t srv_private     # the server asked for NTLM/Negotiate: its connection is this
                            # session's alone (HAProxy's private connections)
    uint32_t key_hash       # hash of the balancing key (source, uri, url_param, hdr)
    uint8_t has_key         # 0: the key was missing: hashed algorithms fall back to the map walk
    int q_target            # queue this session waits in (-1: none), see _assign.pxi
    int q_prev
    int q_next
    uint64_t q_ticket
    int64_t t_queued        # -1: never queued
    int64_t t_dequeued
    int64_t t_accept        # ms, monotonic
    int64_t t_accept_real   # ms since the epoch, for the log date
    int64_t t_connect       # start of the current connect attempt
    int64_t t_established   # -1 until connected
    int heap_pos            # index of this session's entry in the timer heap, -1: none
    int64_t wake_at         # turn-around end
    int free_next
    socklen_t addrlen
    sockaddr_storage addr   # client address


cdef struct ServerRt:
    sockaddr_storage addr
    socklen_t addrlen
    int family
    int use_client_port     # server written without a port: use the port the client reached
    int index               # position in the backend (for shared counters)
    uint32_t shm_index


cdef struct BackendRt:
    ServerRt *servers
    int nservers
    int algo                # fastlb/lb/algorithms.pxd
    int consistent          # hash-type consistent (else map-based)
    int avalanche
    int uri_len             # balance uri options
    int uri_depth
    int uri_whole
    int uri_path_only
    int draws               # balance random(<draws>)
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
    int http                # mode http
    int http_close          # 0 http-keep-alive, 1 http-server-close, 2 httpclose
    int reuse_never         # http-reuse never: a server connection serves one session only
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
    int log_mode            # 0 none, 1 connect line at accept, 2 tcplog at end
    int dontlognull
    uint32_t shm_index


cdef struct ListenerRt:
    int fd
    int fe
    int port
    int paused
    int closed


cdef struct TimerEntry:
    int64_t at
    uint32_t idx            # session index; each session has at most one entry
