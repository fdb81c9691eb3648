"""tcp-request connection / session / content rules and a tcp frontend's backend
switching, compiled for the worker loop (fastlb/loop/inspect.pxi runs them).

The loop creates one Stream per connection of a frontend with such rules and keeps it for
the session: variables set here are the session's, and address changes (set-src, ...)
are applied to it as a PROXY header's would be.  Content rules see ``stream.payload``, the
bytes buffered so far; while more may come (``stream.partial``) a rule whose condition a
content fetch could still change waits (MissingData), and with the next bytes the walk
starts over, as HAProxy's does.
"""
from __future__ import annotations

from ..config.model import Proxy
from ..http.acl import ConditionCompiler
from ..http.rules import apply_capture, compile_rule
from ..loop.core import (CONN_EXPECT_CIP, CONN_EXPECT_PROXY, CONN_REJECT, CONN_SILENT, TCP_CLOSE, TCP_GO,
                         TCP_REJECT, TCP_SILENT, TCP_SWITCH_HTTP, TCP_WAIT)
from ..sample import Context
from ..sample.registry import MissingData
from .http_rules import REWRITES, SampleEnv, compile_switching
from ..http.acl import PrefixSwitch


class TcpRules:
    """A frontend's tcp-request rule sets; each member None when the proxy has none."""

    def __init__(self, connection, session, content, delay: int, switch):
        self.connection = connection      # (stream) -> CONN_* bits
        self.session = session            # (stream) -> TCP_GO | TCP_REJECT | TCP_SILENT
        self.content = content            # (stream) -> TCP_* (TCP_WAIT: more bytes wanted)
        self.delay = delay                # tcp-request inspect-delay, ms (0: none)
        self.switch = switch              # tcp mode use_backend: (stream) -> backend index


def _compile(rules: list, compiler: ConditionCompiler, ctx: Context) -> list:
    out = []
    for rule, _ in rules:
        c = compile_rule(rule, compiler.compile(rule.condition), ctx)
        if rule.action == "capture":
            c.slot = (int(rule.name), rule.status)
        out.append(c)
    return out


def _walk(rules: list, stream, start: int = 0):
    """(verdict, position): the first final action's, or TCP_GO past the last rule; on
    MissingData the position of the rule that waits."""
    for position in range(start, len(rules)):
        c = rules[position]
        try:
            matched = c.matches(stream)
        except MissingData:
            return TCP_WAIT, position
        if not matched:
            continue
        action = c.rule.action
        if action == "accept":
            return TCP_GO, len(rules)
        if action == "reject":
            return TCP_REJECT, position
        if action == "silent-drop":
            return TCP_SILENT, position
        if action == "switch-mode":
            return TCP_SWITCH_HTTP, position
        if action == "close":
            return TCP_CLOSE, position
        if action == "capture":
            apply_capture(c, stream, False)
        elif action == "set-log-level":
            stream.log_level = c.rule.name
        elif action == "set-nice":
            pass                          # warned about at start-up: no scheduler to tell
        else:
            try:
                REWRITES[action](c, stream)
            except ValueError:
                pass                      # a failed set-var/set-src leaves things as they were
    return TCP_GO, len(rules)


def build_tcp_rules(proxy: Proxy, by_name: dict, default: int, env: SampleEnv):
    if proxy.kind == "backend":
        return None
    switching = proxy.mode == "tcp" and any(c for _, c, _ in proxy.switching_rules)
    if not (proxy.tcp_connection_rules or proxy.tcp_session_rules or switching or
            (proxy.tcp_content_rules and proxy.mode == "tcp")):
        return None
    connection = session = content = switch = None
    if proxy.tcp_connection_rules:
        place = "tcp-request connection"
        compiler = ConditionCompiler(proxy.acls, env, place, proxy.name)
        rules = _compile(proxy.tcp_connection_rules, compiler, Context(place, env, proxy.name))

        def connection(stream):
            verdict = 0
            for c in rules:
                if not c.matches(stream):
                    continue
                action = c.rule.action
                if action == "expect-proxy":
                    verdict |= CONN_EXPECT_PROXY
                elif action == "expect-netscaler-cip":
                    verdict |= CONN_EXPECT_CIP
                elif action == "accept":
                    return verdict
                elif action == "reject":
                    return verdict | CONN_REJECT
                elif action == "silent-drop":
                    return verdict | CONN_SILENT
                else:
                    try:
                        REWRITES[action](c, stream)
                    except ValueError:
                        pass
            return verdict

    if proxy.tcp_session_rules:
        place = "tcp-request session"
        compiler = ConditionCompiler(proxy.acls, env, place, proxy.name)
        session_rules = _compile(proxy.tcp_session_rules, compiler,
                                 Context(place, env, proxy.name))

        def session(stream):
            return _walk(session_rules, stream)[0]

    if proxy.tcp_content_rules and proxy.mode == "tcp":   # mode http: the router runs them
        place = "tcp-request content"
        compiler = ConditionCompiler(proxy.acls, env, place, proxy.name)
        content_rules = _compile(proxy.tcp_content_rules, compiler,
                                 Context(place, env, proxy.name))

        def content(stream):
            # from the first rule each time, as HAProxy's (actions before the one that
            # waits run again on the new bytes)
            return _walk(content_rules, stream)[0]

    if switching:
        place = "tcp use_backend"
        compiler = ConditionCompiler(proxy.acls, env, place, proxy.name)
        steps = compile_switching(proxy, compiler, by_name, env)

        def switch(stream):
            for matches, backend in steps:
                if isinstance(matches, PrefixSwitch):
                    continue              # path_beg: never true without HTTP
                if matches(stream):
                    if backend.__class__ is int:
                        return backend
                    index = by_name.get(backend.render(stream).decode("utf-8",
                                                                      "surrogateescape"))
                    if index is not None:
                        return index
            return default

    return TcpRules(connection, session, content, proxy.inspect_delay or 0, switch)


def build_response_rules(proxy: Proxy, env: SampleEnv):
    """A backend's tcp-response content rules: ``rules(stream) -> TCP_*`` on
    ``stream.res_payload``, or None.  Mode tcp only."""
    if not proxy.tcp_response_rules or not proxy.has_backend:
        return None
    if proxy.mode != "tcp":
        return None               # refused at start-up (config/parser.py)
    place = "tcp-response content"
    compiler = ConditionCompiler(proxy.acls, env, place, proxy.name)
    rules = _compile(proxy.tcp_response_rules, compiler, Context(place, env, proxy.name))

    def apply(stream):
        stream.response = True
        try:
            return _walk(rules, stream)[0]
        finally:
            stream.response = False
    return apply
