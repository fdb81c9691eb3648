"""A proxy's HTTP rules as the hooks the worker loop calls with a ``Stream``.

``build_router`` (a frontend: monitor-uri, http-request rules, stats page, backend
switching), ``build_backend_rules`` (a backend's own http-request rules and stats page)
and ``build_response_editor`` (http-response rules) compile the proxy's conditions and
rule values once, for the place they run in, with a ``SampleEnv`` that answers the
fetches of run-time state.
"""
from __future__ import annotations

import functools
import os
from typing import Optional

from ..applets.page import Applets, StatsPage
from ..config.model import Proxy
from ..http.acl import ConditionCompiler, PrefixSwitch
from ..http.errors import builtin_page
from ..http.rules import (ADDRESS_ACTIONS, HEADER_ACTIONS, LINE_ACTIONS, MAP_ACTIONS, PRIORITY_ACTIONS,
                          SOCKET_ACTIONS, VAR_ACTIONS, CompiledRule, InvalidRequest,
                          apply_address_rule, apply_map_rule,
                          apply_capture, apply_socket_rule, apply_header_rule, apply_line_rule,
                          apply_early_hint, apply_normalizer, apply_timeout_rule, apply_var_rule, auth_page,
                          apply_priority_rule,
                          LocalAnswer, LocalStatus, compile_rule, redirect_response,
                          return_response)
from ..loop.core import (ROUTE_APPLET, ROUTE_BACKEND, ROUTE_DENY, ROUTE_PAGE, ROUTE_RAW,
                         ROUTE_REJECT, ROUTE_RESPOND, ROUTE_TARPIT, ROUTE_WAIT_BODY)
from ..logformat import compile_format as compile_log_format, unique_id_maker
from ..sample import Context, SampleError, compile_expr, compile_format
from ..sample.payload import rdp_cookie_reader
from ..sample.stream import split_target
from ..sample.types import BIN, dynamic_cast
from .. import shm as shared


class SampleEnv:
    """What fetches of run-time state read: names and ids from the configuration, counts
    and health from the shared state (attached to the tables before the workers fork)."""

    def __init__(self, config, applets: Applets):
        self.config = config
        self.applets = applets
        # a proxy's relative file names (maps in converters) are read from where its
        # section's lines were (default-path); a section never spans two files
        self._bases = {}
        for proxy in reversed(config.proxies):
            self._bases[proxy.name] = proxy.origin.base
        self.by_name = {proxy.name: i for i, proxy in enumerate(config.backends)}
        self._fe_names = [p.name.encode() for p in config.frontends]
        self._be_names = [p.name.encode() for p in config.backends]

    # -- names and ids (static) --
    def backend_index(self, name: str) -> int:
        if name not in self.by_name:
            raise SampleError(f"no such backend '{name}'")
        return self.by_name[name]

    def server_index(self, be: int, name: str) -> int:
        for i, server in enumerate(self.config.backends[be].servers):
            if server.name == name:
                return i
        raise SampleError(f"no such server '{name}' in backend "
                          f"'{self.config.backends[be].name}'")

    def base_dir(self, proxy: str) -> str:
        return self._bases.get(proxy, ".")

    def frontend_name(self, fe: int):
        return self._fe_names[fe] if fe >= 0 else None

    def frontend_id(self, fe: int):
        return self.config.frontends[fe].id if fe >= 0 else None

    def listener_name(self, fe: int, luid: int):
        if fe < 0 or luid <= 0:
            return None
        for listener in self.config.frontends[fe].listeners:
            if listener.id == luid:
                return listener.name.encode() if listener.name else None
        return None

    def frontend_default_backend(self, fe: int):
        name = self.config.frontends[fe].default_backend if fe >= 0 else None
        return name.encode() if name else None

    def default_backend(self, fe: int) -> int:
        name = self.config.frontends[fe].default_backend if fe >= 0 else None
        return self.by_name.get(name, -1) if name else -1

    def backend_name(self, be: int):
        return self._be_names[be] if be >= 0 else None

    def backend_id(self, be: int):
        return self.config.backends[be].id if be >= 0 else None

    def server_name(self, be: int, srv: int):
        if be < 0 or srv < 0:
            return None
        servers = self.config.backends[be].servers
        return servers[srv].name.encode() if srv < len(servers) else None

    def server_id(self, be: int, srv: int):
        if be < 0 or srv < 0 or srv >= len(self.config.backends[be].servers):
            return None
        return self.config.backends[be].servers[srv].id

    def userlist(self, name: str):
        if name not in self.config.userlists:
            raise SampleError(f"no such userlist '{name}'")
        return self.config.userlists[name]

    # -- run-time state (the shared memory) --
    @property
    def _tables(self):
        return self.applets.tables

    def usable_servers(self, be: int) -> int:
        if be < 0:
            return 0
        active, backup = self._tables.backends[be].usable_counts(self._tables.state)
        return active or backup

    def backend_conn(self, be: int) -> int:
        if be < 0:
            return 0
        state = self._tables.state
        return state.summed(state.be_off + self._tables.backends[be].index)

    def backend_queue(self, be: int) -> int:
        if be < 0:
            return 0
        state = self._tables.state
        return state.total(state.beq_off + self._tables.backends[be].index)

    def connslots(self, be: int) -> int:
        """Free connection and queue slots of the usable servers (-1: unlimited)."""
        if be < 0:
            return 0
        table, state = self._tables.backends[be], self._tables.state
        free = 0
        for server, spec in zip(table.server_models, table.spec.servers):
            k = spec.shm_index
            if not state.server_usable(k):
                continue
            if not spec.maxconn:
                return -1
            free += max(0, spec.maxconn - state.summed(state.srv_off + k))
            free += max(0, spec.maxqueue - state.total(state.srvq_off + k)) \
                if spec.maxqueue else 0
        return free

    def _server_shm(self, be: int, srv: int) -> int:
        return self._tables.backends[be].first_server_shm + srv

    def server_conn(self, be: int, srv: int) -> int:
        state = self._tables.state
        return state.summed(state.srv_off + self._server_shm(be, srv))

    def server_queue(self, be: int, srv: int) -> int:
        state = self._tables.state
        return state.total(state.srvq_off + self._server_shm(be, srv))

    def server_is_up(self, be: int, srv: int) -> bool:
        return self._tables.state.server_up(self._server_shm(be, srv))

    def stopping(self) -> bool:
        return bool(self._tables.state.load(self._tables.state.global_base + shared.G_SHUTDOWN))

    def worker_id(self) -> int:
        """This worker's number, from 0 (the master, reading a config: 0)."""
        return WORKER_ID[0]


WORKER_ID = [0]             # set by the worker at its start (runtime/worker.py)


def place_of(proxy: Proxy, response: bool) -> str:
    if response:
        return "http-response"
    return "frontend http-request" if proxy.kind == "frontend" else "backend http-request"


def compile_rules(rules: list, compiler: ConditionCompiler, ctx: Context,
                  proxy: Proxy = None) -> list:
    compiled = [compile_rule(rule, compiler.compile(rule.condition), ctx) for rule in rules]
    for i, c in enumerate(compiled):
        if c.rule.action == "early-hint":
            # one 103 for a run: an early-hint and the unconditional ones right after it
            previous = compiled[i - 1] if i else None
            c.slot = previous.slot if previous is not None and \
                previous.rule.action == "early-hint" and c.rule.condition is None else (i,)
        elif c.rule.action == "capture":
            slots = proxy.captures_rsp if ctx.place in ("http-response", "http-after-response") \
                else proxy.captures_req
            c.slot = (int(c.rule.name), slots[int(c.rule.name)][1])
        elif c.rule.action == "auth":         # the proxy's 401 page, or HAProxy's
            pages = (proxy.errorfiles or {}) if proxy is not None else {}
            realm = c.rule.reason or proxy.name
            c.page, c.proxy_page = (
                auth_page(page, realm, proxy_auth) if isinstance(page, bytes) else
                AuthPage(LogFormatPage(compile_rule(page, None, Context(
                    "http-error", ctx.env, proxy.name))), realm, proxy_auth)
                for page, proxy_auth in ((pages.get(401) or builtin_page(401), False),
                                         (pages.get(407) or builtin_page(407), True)))
    return compiled


class LogFormatPage:
    """An http-error page with log-format parts (lf-string, lf-file, %[...] in hdr), made
    for each answer from the request (and response) it answers."""
    __slots__ = ("compiled",)

    def __init__(self, compiled: CompiledRule):
        self.compiled = compiled

    def __call__(self, stream) -> bytes:
        return return_response(self.compiled, stream)


class AuthPage:
    """The 401/407 challenge on a log-format page."""
    __slots__ = ("page", "realm", "proxy")

    def __init__(self, page, realm: str, proxy: bool):
        self.page, self.realm, self.proxy = page, realm, proxy

    def __call__(self, stream) -> bytes:
        return auth_page(self.page(stream), self.realm, self.proxy)


def compile_error_pages(proxy: Proxy, env) -> dict:
    """The proxy's pages by status: bytes, or a LogFormatPage for an http-error line with
    log-format parts."""
    pages = dict(proxy.errorfiles or {})
    for status, page in pages.items():
        if not isinstance(page, bytes):
            pages[status] = LogFormatPage(compile_rule(page, None, Context("http-error", env,
                                                                           proxy.name)))
    return pages


def monitor_matches(monitor: bytes, url: bytes) -> bool:
    """HAProxy's monitor-uri test: a value starting with "/" is compared with the path
    part of the target (query included), anything else with the whole target."""
    if not monitor.startswith(b"/"):
        return url == monitor
    return split_target(url)[1] == monitor


def stats_check(proxy: Proxy, applets: Applets, compiler: ConditionCompiler):
    """``check(stream) -> (ROUTE_APPLET, answer) | None`` for a proxy with a stats page."""
    if proxy.stats is None or proxy.mode != "http":
        return None
    page = StatsPage(applets, proxy)
    admin = [compiler.compile(cond) for cond in proxy.stats.admin]
    rules = [(action, realm or proxy.stats.realm, compiler.compile(cond))
             for action, realm, cond in proxy.stats.rules]

    def check(stream):
        if not page.matches(stream.method, stream.url):
            return None
        allowed = any(matches(stream) for matches in admin)
        for action, realm, matches in rules:     # stats http-request, then stats auth
            if not matches(stream):
                continue
            if action == "deny":
                return ROUTE_DENY, 403
            if action == "auth":
                return ROUTE_RAW, auth_page(builtin_page(407 if stream.proxy_request else 401),
                                            realm, stream.proxy_request)
            return ROUTE_APPLET, functools.partial(page.answer, admin=allowed, trusted=True)
        return ROUTE_APPLET, functools.partial(page.answer, admin=allowed)

    return check


def tarpit_hold(proxy: Proxy) -> int:
    """How long a tarpitted request is held: timeout tarpit, else timeout connect."""
    return proxy.timeouts.tarpit or proxy.timeouts.connect or 0


def run_request_rules(rules: list, stream, applets=None, tarpit_ms: int = 0):
    """http-request rules in order: a final verdict (deny, tarpit, reject, return,
    redirect, use-service), or None once every rule that matched has done its work
    (``allow`` stops the evaluation there)."""
    strict = True
    for c in rules:
        if not c.matches(stream):
            continue
        action = c.rule.action
        if action in REWRITES:
            try:
                REWRITES[action](c, stream)
            except InvalidRequest:
                return ROUTE_DENY, 400
            except ValueError:
                if strict:            # HAProxy's strict mode: a failed rewrite is a 500
                    raise
        elif action == "strict-mode":
            strict = c.rule.name == "on"
        elif action == "capture":
            apply_capture(c, stream, False)
        elif action == "early-hint":
            apply_early_hint(c, stream)
        elif action == "allow":
            return None
        elif action == "set-log-level":
            stream.log_level = c.rule.name
        elif action == "disable-l7-retry":
            stream.no_l7_retry = True
        elif action == "use-service":
            return ROUTE_APPLET, applets.prometheus
        elif action == "deny":
            return ROUTE_DENY, reply(c, stream)
        elif action == "tarpit":
            return ROUTE_TARPIT, (tarpit_ms, reply(c, stream))
        elif action == "reject":
            return ROUTE_REJECT, 0
        elif action == "silent-drop":
            return ROUTE_REJECT, 1
        elif action == "return":
            answer = reply(c, stream)
            return (ROUTE_PAGE if answer.__class__ is int else ROUTE_RAW), answer
        elif action == "redirect":
            return ROUTE_RAW, redirect_response(c, stream)
        elif action == "auth":
            page = c.proxy_page if stream.proxy_request else c.page
            return ROUTE_RAW, page if page.__class__ is bytes else page(stream)
        elif action == "wait-for-body":
            return ROUTE_WAIT_BODY, c
    return None


def resumable(rules: list):
    """``run(stream, applets, hold)``: run_request_rules for rules with a wait-for-body.
    That rule hands (ROUTE_WAIT_BODY, (time, at-least)) to the loop, which waits for the
    body and calls again: the walk goes on after that rule (``stream.resume``)."""
    after = {id(c): i + 1 for i, c in enumerate(rules)}

    def run(stream, applets, hold):
        start = getattr(stream, "resume", 0)
        verdict = run_request_rules(rules[start:] if start else rules, stream, applets, hold)
        if verdict is not None and verdict[0] == ROUTE_WAIT_BODY:
            c = verdict[1]
            stream.resume = after[id(c)]
            return ROUTE_WAIT_BODY, (c.rule.wait_ms, c.rule.at_least)
        stream.resume = 0
        return verdict
    return run
def run_content_rules(rules: list, stream):
    """An HTTP frontend's tcp-request content rules on a parsed request: None to go on,
    or a verdict (reject and silent-drop close the connection without an answer)."""
    for c in rules:
        if not c.matches(stream):
            continue
        action = c.rule.action
        if action == "accept":
            return None
        if action == "reject":
            return ROUTE_REJECT, 0
        if action == "silent-drop":
            return ROUTE_REJECT, 1
        if action == "capture":
            apply_capture(c, stream, False)
        elif action == "set-log-level":
            stream.log_level = c.rule.name
        elif action in REWRITES:
            try:
                REWRITES[action](c, stream)
            except ValueError:
                pass
    return None


# request actions that rewrite the stream (a failure: 500 in strict mode, else skipped)
REWRITES = dict(
    [(action, lambda c, stream: apply_header_rule(c, stream.headers, stream))
     for action in HEADER_ACTIONS] +
    [(action, apply_var_rule) for action in VAR_ACTIONS] +
    [(action, apply_line_rule) for action in LINE_ACTIONS] +
    [(action, apply_address_rule) for action in ADDRESS_ACTIONS] +
    [(action, apply_socket_rule) for action in SOCKET_ACTIONS] +
    [("set-timeout", apply_timeout_rule)] +
    [(action, apply_priority_rule) for action in PRIORITY_ACTIONS] +
    [(action, apply_map_rule) for action in MAP_ACTIONS] +
    [("normalize-uri", apply_normalizer)])


def reply(c: CompiledRule, stream):
    """A deny's or return's answer: its status when the proxy's page answers, else the
    whole response (an errorfile's, an http-errors section's, or its own body)."""
    rule = c.rule
    if rule.reply == "default":
        return rule.status
    if rule.reply:
        # a section without a page for the status: HAProxy's reply is the status alone
        return rule.page if rule.page is not None else return_response(c, stream)
    return return_response(c, stream)


def compile_switching(proxy: Proxy, compiler: ConditionCompiler, by_name: dict,
                      env: SampleEnv) -> list:
    """use_backend rules in order as (condition, backend) steps; consecutive path_beg-only
    rules become one (PrefixSwitch, [backend per rule]) step; a name with ``%[...]`` is a
    (condition, Format) step resolved per request."""
    steps: list = []
    for name, cond, _ in proxy.switching_rules:
        if "%" in name:
            steps.append((compiler.compile(cond),
                          compile_format(name, Context("use_backend", env, proxy.name))))
            continue
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


def build_router(proxy: Proxy, by_name: dict, default: int, applets: Applets,
                 env: SampleEnv):
    """``route(stream) -> (ROUTE_*, value)`` for an HTTP frontend with rules, conditional
    switching, a monitor-uri or a stats page; None otherwise.  Rules edit the stream (its
    headers, request line, variables).  Order as HAProxy's: monitor-uri, http-request
    rules, the stats page, then backend switching.  tcp-request content rules come first:
    in mode http, HAProxy runs them on each request once its head is parsed (so they see
    its headers, and no raw bytes: req.payload and the like find nothing)."""
    if proxy.mode != "http" or not (proxy.http_request_rules or proxy.monitor_uri or
                                    proxy.tcp_content_rules or
                                    proxy.stats or proxy.redirect_rules or
                                    proxy.unique_id_format or
                                    any(c for _, c, _ in proxy.switching_rules)):
        return None
    unique = unique_id_maker(compile_log_format(proxy.unique_id_format,
                                                Context("log", env, proxy.name)),
                             proxy.name, os.getpid()) if proxy.unique_id_format else None
    header = proxy.unique_id_header.lower().encode("latin-1") \
        if unique is not None and proxy.unique_id_header else None
    monitor = proxy.monitor_uri.encode("utf-8", "surrogateescape") \
        if proxy.monitor_uri is not None else None
    place = place_of(proxy, False)
    compiler = ConditionCompiler(proxy.acls, env, place, proxy.name)
    monitor_fail = compiler.compile(proxy.monitor_fail) if proxy.monitor_fail else None
    rules = compile_rules(proxy.http_request_rules, compiler, Context(place, env, proxy.name),
                          proxy)
    redirects = compile_rules(proxy.redirect_rules, compiler, Context(place, env, proxy.name))
    hold = tarpit_hold(proxy)
    switches = compile_switching(proxy, compiler, by_name, env)
    stats = stats_check(proxy, applets, compiler)
    waits = any(c.rule.action == "wait-for-body" for c in rules)
    run_rules = resumable(rules) if waits else None
    content = [compile_rule(rule, compiler.compile(rule.condition),
                            Context(place, env, proxy.name))
               for rule, _ in proxy.tcp_content_rules]
    for c in content:
        if c.rule.action == "capture":
            c.slot = (int(c.rule.name), c.rule.status)

    def route(stream):
        if monitor is not None and monitor_matches(monitor, stream.url):
            # "monitor fail": the node reports itself down (keepalived's check fails)
            return ROUTE_RESPOND, 503 if monitor_fail and monitor_fail(stream) else 200
        if waits:
            verdict = run_rules(stream, applets, hold)
        else:
            verdict = run_request_rules(rules, stream, applets, hold)
        if verdict is not None:
            return verdict
        if stats is not None:
            verdict = stats(stream)
            if verdict is not None:
                return verdict
        for c in redirects:
            if c.matches(stream):
                return ROUTE_RAW, redirect_response(c, stream)
        for matches, backend in switches:
            if isinstance(matches, PrefixSwitch):
                position = matches.first(stream.path)
                if position is not None:
                    return ROUTE_BACKEND, backend[position]
            elif matches(stream):
                if backend.__class__ is int:
                    return ROUTE_BACKEND, backend
                # a dynamic name: an unknown one leaves the rule out (HAProxy's behaviour)
                index = by_name.get(backend.render(stream).decode("utf-8", "surrogateescape"))
                if index is not None:
                    return ROUTE_BACKEND, index
        return ROUTE_BACKEND, default

    if content:
        def route_after_content(stream, route=route):
            verdict = run_content_rules(content, stream)
            return verdict if verdict is not None else route(stream)
    else:
        route_after_content = route
    if unique is None:
        return route_after_content

    def route_with_id(stream):
        """unique-id-format: the id, made before the rules (the unique-id fetch reads it),
        then unique-id-header carries it to the server."""
        stream.unique_id = unique(stream)
        verdict = route_after_content(stream)
        if header is not None:
            stream.headers.append((header, stream.unique_id))
        return verdict

    return route_with_id


def build_backend_rules(proxy: Proxy, applets: Applets, env: SampleEnv):
    """``rules(stream) -> verdict | None`` for a backend's own http-request rules and
    stats page (a listen section's run with its frontend part)."""
    if proxy.kind != "backend" or proxy.mode != "http" or not (
            proxy.http_request_rules or proxy.stats or proxy.redirect_rules):
        return None
    place = place_of(proxy, False)
    compiler = ConditionCompiler(proxy.acls, env, place, proxy.name)
    rules = compile_rules(proxy.http_request_rules, compiler, Context(place, env, proxy.name),
                          proxy)
    redirects = compile_rules(proxy.redirect_rules, compiler, Context(place, env, proxy.name))
    hold = tarpit_hold(proxy)
    stats = stats_check(proxy, applets, compiler)
    waits = any(c.rule.action == "wait-for-body" for c in rules)
    run_rules = resumable(rules) if waits else None

    def apply(stream):
        if waits:
            verdict = run_rules(stream, applets, hold)
        else:
            verdict = run_request_rules(rules, stream, applets, hold)
        if verdict is None and stats is not None:
            verdict = stats(stream)
        if verdict is None:
            for c in redirects:
                if c.matches(stream):
                    return ROUTE_RAW, redirect_response(c, stream)
        return verdict

    return apply


PERSIST_FORCE, PERSIST_IGNORE = 1, 2       # the loop's PERSIST_* (defs.pxd)


def build_persist_rules(proxy: Proxy, env: SampleEnv):
    """``verdict(stream) -> 0 | PERSIST_FORCE | PERSIST_IGNORE``: the first force-persist
    or ignore-persist rule that holds, or None without any."""
    if not proxy.persist_rules:
        return None
    compiler = ConditionCompiler(proxy.acls, env, "backend http-request", proxy.name)
    rules = [(compiler.compile(cond), PERSIST_FORCE if kind == "force-persist" else PERSIST_IGNORE)
             for kind, cond in proxy.persist_rules]

    def verdict(stream) -> int:
        for matches, result in rules:
            if matches(stream):
                return result
        return 0
    return verdict


def build_server_rules(proxy: Proxy, env: SampleEnv):
    """``candidates(stream) -> [server index]``: the servers of the use-server rules whose
    condition holds, in order (the loop takes the first that is up), or None."""
    if not proxy.server_rules:
        return None
    place = "backend http-request" if proxy.mode == "http" else "tcp-request content"
    compiler = ConditionCompiler(proxy.acls, env, place, proxy.name)
    index = {server.name: i for i, server in enumerate(proxy.servers)}
    rules = []
    for name, cond, _ in proxy.server_rules:
        target = compile_format(name, Context(place, env, proxy.name)) if "%" in name \
            else index[name]
        rules.append((compiler.compile(cond), target))

    def candidates(stream) -> list:
        out = []
        for matches, target in rules:
            if matches(stream):
                if target.__class__ is not int:     # a name computed per request
                    target = index.get(target.render(stream).decode("utf-8",
                                                                    "surrogateescape"), -1)
                    if target < 0:
                        continue
                out.append(target)
        return out

    return candidates


def build_hash_key(proxy: Proxy, env: SampleEnv):
    """``balance hash <expr>``: ``key(stream) -> bytes | None``, the sample as HAProxy
    hashes it (cast to binary: an address packed, an integer on 8 bytes)."""
    if proxy.balance == "rdp-cookie":
        return rdp_cookie_reader(proxy.balance_args["cookie"])
    if proxy.balance != "hash":
        return None
    expr = compile_expr(proxy.balance_args["expr"], Context("balance", env, proxy.name))

    def key(stream):
        value = expr.one(stream)
        return None if value is None else dynamic_cast(value, BIN)
    return key


def build_response_editor(proxy: Proxy, env: SampleEnv):
    """``edit(stream) -> status`` applying the proxy's http-response rules to
    ``stream.res_headers``: 0 to go on, or the status of an ``http-response deny``
    (``set-status`` changes ``stream.status`` / ``stream.reason``)."""
    if proxy.mode != "http" or not proxy.http_response_rules:
        return None
    compiler = ConditionCompiler(proxy.acls, env, "http-response", proxy.name)
    rules = compile_rules(proxy.http_response_rules, compiler,
                          Context("http-response", env, proxy.name), proxy)
    if any(c.rule.action == "wait-for-body" for c in rules):
        return resumable_response(rules)
    return functools.partial(run_response_rules, rules)


def resumable_response(rules: list):
    """run_response_rules for rules with a wait-for-body: that rule hands (time,
    at-least) to the loop, which waits for the body and calls again (``stream.resume``)."""
    after = {id(c): i + 1 for i, c in enumerate(rules)}

    def run(stream):
        start = getattr(stream, "resume", 0)
        verdict = run_response_rules(rules[start:] if start else rules, stream)
        if verdict.__class__ is CompiledRule:
            stream.resume = after[id(verdict)]
            return verdict.rule.wait_ms, verdict.rule.at_least
        stream.resume = 0
        return verdict
    return run


def run_response_rules(rules: list, stream):
    """0 to go on, or what replaces the server's response: a status (the proxy's page)
    or a whole response (deny / return with their own answer); -1: silent-drop."""
    strict = True
    for c in rules:
        if not c.matches(stream):
            continue
        action = c.rule.action
        if action in HEADER_ACTIONS or action in VAR_ACTIONS:
            try:
                if action in HEADER_ACTIONS:
                    apply_header_rule(c, stream.res_headers, stream)
                else:
                    apply_var_rule(c, stream)
            except ValueError:
                if strict:
                    raise
        elif action == "strict-mode":
            strict = c.rule.name == "on"
        elif action in SOCKET_ACTIONS:
            apply_socket_rule(c, stream)
        elif action == "capture":
            apply_capture(c, stream, True)
        elif action in MAP_ACTIONS:
            apply_map_rule(c, stream)
        elif action == "set-status":
            stream.status = c.rule.status
            stream.reason = c.rule.reason.encode("utf-8", "surrogateescape") or None
        elif action == "set-log-level":
            stream.log_level = c.rule.name
        elif action == "allow":
            return 0
        elif action == "deny":
            return reply(c, stream)
        elif action == "silent-drop":
            return -1                 # the client's connection disappears
        elif action == "return":
            # HAProxy drops the server's response before it builds the reply: its
            # values no longer see that response's headers
            stream.res_headers = []
            answer = reply(c, stream)
            return LocalStatus(answer) if answer.__class__ is int else LocalAnswer(answer)
        elif action == "redirect":
            return LocalAnswer(redirect_response(c, stream))
        elif action == "wait-for-body":
            return c                  # resumable_response waits, then goes on after it
    return 0


def build_after_response(proxy: Proxy, env: SampleEnv):
    """``edit(stream)`` applying the proxy's http-after-response rules to the response the
    client is about to get (``stream.res_headers``, ``stream.status``); None without any."""
    if proxy.mode != "http" or not proxy.http_after_response_rules:
        return None
    place = "http-after-response"
    compiler = ConditionCompiler(proxy.acls, env, place, proxy.name)
    rules = compile_rules(proxy.http_after_response_rules, compiler,
                          Context(place, env, proxy.name), proxy)
    return functools.partial(run_after_rules, rules)


def run_after_rules(rules: list, stream) -> None:
    """A failed rewrite raises (the loop answers 500), unless strict-mode is off."""
    strict = True
    for c in rules:
        if not c.matches(stream):
            continue
        action = c.rule.action
        if action in HEADER_ACTIONS or action in VAR_ACTIONS:
            try:
                if action in HEADER_ACTIONS:
                    apply_header_rule(c, stream.res_headers, stream)
                else:
                    apply_var_rule(c, stream)
            except ValueError:
                if strict:
                    raise
        elif action == "strict-mode":
            strict = c.rule.name == "on"
        elif action == "capture":
            apply_capture(c, stream, True)
        elif action == "set-status":
            stream.status = c.rule.status
            stream.reason = c.rule.reason.encode("utf-8", "surrogateescape") or None
        elif action == "allow":
            return


__all__ = ["CompiledRule", "SampleEnv", "build_after_response", "build_backend_rules",
           "build_response_editor", "build_hash_key", "build_server_rules",
           "build_router", "monitor_matches", "run_request_rules", "Optional"]
