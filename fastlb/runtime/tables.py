"""Typed model -> the flat, index-based tables the Cython worker loop reads.

Compiled once in the master (before forking), so every worker starts from the
same tables and the same shared-counter layout.
"""
from __future__ import annotations

import dataclasses
import os
import socket

import ipaddress
from dataclasses import dataclass, field
from typing import Optional

from ..config.model import Config, Proxy, Server, ServerAddress
from ..applets.page import Applets
from ..http.cookies import Persistence, dynamic_cookie
from ..lb.algorithms import ALGORITHMS, Algorithm
from ..lb.lookup import ServerView, build_lookup
from ..limits import backend_fullconn, default_maxconn
from ..logformat import CLFLOG, HTTPLOG, HTTPLOG_NO_CAPTURE, TCPLOG, compile_format
from .. import shm as shared
# what frontends log, how connections close, what routers answer: the loop's own numbers
# (loop/defs.pxd)
from ..loop.core import (CLOSE_BOTH, CLOSE_NONE, CLOSE_SERVER, LOG_CONNECT, LOG_HTTPLOG,
                         LOG_NONE, LOG_TCPLOG,
                         PP2_OPT_AUTHORITY, PP2_OPT_CRC32C)
from ..http.acl import ConditionCompiler
from ..sample import Stream
from ..sample.maps import new_registry
from ..sample.payload import rdp_cookie_reader
from ..config.addresses import NETNS_DIR
from .tcp_rules import build_response_rules, build_tcp_rules
from ..sample.registry import Context
from .http_rules import (SampleEnv, compile_error_pages, build_after_response, build_backend_rules,
                         build_hash_key, build_response_editor, build_router,
                         build_persist_rules, build_server_rules)

NOSRV = "<NOSRV>"


HTTP_CLOSE_MODES = {"http-keep-alive": CLOSE_NONE, "http-server-close": CLOSE_SERVER,
                    "httpclose": CLOSE_BOTH}
OBSERVE = {"layer4": shared.OBSERVE_LAYER4, "layer7": shared.OBSERVE_LAYER7}
PP2_OPTIONS = {"crc32c": PP2_OPT_CRC32C, "authority": PP2_OPT_AUTHORITY}


# -- the compiled specs: what the worker loop copies into its C structs, every HAProxy
#    default resolved (Worker.add_backend / add_frontend in fastlb/loop/core.pyx) ----------
@dataclass(frozen=True)
class ServerSpec:
    """One server (or a backend's dispatch address, ``model`` None): where the loop
    connects, and the state the shared memory starts from (runtime/generation.py)."""
    name: str
    model: Optional[Server]
    shm_index: int
    family: int
    ip: str
    port: int                     # 0: the port the client connected to
    maxqueue: int                 # 0: none
    maxconn: int                  # 0: none (kept in shared memory: the stats socket changes it)
    weight: int
    maint: bool                   # "disabled"
    checked: bool
    health: int                   # a disabled server starts at 0: rise once enabled
    observe: int                  # shm.OBSERVE_*
    send_proxy: int = 0           # loop SEND_PROXY_*: 0 none, 1 v1, 2 v2
    pp_opts: int = 0              # PP2_OPT_* bits for a v2 header
    tfo: bool = False             # TCP Fast Open on connect (first attempts with bytes to send)
    tcp_ut: int = 0               # TCP_USER_TIMEOUT of its connections and checks (ms)
    pool_purge_ms: int = 5000     # pool-purge-delay: idle connections halve each period (0: never)
    source: Optional[tuple] = None  # the server's own "source" (family, ip, port)
    usesrc: Optional[tuple] = None  # ... its usesrc (config.keywords.proxy.usesrc_target)
    source_interface: Optional[str] = None
    minconn: int = 0              # below maxconn: the dynamic limit's floor (see BackendSpec.fullconn)
    sockpair: Optional[int] = None  # sockpair@<fd>: the descriptor connections are passed over
    client_dst: bool = False      # option transparent: the address the client connected to
    namespace: Optional[str] = None  # the network namespace (its /var/run/netns path) its
                                     # connections are made in


@dataclass(frozen=True)
class BackendSpec:
    index: int
    servers: tuple                # ServerSpec per server
    algorithm: Algorithm          # fastlb/lb/algorithms.py
    consistent: bool              # hash-type consistent (else map-based)
    avalanche: bool
    key_name: bytes               # url_param / hdr() name, b"" for the others
    uri_len: int
    uri_depth: int
    uri_whole: bool
    hdr_domain_only: bool
    fullconn: int                 # servers with minconn < maxconn: their limit grows with the
                                  # backend's sessions up to this many (0: no such server)
    uri_path_only: bool
    draws: int
    hash_balance_factor: int      # bounded loads, percent of the mean (0: off)
    observed: bool                # some server has observe layer4|layer7
    http: bool
    http_close: int               # HTTP_CLOSE_MODES
    reuse_never: bool
    buffer_request: int           # 1: option http-buffer-request, 2: rules read the body
    buffer_response: bool         # the http-response rules read res.body
    t_connect: int                # timeouts in ms, 0: none
    t_server: int
    t_server_fin: int
    t_tunnel: int
    t_queue: int                  # timeout queue, else timeout connect
    retries: int
    redispatch: int               # 0: off, else HAProxy's interval (-1: the last retry)
    srvtcpka: bool
    srvtcpka_probes: tuple        # (cnt, idle s, intvl s), 0: the system's
    nolinger: bool                # option nolinger (server side)
    indep_streams: bool           # option independent-streams (the server's read timeout)
    smart_connect: bool           # option tcp-smart-connect: TCP_QUICKACK off before connect
    retry_on: int                 # retry-on bits (RE_* in defs.pxd); HTTP mode only
    source: object                # (family, ip, port) server sockets bind to, or None
    restrict_names: int           # http-restrict-req-hdr-names: 0 preserve, 1 delete, 2 reject
    prefer_last: bool             # option prefer-last-server
    transparent: int              # option transparent: its client-destination entry, -1: none
    max_ka_queue: int             # max-keep-alive-queue + 1 (0: wait behind any queue)
    case_adjust: bool             # option h1-case-adjust-bogus-server
    accept_invalid: bool          # option accept-invalid-http-response
    abortonclose: bool            # option abortonclose
    error_pages: dict             # {status: bytes} from errorfile lines
    response_editor: object       # http-response rules: edit(headers), or None
    request_rules: object         # its own http-request rules / stats page, or None
    cookie: object                # fastlb.http.cookies.Persistence, or None
    server_rules: object = None   # use-server: candidates(stream) -> [server], or None
    usesrc: object = None         # its source's usesrc (config.keywords.proxy.usesrc_target)
    source_interface: object = None
    persist_rules: object = None  # force-/ignore-persist: verdict(stream) -> PERSIST_*, or None
    persist: bool = False         # option persist
    checkcache: bool = False      # option checkcache
    pretend_keepalive: bool = False   # option http-pretend-keepalive
    hash_key: object = None       # balance hash <expr>: key(stream) -> bytes | None
    rdp_persist: object = None    # persist rdp-cookie: cookie(stream) -> bytes | None
    redirects: Optional[tuple] = None  # per server: its "redir" prefix (bytes) or None
    after_response: object = None  # http-after-response rules: edit(stream), or None
    res_rules: object = None      # tcp-response content: rules(stream) -> TCP_*, or None
    res_delay: int = 0            # tcp-response inspect-delay, ms
    name_header: bytes = b""      # http-send-name-header (lower case), b"": none
    server_names: tuple = ()      # the servers' names as that header gives them


@dataclass(frozen=True)
class FrontendSpec:
    index: int
    backend: int                  # -1: none
    http: bool
    http_close: int
    t_client: int
    t_client_fin: int
    t_http_request: int
    t_http_keep_alive: int
    clitcpka: bool
    clitcpka_probes: tuple        # (cnt, idle s, intvl s), 0: the system's
    nolinger: bool                # option nolinger (client side)
    indep_streams: bool           # option independent-streams (the client's read timeout)
    restrict_names: int           # http-restrict-req-hdr-names (a listen's: here)
    log_mode: int                 # LOG_*
    dontlognull: bool
    buffer_request: int           # 1: option http-buffer-request, 2: rules read the body
    buffer_response: bool         # the http-response rules read res.body
    ignore_probes: bool           # option http-ignore-probes
    error_pages: dict
    request_editor: object        # option forwardfor: edit(out, headers, client_ip), or None
    router: object                # per-request routing callable, or None
    response_editor: object
    captures: tuple               # ([(name, len)] | None for requests, ... for responses)
    streams: bool = False         # a Stream per request: the log format has %[...] fields
    tcp_rules: object = None      # tcp-request rules, tcp use_backend: runtime.tcp_rules.TcpRules
    log_addrs: bool = False       # the log format reads %fi/%fp/%bi/%bp
    logasap: bool = False         # option logasap
    case_adjust: bool = False     # option h1-case-adjust-bogus-client
    contstats: bool = False       # option contstats
    accept_invalid: bool = False  # option accept-invalid-http-request
    keep_idle_on_stop: bool = False   # option idle-close-on-response
    after_response: object = None  # http-after-response rules: edit(stream), or None
    capture_cookie: object = None  # capture cookie: (name bytes, length), or None
    sess_rate_limit: int = 0      # rate-limit sessions: per second, all workers, 0: none


# -- the tables: the specs, plus what the control plane and the logs read -------------------
@dataclass
class BackendTable:
    index: int
    proxy: Proxy
    spec: BackendSpec
    server_names: list
    server_models: list           # config.model.Server per entry (None for a dispatch address)
    first_server_shm: int

    def usable_servers(self, state: "shared.SharedState") -> list:
        """[(index, Server)] of the servers that may take new traffic now."""
        return [(i, server) for i, server in enumerate(self.server_models)
                if server is not None and state.server_usable(self.first_server_shm + i)]

    def usable_counts(self, state: "shared.SharedState") -> tuple:
        """(active, backup) usable servers, as HAProxy's state messages count them."""
        usable = self.usable_servers(state)
        backup = sum(1 for _, server in usable if server.backup)
        return len(usable) - backup, backup

    def lookup_builder(self, state: "shared.SharedState"):
        """``build() -> Lookup`` from the servers' current shared state and weights."""
        proxy, algorithm = self.proxy, self.spec.algorithm

        def build():
            views = []
            for i, server in enumerate(self.server_models):
                k = self.first_server_shm + i
                usable = state.server_usable(k)
                weight = state.load(state.server_word(k, shared.SRV_WEIGHT))
                views.append(ServerView(i, server.id if server else 1, weight,
                                        bool(server and server.backup), usable))
            return build_lookup(algorithm, proxy.hash_type == "consistent", views,
                                proxy.options.allbackups)

        return build


@dataclass
class FrontendTable:
    index: int
    proxy: Proxy
    spec: FrontendSpec
    log_format: Optional[list]    # compiled log-format (or the default one) for a frontend that
                                  # logs tcplog/httplog lines; None for the others
    listeners: list = field(default_factory=list)
    log_format_sd: Optional[object] = None   # log-format-sd, compiled: RFC 5424 structured data
    error_log_format: Optional[object] = None  # error-log-format, compiled: connection errors

    @property
    def backend(self) -> int:
        return self.spec.backend

    @property
    def log_mode(self) -> int:
        return self.spec.log_mode


@dataclass
class RuntimeTables:
    config: Config
    frontends: list
    backends: list
    nservers: int
    applets: Applets = None       # stats page and Prometheus answers
    state: object = None          # the SharedState, attached by the master before it forks
    maps: object = None           # the map files (sample.maps.MapRegistry)

    def backend_name(self, fe: int, be: int) -> str:
        return self.backends[be].proxy.name if be >= 0 else self.frontends[fe].proxy.name

    def server_name(self, be: int, srv: int) -> str:
        if be < 0 or srv < 0:
            return NOSRV
        return self.backends[be].server_names[srv]


def compile_tables(config: Config) -> RuntimeTables:
    """The model -> runtime step, whole: the master runs it once per configuration, and
    workers only copy its specs into their C structs."""
    applets = Applets(None)
    maps = new_registry()         # the map files this configuration's converters load
    env = SampleEnv(config, applets)
    backends: list[BackendTable] = []
    by_name: dict[str, int] = {}
    nservers = 0
    for proxy in config.backends:
        table = compile_backend(proxy, len(backends), nservers, applets, env)
        by_name[proxy.name] = table.index
        nservers += len(table.spec.servers)
        backends.append(table)
    frontends = [compile_frontend(proxy, index, by_name, applets, env)
                 for index, proxy in enumerate(config.frontends)]
    tables = RuntimeTables(config=config, frontends=frontends, backends=backends,
                           nservers=nservers, applets=applets, maps=maps)
    applets.tables = tables
    return tables


RESTRICT_NAMES = {"preserve": 0, "delete": 1, "reject": 2}


def server_spec(server: Optional[Server], address, shm_index: int) -> ServerSpec:
    if server is None:            # a dispatch address: HAProxy logs it as <NOSRV>
        return ServerSpec(name=NOSRV, model=None, shm_index=shm_index, family=address.family,
                          ip=address.ip, port=address.port, maxqueue=0, maxconn=0, weight=1,
                          maint=False, checked=False, health=1, observe=shared.OBSERVE_NONE)
    # as HAProxy: minconn alone (or above maxconn) is the maxconn; maxconn alone a static one
    maxconn = max(server.maxconn or 0, server.minconn)
    return ServerSpec(name=server.name, model=server, shm_index=shm_index,
                      family=server.address.family, ip=server.address.ip,
                      port=server.address.port, maxqueue=server.maxqueue,
                      maxconn=maxconn, weight=server.weight,
                      maint=bool(server.disabled), checked=bool(server.check),
                      health=0 if server.disabled else server.rise,
                      observe=OBSERVE.get(server.observe, 0) if server.check
                      else shared.OBSERVE_NONE, send_proxy=server.send_proxy,
                      pp_opts=sum(PP2_OPTIONS[name] for name in server.pp_options),
                      pool_purge_ms=server.pool_purge_delay, source=server.source,
                      usesrc=server.usesrc, source_interface=server.source_interface,
                      tfo=server.tfo, sockpair=server.address.sockpair,
                      tcp_ut=server.tcp_ut if server.address.family in
                      (socket.AF_INET, socket.AF_INET6) else 0,
                      minconn=server.minconn or maxconn,
                      namespace=os.path.join(NETNS_DIR, server.namespace)
                      if server.namespace else None)


def server_cookie(proxy: Proxy, server: ServerSpec) -> Optional[str]:
    """The server's ``cookie`` value, or with ``cookie ... dynamic`` and a
    ``dynamic-cookie-key`` the hash HAProxy derives from its address and port."""
    if server.model is None:
        return None
    if server.model.cookie is not None:
        return server.model.cookie
    if proxy.cookie.dynamic and proxy.dynamic_cookie_key is not None:
        return dynamic_cookie(proxy.dynamic_cookie_key, server.family, server.ip, server.port)
    return None


def compile_backend(proxy: Proxy, index: int, first_shm: int, applets: Applets,
                    env: SampleEnv) -> BackendTable:
    servers = [server_spec(server, None, first_shm + i) for i, server in enumerate(proxy.servers)]
    if not servers and proxy.dispatch is not None:
        servers.append(server_spec(None, proxy.dispatch, first_shm))
    transparent = -1
    if proxy.options.transparent and proxy.dispatch is None:
        # HAProxy's transparent mode: what no server takes (a cookie, use-server) goes to
        # the address the client connected to, logged as <NOSRV>; never balanced to
        transparent = len(servers)
        servers.append(dataclasses.replace(
            server_spec(None, ServerAddress(socket.AF_INET, "0.0.0.0", "0.0.0.0", 0),
                        first_shm + len(servers)), client_dst=True, weight=0))
    t, args = proxy.timeouts, proxy.balance_args
    http = proxy.mode == "http"
    cookie = None
    if proxy.cookie is not None and http:
        cookie = Persistence(proxy.cookie, [server_cookie(proxy, s) for s in servers],
                             real_servers=[s.model is not None for s in servers])
    spec = BackendSpec(
        index=index, servers=tuple(servers), algorithm=ALGORITHMS[proxy.balance],
        consistent=proxy.hash_type == "consistent", avalanche=bool(proxy.hash_avalanche),
        key_name=(args.get("param") or args.get("header") or "").encode(),
        uri_len=args.get("len", 0), uri_depth=args.get("depth", 0),
        uri_whole=bool(args.get("whole")), uri_path_only=bool(args.get("path_only")),
        hdr_domain_only=bool(args.get("domain_only")),
        fullconn=backend_fullconn(env.config, proxy, default_maxconn(env.config))
        if any(s.minconn < s.maxconn for s in servers) else 0,
        draws=args.get("draws", 2),
        # HAProxy bounds only consistent hashing's picks (and random's draws)
        hash_balance_factor=proxy.hash_balance_factor
        if proxy.hash_type == "consistent" or proxy.balance == "random" else 0,
        observed=any(s.observe and s.check for s in proxy.servers), http=http,
        http_close=HTTP_CLOSE_MODES[proxy.options.http_mode],
        reuse_never=proxy.http_reuse == "never",
        buffer_request=buffer_request(proxy),
        buffer_response=proxy.mode == "http" and _mentions_body(
            (proxy.http_response_rules, proxy.acls), "res.body"),
        t_connect=t.connect or 0, t_server=t.server or 0, t_server_fin=t.server_fin or 0,
        t_tunnel=t.tunnel or 0, t_queue=t.queue or t.connect or 0, retries=proxy.retries,
        redispatch=proxy.options.redispatch or 0, srvtcpka=bool(proxy.options.srvtcpka),
        srvtcpka_probes=(proxy.options.srvtcpka_cnt, proxy.options.srvtcpka_idle,
                         proxy.options.srvtcpka_intvl),
        nolinger=bool(proxy.options.nolinger),
        indep_streams=proxy.options.independent_streams,
        smart_connect=proxy.options.tcp_smart_connect, source=proxy.source,
        usesrc=proxy.usesrc, source_interface=proxy.source_interface,
        retry_on=proxy.retry_on,
        prefer_last=bool(proxy.options.prefer_last_server), max_ka_queue=proxy.max_ka_queue,
        transparent=transparent,
        case_adjust=proxy.options.h1_case_adjust_bogus_server and http,
        accept_invalid=bool(proxy.options.accept_invalid_http_response),
        abortonclose=bool(proxy.options.abortonclose),
        restrict_names=RESTRICT_NAMES[proxy.options.restrict_hdr_names]
        if proxy.kind == "backend" and proxy.mode == "http" else 0,
        error_pages=compile_error_pages(proxy, env),
        response_editor=build_response_editor(proxy, env),
        request_rules=build_backend_rules(proxy, applets, env), cookie=cookie,
        server_rules=build_server_rules(proxy, env), hash_key=build_hash_key(proxy, env),
        rdp_persist=rdp_cookie_reader(proxy.rdp_persist) if proxy.rdp_persist else None,
        redirects=tuple(s.redir.encode("utf-8", "surrogateescape") if s.redir is not None
                        else None for s in proxy.servers)
        if http and any(s.redir is not None for s in proxy.servers) else None,
        persist_rules=build_persist_rules(proxy, env) if http else None,
        persist=proxy.options.persist, checkcache=proxy.options.checkcache,
        pretend_keepalive=proxy.options.http_pretend_keepalive,
        # a listen section's run as its frontend's: on its answers before any routing too
        after_response=build_after_response(proxy, env) if proxy.kind != "listen" else None,
        res_rules=build_response_rules(proxy, env), res_delay=proxy.res_inspect_delay or 0,
        name_header=(proxy.send_name_header or "").encode() if http else b"",
        server_names=tuple(s.name.encode() for s in proxy.servers))
    return BackendTable(index=index, proxy=proxy, spec=spec,
                        server_names=[s.name for s in servers],
                        server_models=[s.model for s in servers], first_server_shm=first_shm)


def buffer_request(proxy: Proxy) -> int:
    """What the loop does with a request body before this proxy's rules (http_body.pxd):
    1 waits for it (option http-buffer-request), 2 hands the rules what came with the
    head (they read req.body* without waiting), 0 nothing (the rules never read it)."""
    if proxy.mode != "http":
        return 0
    if proxy.options.http_buffer_request:
        return 1
    return 2 if _mentions_body((proxy.http_request_rules, proxy.acls,
                                proxy.switching_rules, proxy.redirect_rules)) else 0


def _mentions_body(value, fetch: str = "req.body", depth: int = 0) -> bool:
    """Some text in these rules, conditions or ACLs names a ``fetch`` (req.body*)."""
    if depth > 12:
        return False
    if isinstance(value, str):
        return fetch in value
    if isinstance(value, dict):
        return any(_mentions_body(v, fetch, depth + 1) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_mentions_body(v, fetch, depth + 1) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(_mentions_body(getattr(value, f.name), fetch, depth + 1)
                   for f in dataclasses.fields(value))
    return False


def default_log_format(proxy: Proxy) -> str:
    """option httplog (with or without captures) in mode http, else option tcplog."""
    if proxy.mode != "http":
        return TCPLOG
    if proxy.options.httplog_clf:
        return CLFLOG
    return HTTPLOG if proxy.captures_req or proxy.captures_rsp else HTTPLOG_NO_CAPTURE


def compile_frontend(proxy: Proxy, index: int, by_name: dict, applets: Applets,
                     env: SampleEnv) -> FrontendTable:
    unconditional = [name for name, cond, _ in proxy.switching_rules if cond is None]
    if unconditional and not any(c for _, c, _ in proxy.switching_rules):
        target = unconditional[0]              # an unconditional use_backend wins
    elif proxy.default_backend:
        target = proxy.default_backend
    elif proxy.kind == "listen":
        target = proxy.name
    else:
        target = None
    backend = by_name.get(target, -1) if target else -1
    log_mode = LOG_NONE
    if proxy.logs:
        if proxy.mode == "http" and (proxy.options.httplog or proxy.log_format):
            log_mode = LOG_HTTPLOG
        elif proxy.options.tcplog or proxy.options.httplog or proxy.log_format:
            log_mode = LOG_TCPLOG      # at the end of the session, in its log format
        else:
            log_mode = LOG_CONNECT
    t = proxy.timeouts
    log_format = compile_format(proxy.log_format or default_log_format(proxy),
                                Context("log", env, proxy.name)) \
        if log_mode in (LOG_TCPLOG, LOG_HTTPLOG) else None
    log_format_sd = compile_format(proxy.log_format_sd, Context("log", env, proxy.name)) \
        if log_format is not None and proxy.log_format_sd else None
    error_log_format = compile_format(proxy.error_log_format, Context("log", env, proxy.name)) \
        if log_mode != LOG_NONE and proxy.error_log_format else None
    spec = FrontendSpec(
        index=index, backend=backend, http=proxy.mode == "http",
        http_close=HTTP_CLOSE_MODES[proxy.options.http_mode],
        t_client=t.client or 0, t_client_fin=t.client_fin or 0,
        t_http_request=t.http_request or 0, t_http_keep_alive=t.http_keep_alive or 0,
        clitcpka=bool(proxy.options.clitcpka), nolinger=bool(proxy.options.nolinger),
        indep_streams=proxy.options.independent_streams,
        clitcpka_probes=(proxy.options.clitcpka_cnt, proxy.options.clitcpka_idle,
                         proxy.options.clitcpka_intvl),
        restrict_names=RESTRICT_NAMES[proxy.options.restrict_hdr_names]
        if proxy.mode == "http" else 0,
        log_mode=log_mode,
        dontlognull=bool(proxy.options.dontlognull),
        ignore_probes=proxy.mode == "http" and bool(proxy.options.ignore_probes),
        buffer_request=buffer_request(proxy),
        buffer_response=proxy.mode == "http" and _mentions_body(
            (proxy.http_response_rules, proxy.acls), "res.body"),
        error_pages=compile_error_pages(proxy, env),
        request_editor=forwardfor_editor(proxy, env.config.backends),
        router=build_router(proxy, by_name, backend, applets, env),
        # a listen section's http-response rules run once, as its backend's
        response_editor=build_response_editor(proxy, env) if proxy.kind != "listen" else None,
        captures=(proxy.captures_req or None, proxy.captures_rsp or None),
        capture_cookie=(proxy.capture_cookie[0].encode("latin-1"), proxy.capture_cookie[1])
        if proxy.capture_cookie and proxy.mode == "http" else None,
        tcp_rules=build_tcp_rules(proxy, by_name, backend, env),
        after_response=build_after_response(proxy, env),
        streams=any(f is not None and f.samples
                    for f in (log_format, log_format_sd, error_log_format)),
        log_addrs=any(f is not None and f.addresses
                      for f in (log_format, log_format_sd, error_log_format)),
        logasap=bool(proxy.options.logasap),
        case_adjust=proxy.options.h1_case_adjust_bogus_client and proxy.mode == "http",
        contstats=bool(proxy.options.contstats),
        accept_invalid=bool(proxy.options.accept_invalid_http_request),
        keep_idle_on_stop=bool(proxy.options.idle_close_on_response),
        sess_rate_limit=proxy.rate_limit_sessions)
    return FrontendTable(index=index, proxy=proxy, spec=spec, log_format=log_format,
                         log_format_sd=log_format_sd, error_log_format=error_log_format,
                         listeners=list(proxy.listeners))


def merged_address_header(fe_setting, be_setting):
    """HAProxy's rule for option forwardfor / originalto set in a frontend, its backend
    or both: the header is added when either has the option and neither excludes the
    address; the backend's header name wins, and either's if-none applies."""
    if fe_setting is None and be_setting is None:
        return None
    settings = [x for x in (fe_setting, be_setting) if x is not None]
    header = (be_setting or fe_setting).header.encode()
    excluded = [x.except_net for x in settings if x.except_net is not None]
    if_none = any(x.if_none for x in settings)
    return header, excluded, if_none


def forwardfor_editor(proxy: Proxy, backends: list = ()):
    """option forwardfor / originalto: ``edit(out, headers, client_ip, dst_ip="", be=-1)``
    adding the headers to each forwarded request head, or None.  ``backends``: the
    backends' proxies by index (their options merge with the frontend's).  ``dst_ip`` is
    "" unless originalto wants it (the loop then looks the address up)."""
    if proxy.mode != "http":
        return None
    own = merged_address_header(proxy.options.forwardfor, None), \
        merged_address_header(proxy.options.originalto, None)
    per_backend = [(merged_address_header(proxy.options.forwardfor, be.options.forwardfor),
                    merged_address_header(proxy.options.originalto, be.options.originalto))
                   for be in backends]
    if not any(own) and not any(any(pair) for pair in per_backend):
        return None

    def add(setting, out, headers, ip: str) -> None:
        header, excluded, if_none = setting
        if not ip or ip == "unix":
            return                # a UNIX socket has no address to give (as in HAProxy)
        if if_none and any(name == header for name, _ in headers):
            return
        if excluded and any(ipaddress.ip_address(ip) in net for net in excluded):
            return
        out += [header, b": ", ip.encode(), b"\r\n"]

    def edit(out, headers, client_ip, dst_ip="", be=-1):
        ff, ot = per_backend[be] if 0 <= be < len(per_backend) else own
        if ff is not None:
            add(ff, out, headers, client_ip)
        if ot is not None:
            add(ot, out, headers, dst_ip)

    edit.wants_dst = own[1] is not None or any(ot for _, ot in per_backend)
    return edit
