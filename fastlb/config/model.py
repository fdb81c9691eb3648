"""Typed configuration model: what haproxy.cfg says, independent of the runtime.

The parser (``parser.py`` and its keyword modules, ``keywords/``) fills these objects;
``fastlb.runtime.tables`` compiles them into the flat tables the Cython worker loop reads.
"""
from __future__ import annotations

import copy
import socket
from dataclasses import dataclass, field
from typing import Optional

FACILITIES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp",
              "cron", "auth2", "ftp", "ntp", "audit", "alert", "cron2",
              "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7")
LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
LOG_FORMATS = ("rfc3164", "rfc5424", "raw", "short", "priority", "timed", "iso", "local")


@dataclass
class Origin:
    """Where a statement came from, for messages (``haproxy.cfg:12``)."""
    file: str
    line: int
    base: str = "."     # the directory its relative file names are read from (default-path)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class LogTarget:
    """One ``log`` destination."""
    kind: str                       # "udp", "unix", "stdout", "stderr"
    address: object                 # (host, port) for udp, path for unix, None otherwise
    family: int = 0                 # socket family for udp targets
    facility: int = 16              # local0
    max_level: int = 7              # drop messages less severe than this
    min_level: int = 0              # raise messages more severe than this to this level
    length: int = 1024              # maximum line length
    format: str = "rfc3164"
    text: str = ""                  # as written, for messages


@dataclass
class Listener:
    """One address a frontend accepts on (a port range gives one Listener per port)."""
    family: int                     # AF_INET / AF_INET6, 0 for an inherited fd
    host: str                       # textual address, "" for any
    port: int
    fd: Optional[int] = None        # inherited descriptor (``fd@N``)
    v6only: Optional[bool] = None   # None: system default
    backlog: Optional[int] = None
    name: Optional[str] = None
    accept_proxy: bool = False      # connections start with a PROXY header
    cip_magic: Optional[int] = None  # accept-netscaler-cip: ... with a NetScaler CIP header
    defer_accept: bool = False      # TCP_DEFER_ACCEPT: accept once the client has spoken
    tfo: bool = False               # TCP Fast Open (its queue: the backlog)
    transparent: bool = False       # IP_TRANSPARENT: bind addresses this host does not own
    interface: Optional[str] = None  # SO_BINDTODEVICE
    mss: Optional[int] = None       # TCP_MAXSEG
    tcp_ut: int = 0                 # TCP_USER_TIMEOUT, ms (0: the system's)
    threads: Optional[frozenset] = None  # bind ... thread: the workers (1-based, HAProxy's
    thread_group: int = 0           # thread numbers) that accept on it; None: every worker

    def serves(self, worker: int) -> bool:
        """Whether worker ``worker`` (0-based) accepts on this listener."""
        return self.threads is None or worker + 1 in self.threads
    namespace: Optional[str] = None  # network namespace (/var/run/netns/<name>) it is bound in
    mode: Optional[int] = None      # UNIX socket: permissions, owner, group
    uid: Optional[int] = None
    gid: Optional[int] = None
    maxconn: int = 0                # bind maxconn: its concurrent connections, 0: the frontend's
    proto: Optional[str] = None     # forced mux: "h1" (mode http) or "none" (mode tcp)
    sockpair: bool = False          # sockpair@<fd>: connections passed as descriptors over fd
    id: int = 0                     # its number in the frontend (so_id, unix:<id> in logs)
    forced_id: bool = False         # bind id N
    origin: Optional[Origin] = None
    text: str = ""

    def describe(self) -> str:
        if self.fd is not None:
            return f"{'sockpair' if self.sockpair else 'fd'}@{self.fd}"
        if self.family == socket.AF_UNIX:
            return self.text
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass
class ServerAddress:
    family: int
    host: str                       # as written
    ip: str                         # resolved numeric address
    port: int                       # 0: use the port the client connected to
    sockpair: Optional[int] = None  # sockpair@<fd>: each connection is a socketpair end
                                    # passed over that descriptor

    def sockaddr(self, port: Optional[int] = None) -> tuple:
        return (self.ip, self.port if port is None else port)


@dataclass
class ServerSettings:
    """What a ``server`` line may set; ``default-server`` sets the same for the lines after it."""
    weight: int = 1
    backup: bool = False
    disabled: bool = False
    maxconn: int = 0                # 0: no limit
    maxqueue: int = 0               # 0: no limit
    check: bool = False
    inter: int = 2000               # ms between checks while UP
    fastinter: Optional[int] = None  # while changing state (default: inter)
    downinter: Optional[int] = None  # while fully DOWN (default: inter)
    rise: int = 2
    fall: int = 3
    check_port: Optional[int] = None
    check_addr: Optional[str] = None
    cookie: Optional[str] = None
    observe: Optional[str] = None   # "layer4" | "layer7"
    error_limit: int = 10
    on_error: str = "fastinter"
    send_proxy: int = 0             # 0 none, 1 send-proxy (v1), 2 send-proxy-v2
    pp_options: tuple = ()          # proxy-v2-options fastlb writes: "crc32c", "authority"
    check_send_proxy: bool = False
    pool_purge_delay: int = 5000    # ms; each period half of the idle connections close (0: never)
    source: Optional[tuple] = None  # (family, ip, port): bound before connecting (else the backend's)
    usesrc: Optional[tuple] = None  # its source's usesrc (keywords/proxy.py usesrc_target)
    source_interface: Optional[str] = None  # its source's interface (SO_BINDTODEVICE)
    minconn: int = 0                # with maxconn: the dynamic limit's floor (fullconn scales it)
    redir: Optional[str] = None     # GET/HEAD get a 302 to this prefix + the path instead
    namespace: Optional[str] = None  # network namespace (ip netns) its sockets are made in
    proto: Optional[str] = None     # forced mux: "h1" (mode http) or "none" (mode tcp)
    tfo: bool = False               # TCP Fast Open: the first bytes ride on the SYN
    tcp_ut: int = 0                 # TCP_USER_TIMEOUT of its connections and checks, ms


# ``default-server`` carries the same settings (HAProxy refuses only ``id`` and ``cookie``
# there, which the parser checks).
ServerDefaults = ServerSettings


@dataclass
class Server(ServerSettings):
    name: str = ""
    address: Optional[ServerAddress] = None
    origin: Optional[Origin] = None
    id: int = 0
    forced_id: bool = False


@dataclass
class CookieSettings:
    """``cookie <name> insert|rewrite|prefix ...`` (persistence)."""
    name: str
    mode: str = "passive"           # no mode given: persistence on the server's own cookie
    indirect: bool = False
    nocache: bool = False
    postonly: bool = False
    preserve: bool = False
    httponly: bool = False
    secure: bool = False
    domains: list = field(default_factory=list)
    maxidle: int = 0                # seconds, 0: none
    maxlife: int = 0
    dynamic: bool = False           # servers without 'cookie' get a hash of key, address, port
    attrs: list = field(default_factory=list)   # "attr" values, appended to Set-Cookie


@dataclass
class HttpCheck:
    """``option httpchk`` and ``http-check send|expect``."""
    method: str = "OPTIONS"
    uri: str = "/"
    version: str = "HTTP/1.0"
    headers: list = field(default_factory=list)   # [(name, value)]
    body: str = ""
    enabled: bool = True            # False: http-check lines seen, 'option httpchk' not (yet)
    expect: Optional[tuple] = None  # (kind, negate, pattern): status|rstatus|string|rstring


@dataclass
class Timeouts:
    """All ``timeout`` values in milliseconds; ``None`` means not set (infinite)."""
    client: Optional[int] = None
    server: Optional[int] = None
    connect: Optional[int] = None
    tunnel: Optional[int] = None
    client_fin: Optional[int] = None
    server_fin: Optional[int] = None
    queue: Optional[int] = None
    check: Optional[int] = None
    http_request: Optional[int] = None
    http_keep_alive: Optional[int] = None
    tarpit: Optional[int] = None


@dataclass
class ForwardFor:
    """``option forwardfor``: add the client address to requests."""
    header: str = "x-forwarded-for"
    except_net: object = None       # ipaddress network whose clients get no header
    if_none: bool = False           # only when the request has no such header yet


@dataclass
class Mailers:
    """A ``mailers`` section: the SMTP relays email alerts go to, each of them."""
    name: str
    origin: Origin
    relays: list = field(default_factory=list)      # (mailer name, host, port)
    timeout_ms: int = 10000                         # timeout mail (HAProxy's default 10s)


@dataclass
class EmailAlert:
    """A proxy's email-alert settings (used once from, to and mailers are all set)."""
    sender: Optional[str] = None        # email-alert from
    to: Optional[str] = None
    mailers: Optional[str] = None       # the mailers section's name
    level: str = "alert"                # the least severe message mailed
    myhostname: Optional[str] = None    # HELO's argument, else the host's name
    set: bool = False                   # any email-alert line was read

    def active(self) -> bool:
        return bool(self.mailers and self.sender is not None and self.to is not None)


@dataclass
class Options:
    tcplog: bool = False
    httplog: bool = False
    dontlognull: bool = False
    ignore_probes: bool = False         # option http-ignore-probes
    log_separate_errors: bool = False   # errors, retries, redispatches, 5xx logged at "err"
    dontlog_normal: bool = False        # only those are logged
    nolinger: bool = False              # connections close with a TCP reset (SO_LINGER 0)
    independent_streams: bool = False   # writes to a socket do not refresh its read timeout
    socket_stats: bool = False          # a statistics row per listener
    prefer_last_server: bool = False    # a keep-alive request stays on the kept connection
    abortonclose: bool = False          # a client's close drops its request still waiting
    restrict_hdr_names: str = "preserve"  # option http-restrict-req-hdr-names: delete|reject
    redispatch: Optional[int] = None    # None: off; else HAProxy's redispatch interval (default -1)
    transparent: bool = False           # requests no server takes go to the client's destination
    clitcpka: bool = False
    srvtcpka: bool = False
    # {cli,srv}tcpka-cnt|idle|intvl: the keep-alive probes' count, idle and interval
    # (seconds), 0: the system's
    clitcpka_cnt: int = 0
    clitcpka_idle: int = 0
    clitcpka_intvl: int = 0
    srvtcpka_cnt: int = 0
    srvtcpka_idle: int = 0
    srvtcpka_intvl: int = 0
    log_health_checks: bool = False
    logasap: bool = False               # log a request at its response head, a TCP session
                                        # once connected ('+' before %Tt and %B)
    httplog_clf: bool = False           # option httplog clf: the line in CLF order
    allbackups: bool = False
    forwardfor: Optional[ForwardFor] = None
    originalto: Optional[ForwardFor] = None   # the same settings, for the destination
    http_mode: str = "http-keep-alive"  # or http-server-close, httpclose
    http_buffer_request: bool = False   # the request body is received before the rules run
    # TCP_QUICKACK off, so the first ACK rides on data: on listening sockets (None: as
    # HAProxy, on in HTTP mode), on server sockets
    persist: bool = False               # option persist: a cookie reaches its server even down
    checkcache: bool = False            # option checkcache: block cacheable Set-Cookie responses
    http_pretend_keepalive: bool = False  # the server is never told the connection closes
    http_use_proxy_header: bool = False   # a proxy request (absolute target) authenticates
                                          # with Proxy-Authorization / 407
    tcp_smart_accept: Optional[bool] = None
    tcp_smart_connect: bool = False
    # header names to clients (frontend) / to servers (backend) with h1-case-adjust's case
    h1_case_adjust_bogus_client: bool = False
    contstats: bool = False             # byte counters updated while data moves
    # HAProxy's parser tolerances: odd bytes in field names (and request targets)
    accept_invalid_http_request: bool = False
    accept_invalid_http_response: bool = False
    idle_close_on_response: bool = False  # idle connections stay at a soft stop
    h1_case_adjust_bogus_server: bool = False


@dataclass
class StatsPage:
    """``stats enable|uri|realm|auth|refresh|admin|hide-version|show-legends|...``"""
    uri: str = "/haproxy?stats"
    realm: str = "HAProxy Statistics"
    auths: list = field(default_factory=list)      # [(user, password)]
    refresh: Optional[int] = None                  # seconds
    admin: list = field(default_factory=list)      # [acl.Condition] (if / unless)
    hide_version: bool = False
    show_legends: bool = False
    show_node: Optional[str] = None
    show_desc: Optional[str] = None
    scopes: list = field(default_factory=list)     # proxy names the page may show
    rules: list = field(default_factory=list)      # stats http-request: [(action, realm, cond)]
    realm_given: bool = False


@dataclass
class StatsSocket:
    """``stats socket <path|ip:port|fd@N> [mode <octal>] [user|uid <owner>] [group|gid <group>]
    [name <name>] [level user|operator|admin] [expose-fd listeners]``"""
    origin: Origin
    path: Optional[str] = None
    host: Optional[str] = None
    port: int = 0
    fd: Optional[int] = None
    mode: Optional[int] = None
    uid: Optional[int] = None       # "user"/"uid": the UNIX socket's owner (None: unchanged)
    gid: Optional[int] = None       # "group"/"gid"
    name: Optional[str] = None      # the listener's name
    level: str = "admin"
    expose_fd: bool = False         # "expose-fd listeners": hands the listeners to "-x"


@dataclass
class User:
    name: str
    password: str                   # a crypt(3) hash, or the password itself (insecure)
    insecure: bool
    groups: list = field(default_factory=list)


@dataclass
class Userlist:
    """A ``userlist`` section: users with their passwords, and groups of them."""
    name: str
    origin: Origin
    users: dict = field(default_factory=dict)     # name -> User
    groups: dict = field(default_factory=dict)    # name -> [user names]

    def groups_of(self, user: str) -> list:
        return [g for g, members in self.groups.items() if user in members]


@dataclass
class HttpErrors:
    """An ``http-errors <name>`` section: pages that proxies and rules import by name."""
    name: str
    origin: Origin
    pages: dict = field(default_factory=dict)       # status -> raw response bytes


@dataclass
class Proxy:
    """A ``defaults``, ``frontend``, ``backend`` or ``listen`` section."""
    kind: str                       # "defaults", "frontend", "backend", "listen"
    name: str
    origin: Origin
    mode: str = "tcp"
    id: int = 0
    forced_id: bool = False
    enabled: bool = True
    description: str = ""
    listeners: list = field(default_factory=list)
    default_backend: Optional[str] = None
    default_backend_origin: Optional[Origin] = None
    switching_rules: list = field(default_factory=list)   # [(backend name, Condition|None, origin)]
    acls: dict = field(default_factory=dict)              # name -> [AclTerm], same-name lines ORed
    http_request_rules: list = field(default_factory=list)   # [http.rules.Rule]
    redirect_rules: list = field(default_factory=list)       # "redirect" lines: [Rule]
    server_rules: list = field(default_factory=list)  # use-server: [(name, Condition, origin)]
    persist_rules: list = field(default_factory=list)  # [("force-persist"|"ignore-persist", Condition)]
    tcp_connection_rules: list = field(default_factory=list)  # [(http.rules.Rule, origin)]
    tcp_session_rules: list = field(default_factory=list)     # [(Rule, origin)]
    tcp_content_rules: list = field(default_factory=list)     # [(Rule, origin)]
    tcp_response_rules: list = field(default_factory=list)    # [(Rule, origin)]
    inspect_delay: Optional[int] = None        # tcp-request inspect-delay, ms
    res_inspect_delay: Optional[int] = None    # tcp-response inspect-delay, ms
    http_response_rules: list = field(default_factory=list)
    servers: list = field(default_factory=list)
    default_server: ServerDefaults = field(default_factory=ServerDefaults)
    balance: str = "roundrobin"
    balance_set: bool = False               # a balance line (here or in defaults) chose it
    balance_args: dict = field(default_factory=dict)   # uri len/depth/whole/path-only, param, ...
    hash_type: str = "map-based"
    rdp_persist: Optional[str] = None   # persist rdp-cookie: the cookie naming the server
    hash_function: str = "sdbm"
    hash_avalanche: bool = False
    hash_balance_factor: int = 0            # bounded loads (consistent hashing, random)
    cookie: Optional[CookieSettings] = None
    dynamic_cookie_key: Optional[str] = None
    httpchk: Optional[HttpCheck] = None
    dispatch: Optional[ServerAddress] = None
    email_alert: EmailAlert = field(default_factory=EmailAlert)
    state_from_file: str = "none"           # load-server-state-from-file global|local|none
    state_file_name: Optional[str] = None   # server-state-file-name (local; default its name)
    timeouts: Timeouts = field(default_factory=Timeouts)
    options: Options = field(default_factory=Options)
    maxconn: Optional[int] = None
    rate_limit_sessions: int = 0            # new sessions per second, 0: no limit
    max_ka_queue: int = 0                   # max-keep-alive-queue + 1 (0: any queue length)
    fullconn: Optional[int] = None          # the backend load at which servers reach maxconn
    backlog: Optional[int] = None
    retries: int = 3
    retry_on: int = 1                       # RETRY_ON bits (conn-failure by default)
    send_name_header: Optional[str] = None  # http-send-name-header: the server's name in it
    source: Optional[tuple] = None          # (family, host, port): server sockets bind to it
    usesrc: Optional[tuple] = None          # full transparent proxy: usesrc_target()
    source_interface: Optional[str] = None  # source ... interface: SO_BINDTODEVICE
    logs: list = field(default_factory=list)        # LogTarget, "global" already resolved
    log_tag: Optional[str] = None
    errorfiles: dict = field(default_factory=dict)  # status -> raw response bytes (b"": close)
    # errorfile/errorloc/errorfiles lines in order, resolved into ``errorfiles`` once every
    # http-errors section is known: ("page", status, bytes) | ("import", name, codes, origin)
    error_decls: list = field(default_factory=list)
    http_after_response_rules: list = field(default_factory=list)
    http_reuse: str = "safe"
    log_format: Optional[str] = None
    error_log_format: Optional[str] = None       # error-log-format: connection errors' lines
    log_format_sd: Optional[str] = None          # log-format-sd: RFC 5424 structured data
    unique_id_format: Optional[str] = None       # a log-format: the request's unique id
    unique_id_header: Optional[str] = None       # the request header that carries it
    captures_req: list = field(default_factory=list)   # [(header name, max length)]
    captures_rsp: list = field(default_factory=list)
    capture_cookie: Optional[tuple] = None             # (name prefix, max length)
    monitor_uri: Optional[str] = None
    monitor_fail: Optional[object] = None          # "monitor fail if|unless <cond>"
    stats: Optional[StatsPage] = None

    @property
    def type_name(self) -> str:
        """The word HAProxy's messages use for this proxy."""
        return "proxy" if self.kind == "listen" else self.kind

    @property
    def has_frontend(self) -> bool:
        return self.kind in ("frontend", "listen")

    @property
    def has_backend(self) -> bool:
        return self.kind in ("backend", "listen")

    def inherit_from(self, defaults: "Proxy") -> None:
        """Copy every setting a ``defaults`` section may carry."""
        for name in ("mode", "default_backend", "balance", "balance_set", "state_from_file",
                     "maxconn", "backlog", "retries",
                     "log_tag", "monitor_uri", "http_reuse", "log_format",
                     "unique_id_format", "unique_id_header", "log_format_sd",
                     "error_log_format",
                     "hash_type", "hash_function", "hash_avalanche", "hash_balance_factor", "cookie", "dynamic_cookie_key",
                     "inspect_delay", "res_inspect_delay", "fullconn", "rdp_persist", "rate_limit_sessions", "source", "retry_on", "send_name_header",
                     "max_ka_queue"):
            setattr(self, name, getattr(defaults, name))
        self.stats = copy.deepcopy(defaults.stats)
        self.balance_args = dict(defaults.balance_args)
        self.httpchk = copy.deepcopy(defaults.httpchk)
        self.default_backend_origin = defaults.default_backend_origin
        self.timeouts = copy.copy(defaults.timeouts)
        self.options = copy.copy(defaults.options)
        self.default_server = copy.copy(defaults.default_server)
        self.logs = list(defaults.logs)
        self.error_decls = list(defaults.error_decls)
        self.email_alert = copy.copy(defaults.email_alert)


@dataclass
class GlobalSettings:
    logs: list = field(default_factory=list)
    experimental: bool = False      # expose-experimental-directives
    unix_bind: dict = field(default_factory=dict)   # unix-bind: prefix, mode, uid, gid
    ca_base: Optional[str] = None   # TLS defaults, kept for the TLS transport (keywords/tls.py)
    crt_base: Optional[str] = None
    ssl_defaults: dict = field(default_factory=dict)  # keyword -> cipher string / option words
    maxconn: Optional[int] = None
    proc_vars: dict = field(default_factory=dict)   # set-var / set-var-fmt: "proc.x" -> sample
    maxconnrate: int = 0        # new connections per second, all workers together, 0: no limit
    maxsessrate: int = 0        # new sessions (past tcp-request connection) per second
    nbthread: Optional[int] = None
    daemon: bool = False
    pidfile: Optional[str] = None
    quiet: bool = False
    bufsize: int = 16384
    buffers_limit: int = 0      # tune.buffers.limit: buffers all workers may hold, 0: no limit
    buffers_reserve: int = 2    # tune.buffers.reserve (HAProxy's RESERVED_BUFS)
    server_state_file: Optional[str] = None   # the servers' states to start from
    server_state_base: Optional[str] = None   # the directory of relative state files
    # tune.rcvbuf|sndbuf.client|server: the kernel's socket buffer sizes (0: the system's)
    rcvbuf_client: int = 0
    pipesize: int = 0           # tune.pipesize, 0: fastlb's 256 KiB
    busy_polling: bool = False
    insecure_fork_wanted: bool = False    # workers may fork (HAProxy: RLIMIT_NPROC 0 otherwise)
    insecure_setuid_wanted: bool = False  # ... and gain privileges (otherwise no_new_privs)
    http_maxhdr: int = 101      # tune.http.maxhdr: header fields a head may have
    cookielen: int = 64         # tune.http.cookielen + 1 as haproxy keeps it: a capture
                                # cookie keeps at most this less one
    # the bytes of the request line logs keep: tune.http.logurilen (haproxy stores it plus
    # one, a NUL's place), else haproxy's default REQURI_LEN 1024 less its NUL
    logurilen: int = 1023
    maxaccept: int = 0          # tune.maxaccept, 0: fastlb's 64, -1: no limit
    maxpollevents: int = 0      # 0: fastlb's 256
    zero_warning: bool = False  # a warning stops the start
    strict_limits: bool = True  # an FD limit that cannot be had stops the start
    fd_hard_limit: int = 0      # the most descriptors fastlb sets itself, 0: the hard limit
    set_dumpable: bool = False
    noreuseport: bool = False   # one listening socket shared by the workers
    maxpipes: int = 0           # 0: no limit
    nosplice: bool = False
    pp2_never_send_local: bool = False
    sndbuf_client: int = 0
    rcvbuf_server: int = 0
    sndbuf_server: int = 0
    maxrewrite: int = 1024      # tune.maxrewrite: kept free in a buffer for rewrites, so a
                                # head may use bufsize - maxrewrite (HAProxy caps it at half)
    ulimit_n: Optional[int] = None
    log_tag: Optional[str] = None
    log_send_hostname: Optional[str] = None
    hard_stop_after: Optional[int] = None
    mworker_max_reloads: int = -1     # old workers past this many reloads get SIGTERM
    # h1-case-adjust <from> <to> lines, then h1-case-adjust-file's (read once parsed):
    # header names written with the case a bogus HTTP/1 peer wants
    h1_case_adjust: dict = field(default_factory=dict)
    h1_case_adjust_file: Optional[str] = None
    # tune.vars.<scope>-max-size: scope -> bytes (0: no limit)
    vars_max_size: dict = field(default_factory=dict)
    node: Optional[str] = None
    description: str = ""
    stats_sockets: list = field(default_factory=list)   # [StatsSocket]
    stats_timeout: int = 10000                          # ms
    uid: Optional[int] = None       # "user" / "uid": the workers' user after binding
    gid: Optional[int] = None       # "group" / "gid"
    chroot: Optional[str] = None
    cpu_map: dict = field(default_factory=dict)         # worker number (1-based) -> {cpu}

    def head_limit(self) -> int:
        """The largest head a buffer takes: tune.maxrewrite (at most half of it) stays free,
        as in HAProxy, so that rewrites always fit."""
        return self.bufsize - min(self.maxrewrite, self.bufsize // 2)


@dataclass
class Config:
    global_: GlobalSettings
    proxies: list                   # frontends, backends and listens in declaration order
    files: list
    userlists: dict = field(default_factory=dict)     # name -> Userlist
    http_errors: dict = field(default_factory=dict)   # name -> HttpErrors
    mailers: dict = field(default_factory=dict)       # name -> Mailers

    def proxy(self, name: str, capability: str = "") -> Optional[Proxy]:
        for proxy in self.proxies:
            if proxy.name != name:
                continue
            if capability == "backend" and not proxy.has_backend:
                continue
            if capability == "frontend" and not proxy.has_frontend:
                continue
            return proxy
        return None

    @property
    def frontends(self) -> list:
        return [p for p in self.proxies if p.has_frontend and p.enabled]

    @property
    def backends(self) -> list:
        return [p for p in self.proxies if p.has_backend]
