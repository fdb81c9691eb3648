# The loop's constants, declared once.  cpdef enums are read by Python too (from
# fastlb.loop.core): the compile step (fastlb/runtime/tables.py) uses the same numbers.

cdef enum:
    SESSIONS_PER_CHUNK = 1024
    MAX_EVENTS = 1024          # tune.maxpollevents' ceiling (the events array's size)
    POLL_EVENTS = 256          # its default
    ACCEPT_BATCH = 64
    # retry-on (config/keywords/proxy.py RETRY_ON): HAProxy's PR_RE_* events, a status a bit
    RE_CONN_FAILED = 1
    RE_DISCONNECTED = 2        # empty-response
    RE_TIMEOUT = 4             # response-timeout
    RE_JUNK = 8                # junk-response
    PERSIST_FORCE = 1          # force-persist / ignore-persist (runtime/http_rules.py)
    PERSIST_IGNORE = 2
    RE_L7 = 0x3FFFE            # anything but conn-failure: the request is kept for a replay
    PUMP_ROUNDS = 8
    PIPE_BYTES = 262144         # splice pipe size asked for (the kernel's default is 64 KiB)
    RESUME_CHECK_MS = 10
    FD_EXHAUSTED_PAUSE_MS = 100
    QUEUE_POLL_MS = 1
    IDLE_PER_SERVER = 64        # idle server connections a worker keeps per server (http-reuse)
    DEFAULT_POOL_PURGE_MS = 5000    # pool-purge-delay's default, as HAProxy's
    IDLE_SWEEP_MS = 250         # how often the pools are looked at for a purge
    HTTP_ROUNDS = 64
    SMALL_BODY = 8192           # body bytes copied behind a head to leave in one send()
    APPLET_MAX_BODY = 65536

# epoll user data: [tag:32][kind:2][index:29][side:1]; for a session the tag is its generation,
# plus, on the server side, the number of server connections it has had, so that events
# still queued for a replaced server socket are recognised as stale.
cdef enum EventKind:
    KIND_SESSION = 0
    KIND_LISTENER = 1
    KIND_WAKEUP = 2
    KIND_IDLE = 3               # an idle server connection in the pool: [fd:32][3][server:29][0]

cdef enum SideIndex:
    SIDE_CLI = 0
    SIDE_SRV = 1

cdef enum SessionState:
    ST_FREE = 0
    ST_CONNECTING = 1           # server socket connect() in progress
    ST_TURNAROUND = 2           # waiting before retrying the same server
    ST_ESTABLISHED = 3          # server connection up (TCP: relaying both ways)
    ST_IDLE = 4                 # HTTP: no server connection (between requests, or before one)
    ST_QUEUED = 5               # every eligible server is full: waiting in a queue (assign.pxi)
    ST_PROXY_HEADER = 6         # accept-proxy: waiting for the PROXY header (proxy_header.pxi)
    ST_INSPECT = 7              # tcp-request content rules wait for the client's bytes (inspect.pxi)

# which deadline a session's timer entry stands for (Session.timer): recorded when the
# deadline is computed, so that the expiry acts on it instead of working it out again
cdef enum TimerKind:
    TM_NONE = 0
    TM_CONNECT = 1              # timeout connect
    TM_TURNAROUND = 2           # the pause before a retry on the same server
    TM_QUEUE = 3                # timeout queue
    TM_CLIENT = 4               # timeout client (client-fin once the client half-closed)
    TM_SERVER = 5               # timeout server (server-fin)
    TM_TUNNEL = 6               # timeout tunnel
    TM_HTTP_HEAD = 7            # timeout http-request / http-keep-alive: a request head awaited
    TM_PROXY_HEADER = 8         # timeout client while a PROXY header is awaited
    TM_TARPIT = 9               # the end of an http-request tarpit's hold
    TM_BODY_WAIT = 10           # a request body awaited (http_body.pxi): 408 when it passes
    TM_RSP_BODY_WAIT = 11       # a response body awaited (http_body.pxi): 504 when it passes
    TM_INSPECT = 12             # tcp-request inspect-delay: the last evaluation
    TM_RES_INSPECT = 13         # tcp-response inspect-delay: the last evaluation

# what a frontend logs (anonymous: Python sees the names themselves)
cpdef enum:
    LOG_NONE = 0
    LOG_CONNECT = 1             # a connect line at accept
    LOG_TCPLOG = 2              # a line at the end of the session
    LOG_HTTPLOG = 3             # a line per HTTP transaction

# server assignment and queues (assign.pxi)
cdef enum Assignment:
    ASSIGN_NONE = -1            # no usable server
    ASSIGN_QUEUED = -2          # waiting in a queue
    BALANCE_FULL = -3           # usable servers exist, all full

# mode http: the request side of a transaction
cdef enum RequestState:
    RQ_HEAD = 0                 # reading a request head
    RQ_BODY = 1                 # forwarding its body
    RQ_DONE = 2                 # request sent, waiting for the response to end
    RQ_APPLET = 3               # the proxy answers itself (stats page, Prometheus): reading the body
    RQ_TARPIT = 4               # http-request tarpit: held unanswered until txn.tarpit_until
    RQ_BODY_WAIT = 5            # http-buffer-request / wait-for-body: receiving the body (http_body.pxi)

# ... and its response side
cdef enum ResponseState:
    RS_NONE = 0                 # no request sent yet
    RS_HEAD = 1                 # reading the response head
    RS_BODY = 2                 # forwarding its body
    RS_DONE = 3
    RS_TUNNEL = 4               # 101 Switching Protocols: once its head is out, bytes flow as in TCP
    RS_BODY_WAIT = 5            # http-response wait-for-body: receiving the body (http_body.pxi)

cdef enum BodyMode:
    BODY_NONE = 0
    BODY_LENGTH = 1
    BODY_CHUNKED = 2
    BODY_CLOSE = 3              # response delimited by the server closing

# HTTP connection modes, weakest first: the stronger of the frontend's and the backend's
# applies (anonymous: Python sees the names themselves)
cpdef enum:
    CLOSE_NONE = 0              # option http-keep-alive
    CLOSE_SERVER = 1            # option http-server-close: the server side after each response
    CLOSE_BOTH = 2              # option httpclose: both sides after each transaction

# tcp-request connection rules' verdict, bits (fastlb/runtime/tables.py)
cpdef enum:
    CONN_REJECT = 1             # close at once, unlogged
    CONN_EXPECT_PROXY = 2       # expect-proxy layer4: a PROXY header comes first
    CONN_SILENT = 4             # silent-drop: close without telling the client
    CONN_EXPECT_CIP = 8         # expect-netscaler-cip layer4: a NetScaler CIP header comes first

# tcp-request session / content rules' verdict (fastlb/runtime/tcp_rules.py)
cpdef enum:
    TCP_GO = 0                  # go on (accepted, or no rule ended the walk)
    TCP_WAIT = 1                # content: more bytes may change a condition's answer
    TCP_REJECT = 2              # close the connection
    TCP_SILENT = 3              # silent-drop
    TCP_SWITCH_HTTP = 4         # switch-mode http: the session goes on as HTTP
    TCP_CLOSE = 5               # tcp-response content close: the server connection ends

# what a frontend's router (fastlb/runtime/tables.py) tells the loop
cpdef enum:
    ROUTE_BACKEND = 0           # value: the backend index
    ROUTE_DENY = 1              # value: the status (the proxy's page), or a whole response
    ROUTE_RESPOND = 2           # value: a status answered with the built-in page
    ROUTE_RAW = 3               # value: a whole response, as bytes
    ROUTE_REJECT = 4            # close without a word
    ROUTE_APPLET = 5            # value: applet(method, url, headers, body, client_ip, version)
    ROUTE_PAGE = 6              # value: a status answered with the proxy's error page
    ROUTE_TARPIT = 7            # value: (hold in ms, a ROUTE_DENY value answered after it)
    ROUTE_WAIT_BODY = 8         # wait-for-body: value (time ms, at-least bytes); the loop
                                # waits for the body, then calls the rules again (stream.resume)
                                # -> raw response (the stats page, Prometheus)

cdef extern from *:
    """
    #define FL_MAX_CONTENT_LENGTH 0x3FFFFFFFFFFFFFFFLL
    """
    # beyond what an int64 counter holds: refused
    const long long MAX_CONTENT_LENGTH "FL_MAX_CONTENT_LENGTH"


# option http-restrict-req-hdr-names
cdef enum:
    RESTRICT_PRESERVE = 0
    RESTRICT_DELETE = 1
    RESTRICT_REJECT = 2
