"""Typed model -> the flat, index-based tables the Cython worker loop reads.

Compiled once in the master (before forking), so every worker starts from the
same tables and the same shared-counter layout.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

from ..config.model import Config, Proxy
from ..http.acl import ConditionCompiler, PrefixSwitch, Request
from ..http.rules import apply_header_rule, redirect_response, return_response
from ..lb.lookup import ALGORITHMS, ServerView, build_lookup
from ..applets.page import Applets, StatsPage
from .. import shm as shared

LOG_NONE, LOG_CONNECT, LOG_TCPLOG, LOG_HTTPLOG = 0, 1, 2, 3
NOSRV = "<NOSRV>"


@dataclass
class BackendTable:
    index: int
    proxy: Proxy
    servers: list                 # [(family, ip, port, maxqueue)] (+ dispatch); maxconn is
                                  # in shared memory (the stats socket may change it)
    server_names: list
    server_models: list           # config.model.Server per entry (None for a dispatch address)
    algorithm: int                # fastlb.lb.lookup.LB_*
    options: dict                 # algorithm options for the worker (see Worker.add_backend)
    first_server_shm: int
    rules: object = None          # the backend's own http-request rules / stats page, or None

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
        proxy = self.proxy

        def build():
            views = []
            for i, server in enumerate(self.server_models):
                k = self.first_server_shm + i
                usable = state.server_usable(k)
                weight = state.load(state.server_word(k, shared.SRV_WEIGHT))
                views.append(ServerView(i, server.id if server else 1, weight,
                                        bool(server and server.backup), usable))
            return build_lookup(self.algorithm, proxy.hash_type == "consistent", views,
                                proxy.options.allbackups)

        return build


@dataclass
class FrontendTable:
    index: int
    proxy: Proxy
    backend: int                  # -1: none
    log_mode: int
    listeners: list = field(default_factory=list)
    router: object = None          # per-request routing callable (mode http with rules), or None


@dataclass
class RuntimeTables:
    config: Config
    frontends: list
    backends: list
    nservers: int
    applets: Applets = None       # stats page and Prometheus answers
    state: object = None          # the SharedState, attached by the master before it forks

    def backend_name(self, fe: int, be: int) -> str:
        return self.backends[be].proxy.name if be >= 0 else self.frontends[fe].proxy.name

    def server_name(self, be: int, srv: int) -> str:
        if be < 0 or srv < 0:
            return NOSRV
        return self.backends[be].server_names[srv]


def compile_tables(config: Config) -> RuntimeTables:
    backends: list[BackendTable] = []
    by_name: dict[str, int] = {}
    nservers = 0
    for proxy in config.backends:
        servers, names, models = [], [], []
        for server in proxy.servers:
            servers.append((server.address.family, server.address.ip, server.address.port,
                            server.maxqueue))
            names.append(server.name)
            models.append(server)
        if not proxy.servers and proxy.dispatch is not None:
            # HAProxy logs dispatched sessions as <NOSRV>.
            address = proxy.dispatch
            servers.append((address.family, address.ip, address.port, 0))
            names.append(NOSRV)
            models.append(None)
        options = dict(proxy.balance_args)
        options["consistent"] = int(proxy.hash_type == "consistent")
        options["avalanche"] = int(proxy.hash_avalanche)
        options["observed"] = int(any(s.observe and s.check for s in proxy.servers))
        options["reuse_never"] = int(proxy.http_reuse == "never")
        table = BackendTable(index=len(backends), proxy=proxy, servers=servers, server_names=names,
                             server_models=models, algorithm=ALGORITHMS[proxy.balance],
                             options=options, first_server_shm=nservers)
        by_name[proxy.name] = table.index
        nservers += len(servers)
        backends.append(table)

    applets = Applets(None)
    frontends: list[FrontendTable] = []
    for proxy in config.frontends:
        unconditional = [name for name, cond, _ in proxy.switching_rules if cond is None]
        if unconditional and not any(c for _, c, _ in proxy.switching_rules):
            target = unconditional[0]              # an unconditional use_backend wins
        elif proxy.default_backend:
            target = proxy.default_backend
        elif proxy.kind == "listen":
            target = proxy.name
        else:
            target = None
        log_mode = LOG_NONE
        if proxy.logs:
            if proxy.mode == "http" and (proxy.options.httplog or proxy.log_format):
                log_mode = LOG_HTTPLOG
            elif proxy.options.tcplog or proxy.options.httplog or proxy.log_format:
                log_mode = LOG_TCPLOG      # at the end of the session, in its log format
            else:
                log_mode = LOG_CONNECT
        frontends.append(FrontendTable(index=len(frontends), proxy=proxy,
                                       backend=by_name.get(target, -1) if target else -1,
                                       log_mode=log_mode, listeners=list(proxy.listeners),
                                       router=build_router(proxy, by_name,
                                                           by_name.get(target, -1) if target else -1,
                                                           applets)))
    for table in backends:
        table.rules = build_backend_rules(table.proxy, applets)
    tables = RuntimeTables(config=config, frontends=frontends, backends=backends,
                           nservers=nservers, applets=applets)
    applets.tables = tables
    return tables


# What the router tells the worker loop (fastlb/_http.pxi keeps the same numbers).
ROUTE_BACKEND, ROUTE_DENY, ROUTE_RESPOND, ROUTE_RAW, ROUTE_REJECT, ROUTE_APPLET = range(6)


def monitor_matches(monitor: bytes, url: bytes) -> bool:
    """HAProxy's monitor-uri test: a value starting with "/" is compared with the path
    part of the target (query included), anything else with the whole target."""
    if not monitor.startswith(b"/"):
        return url == monitor
    if not url.startswith(b"/") and b"://" in url:
        slash = url.find(b"/", url.find(b"://") + 3)
        url = url[slash:] if slash >= 0 else b""
    return url == monitor


def nbsrv_fetch(applets: Applets):
    """``nbsrv(<backend>)``: the usable servers of a backend, read from the shared state at
    request time (its active servers, else its backup servers, as HAProxy counts)."""
    def resolve(name: str):
        def count() -> int:
            backend = next(be for be in applets.tables.backends if be.proxy.name == name)
            active, backup = backend.usable_counts(applets.state)
            return active or backup
        return count
    return resolve


def stats_check(proxy: Proxy, applets: Applets, compiler: ConditionCompiler):
    """``check(request) -> (ROUTE_APPLET, answer) | None`` for a proxy with a stats page."""
    if proxy.stats is None or proxy.mode != "http":
        return None
    page = StatsPage(applets, proxy)
    admin = [compiler.compile(cond) for cond in proxy.stats.admin]

    def check(request):
        if not page.matches(request.method, request.url):
            return None
        allowed = any(matches(request) for matches in admin)
        return ROUTE_APPLET, functools.partial(page.answer, admin=allowed)

    return check


def build_router(proxy: Proxy, by_name: dict, default: int, applets: Applets = None):
    """``route(method, url, headers, src, dst_port, version) -> (ROUTE_*, value)`` for an
    HTTP frontend with rules, conditional switching, a monitor-uri or a stats page; None
    otherwise.  Header rules edit ``headers`` in place.  Order as HAProxy's: monitor-uri,
    http-request rules, the stats page, then backend switching."""
    if proxy.mode != "http" or not (proxy.http_request_rules or proxy.monitor_uri or
                                    proxy.stats or
                                    any(c for _, c, _ in proxy.switching_rules)):
        return None
    monitor = proxy.monitor_uri.encode("utf-8", "surrogateescape") \
        if proxy.monitor_uri is not None else None
    compiler = ConditionCompiler(proxy.acls, nbsrv=nbsrv_fetch(applets))
    monitor_fail = compiler.compile(proxy.monitor_fail) if proxy.monitor_fail else None
    rules = [(rule, compiler.compile(rule.condition)) for rule in proxy.http_request_rules]
    switches = compile_switching(proxy.switching_rules, compiler, by_name)
    stats = stats_check(proxy, applets, compiler)

    def route(method, url, headers, src, dst_port, version):
        request = Request(method, url, headers, src, dst_port, version)
        if monitor is not None and monitor_matches(monitor, request.url):
            # "monitor fail": the node reports itself down (keepalived's check fails)
            return ROUTE_RESPOND, 503 if monitor_fail and monitor_fail(request) else 200
        verdict = run_request_rules(rules, request, headers, applets)
        if verdict is not None:
            return verdict
        if stats is not None:
            verdict = stats(request)
            if verdict is not None:
                return verdict
        for matches, backend in switches:
            if isinstance(matches, PrefixSwitch):
                position = matches.first(request.path)
                if position is not None:
                    return ROUTE_BACKEND, backend[position]
            elif matches(request):
                return ROUTE_BACKEND, backend
        return ROUTE_BACKEND, default

    return route


def compile_switching(rules: list, compiler: ConditionCompiler, by_name: dict) -> list:
    """use_backend rules in order as (condition, backend) steps; consecutive path_beg-only
    rules become one (PrefixSwitch, [backend per rule]) step."""
    steps: list = []
    for name, cond, _ in rules:
        patterns = compiler.prefix_patterns(cond)
        if patterns is None:
            steps.append((compiler.compile(cond), by_name[name]))
            continue
        if not steps or not isinstance(steps[-1][0], PrefixSwitch):
            steps.append((PrefixSwitch(), []))
        switch, backends = steps[-1]
        switch.add(patterns)
        backends.append(by_name[name])
    return steps


def run_request_rules(rules: list, request: Request, headers: list, applets=None):
    """http-request rules in order: a final verdict (deny, reject, return, redirect,
    use-service), or None once every header rule that matched has edited ``headers``."""
    for rule, matches in rules:
        if not matches(request):
            continue
        action = rule.action
        if action == "use-service":
            return ROUTE_APPLET, applets.prometheus
        if action == "deny":
            return ROUTE_DENY, rule.status
        if action == "reject":
            return ROUTE_REJECT, 0
        if action == "return":
            return ROUTE_RAW, return_response(rule, request)
        if action == "redirect":
            return ROUTE_RAW, redirect_response(rule, request)
        apply_header_rule(rule, headers, request)
    return None


def build_backend_rules(proxy: Proxy, applets: Applets = None):
    """``rules(method, url, headers, src, dst_port, version) -> verdict | None`` for a
    backend's own http-request rules and stats page (a listen section's run with its
    frontend part)."""
    if proxy.kind != "backend" or proxy.mode != "http" or not (proxy.http_request_rules or
                                                                proxy.stats):
        return None
    compiler = ConditionCompiler(proxy.acls, nbsrv=nbsrv_fetch(applets))
    rules = [(rule, compiler.compile(rule.condition)) for rule in proxy.http_request_rules]
    stats = stats_check(proxy, applets, compiler)

    def apply(method, url, headers, src, dst_port, version):
        request = Request(method, url, headers, src, dst_port, version)
        verdict = run_request_rules(rules, request, headers, applets)
        if verdict is None and stats is not None:
            verdict = stats(request)
        return verdict

    return apply


def build_response_editor(proxy: Proxy, applets: Applets = None):
    """``edit(headers)`` applying the proxy's http-response rules, or None."""
    if proxy.mode != "http" or not proxy.http_response_rules:
        return None
    compiler = ConditionCompiler(proxy.acls, nbsrv=nbsrv_fetch(applets))
    rules = [(rule, compiler.compile(rule.condition)) for rule in proxy.http_response_rules]

    def edit(headers):
        # conditions see the response's headers (request fetches are not kept yet)
        view = Request(b"", b"", headers, "", 0, b"")
        for rule, matches in rules:
            if matches(view):
                apply_header_rule(rule, headers, view)

    return edit
