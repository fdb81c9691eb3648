"""``http-request`` / ``http-response`` rules: parsing, and what each action does.

Values are HAProxy log-format strings (``%[expr]``, ``%ci``-style aliases, ``%%``),
compiled once by the sample engine (``fastlb.sample``) for the place the rule runs in.
Parsing checks them (``check_rule``) so that a mistake is refused at start-up with its
file and line; ``compile_rule`` builds them once the run-time tables exist.

Samples are bytes as received (``url_param`` is not decoded); every value written into a
head goes through ``fields.safe_value``, so no sample or configured string can add a
header, a line or a response of its own.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Optional

from ..sample import Context, Format, SampleError, Stream, as_bytes, check_expr, \
    compile_expr, compile_format
from ..sample import maps
from ..sample.registry import VAR_NAME
from ..sample.stream import (MOVED_DST, MOVED_PRIORITY, MOVED_SOCKET, MOVED_SRC, MOVED_TIMEOUT,
                             split_target)
from ..sample.types import ADDR, SINT, dynamic_cast
from .errors import reason_phrase
from .fields import safe_value

REDIRECT_CODES = (301, 302, 303, 307, 308)
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")     # an RFC 9110 token, lower case
HEADER_ACTIONS = ("set-header", "add-header", "del-header", "replace-header", "replace-value")
VAR_ACTIONS = ("set-var", "set-var-fmt", "unset-var")
# (<file>): change a map or an ACL file for every worker
MAP_ACTIONS = ("set-map", "del-map", "add-acl", "del-acl")
LINE_ACTIONS = ("set-path", "set-pathq", "set-uri", "set-query", "set-method",
                "replace-path", "replace-pathq", "replace-uri")
ADDRESS_ACTIONS = ("set-src", "set-src-port", "set-dst", "set-dst-port")
PRIORITY_ACTIONS = ("set-priority-class", "set-priority-offset")
SOCKET_ACTIONS = ("set-tos", "set-mark")
REQUEST_ACTIONS = (("allow", "deny", "tarpit", "reject", "silent-drop", "return", "redirect", "use-service",
                    "set-log-level", "auth", "normalize-uri", "strict-mode", "capture",
                    "early-hint", "set-timeout", "disable-l7-retry") +
                   HEADER_ACTIONS + VAR_ACTIONS + LINE_ACTIONS + ADDRESS_ACTIONS +
                   SOCKET_ACTIONS + MAP_ACTIONS + PRIORITY_ACTIONS + ("wait-for-body", "set-nice"))
RESPONSE_ACTIONS = (("allow", "deny", "silent-drop", "set-status", "set-log-level", "return",
                     "redirect",
                     "strict-mode", "capture", "wait-for-body", "set-nice") + HEADER_ACTIONS +
                    VAR_ACTIONS +
                    SOCKET_ACTIONS + MAP_ACTIONS)
NORMALIZERS = ("fragment-encode", "fragment-strip", "path-merge-slashes", "path-strip-dot",
               "path-strip-dotdot", "percent-decode-unreserved", "percent-to-uppercase",
               "query-sort-by-name")
# http-after-response: on every response the client gets, fastlb's own included
AFTER_ACTIONS = ("allow", "set-status", "strict-mode", "capture") + HEADER_ACTIONS + VAR_ACTIONS
# the codes HAProxy has a page for, which an errorfile-based reply must use
ERROR_CODES = (200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 421, 422, 425, 429,
               500, 501, 502, 503, 504)
REPLY_SOURCES = ("default-errorfiles", "errorfile", "errorfiles", "file", "lf-file",
                 "string", "lf-string")
# HAProxy 2.6 actions fastlb refuses by name until the issue that brings them
NOT_YET = {
    "track-sc0": "stick tables (#14)", "track-sc1": "stick tables (#14)",
    "track-sc2": "stick tables (#14)", "sc-inc-gpc0": "stick tables (#14)",
    "sc-inc-gpc1": "stick tables (#14)", "sc-set-gpt0": "stick tables (#14)",
    "cache-use": "the cache", "cache-store": "the cache", "lua": "Lua",
    "send-spoe-group": "SPOE",
    "do-resolve": "resolvers (#13)",
}
SERVICES = ("prometheus-exporter",)
LOG_LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug", "silent")


class RuleError(ValueError):
    pass


@dataclass
class Rule:
    action: str
    condition: object = None                 # acl.Condition or None
    name: str = ""                           # header or variable name (headers lower case)
    value: str = ""                          # log-format value, or sample expression
    regex: object = None                     # replace-*
    status: int = 0
    reason: str = ""                         # set-status
    content_type: Optional[str] = None
    body: bytes = b""
    body_format: str = ""                    # return lf-string / lf-file
    headers: list = field(default_factory=list)   # return: [(name, value format)]
    redirect_kind: str = ""                  # location | prefix | scheme
    template: bytes = b""                    # replace-*: the replacement (static)
    literal: bool = False                    # a "redirect" line's target: no log-format
    # deny / tarpit / return: where the answer comes from: "" its own body (or none),
    # "default" the proxy's page for the status, "page" an errorfile's whole response,
    # "errors" an http-errors section's page, put in ``page`` once the sections are read
    # (None: the section has none for the status, the answer is the status alone)
    reply: str = ""
    page: Optional[bytes] = None
    errors_name: str = ""                    # errorfiles <name>
    wait_ms: int = 0                         # wait-for-body time <time>
    at_least: int = 0                        # wait-for-body at-least <bytes> (0: all of it)
    map_value: str = ""                      # set-map: the value's log-format


def _expect(args, count, what):
    if len(args) < count:
        raise RuleError(f"'{what}' expects {count} argument(s).")


def _var_name(action: str) -> Optional[str]:
    """``set-var(txn.x)`` -> "txn.x"."""
    match = re.fullmatch(r"(set-var|set-var-fmt|unset-var)\((.*)\)", action)
    if not match:
        return None
    name = match.group(2)
    if not VAR_NAME.fullmatch(name):
        raise RuleError(f"invalid variable name '{name}'. Expects 'proc', 'sess', 'txn', "
                        "'req' or 'res' scope, then a name.")
    return name


def _backref_template(text: str) -> str:
    return re.sub(r"\\(\d)", r"\\g<\1>", text)


def parse_rule(args: list[str], response: bool, read_file,
               side: str = "") -> tuple[Rule, list[str]]:
    """One rule without its condition; returns (rule, remaining words: the condition).
    ``side`` "http-after-response" takes that family's actions."""
    if not args:
        raise RuleError("expects an action.")
    action, rest = args[0], list(args[1:])
    var = _var_name(action)
    if var is not None:
        action = action.partition("(")[0]
    mapped = re.fullmatch(r"(set-map|del-map|add-acl|del-acl)\((.*)\)", action)
    if mapped:
        action, var = mapped.group(1), mapped.group(2)
        if not var:
            raise RuleError(f"'{action}' expects a file name: '{action}(<file>)'.")
    elif action in MAP_ACTIONS:
        raise RuleError(f"'{action}' expects a file name: '{action}(<file>)'.")
    side = side or ("http-response" if response else "http-request")
    allowed = AFTER_ACTIONS if side == "http-after-response" else \
        RESPONSE_ACTIONS if response else REQUEST_ACTIONS
    if action not in allowed:
        why = NOT_YET.get(action)
        if why:
            raise RuleError(f"'{side} {action}' needs {why}, which fastlb does not support "
                            "yet.")
        raise RuleError(f"'{side} {action}' is not supported by fastlb yet.")

    def take_until_condition():
        words = []
        while rest and rest[0] not in ("if", "unless"):
            words.append(rest.pop(0))
        return words

    rule = Rule(action=action)
    if action == "reject":
        rule.status = 403
    elif action in ("deny", "tarpit"):
        rule.status = 500 if action == "tarpit" else 502 if response else 403
        _parse_reply(rule, rest, read_file, deny=True)
    elif action in ("allow", "silent-drop", "disable-l7-retry"):
        pass
    elif action == "normalize-uri":
        words = take_until_condition()
        if not words or words[0] not in NORMALIZERS:
            raise RuleError(f"'normalize-uri' expects one of {', '.join(NORMALIZERS)}.")
        option = {"path-strip-dotdot": "full", "percent-decode-unreserved": "strict",
                  "percent-to-uppercase": "strict"}.get(words[0])
        if len(words) > 2 or (len(words) == 2 and words[1] != option):
            raise RuleError(f"'normalize-uri {words[0]}' : unexpected '{words[-1]}'.")
        rule.name, rule.reason = words[0], words[1] if len(words) == 2 else ""
    elif action == "capture":
        # capture <expr> len <n> (a new slot) | id <n> (a declared one); status: the length
        words = take_until_condition()
        if len(words) != 3 or words[1] not in ("len", "id") or not words[2].isdigit():
            raise RuleError("'capture' expects '<sample> len <length>' or '<sample> id <id>'.")
        if words[1] == "len" and response:
            raise RuleError("'http-response capture' takes 'id <id>' (a declared slot).")
        rule.value = words[0]
        if words[1] == "len":
            rule.status = int(words[2])
            if rule.status < 1:
                raise RuleError("'capture' : the length must be positive.")
        else:
            rule.name = words[2]
    elif action == "strict-mode":
        words = take_until_condition()
        if words not in (["on"], ["off"]):
            raise RuleError("'strict-mode' expects 'on' or 'off'.")
        rule.name = words[0]
    elif action == "auth":
        rule.status = 401
        if rest[:1] == ["realm"]:
            _expect(rest, 2, "realm")
            rule.reason = rest[1]
            rest = rest[2:]
    elif action in ("set-header", "add-header", "early-hint"):
        words = take_until_condition()
        if len(words) != 2:
            raise RuleError(f"'{action}' expects exactly 2 arguments.")
        rule.name, rule.value = words[0].lower(), words[1]
        if action == "early-hint" and not HEADER_NAME.fullmatch(rule.name):
            raise RuleError(f"'early-hint' : '{words[0]}' is not a valid header name.")
    elif action == "del-header":
        words = take_until_condition()
        if len(words) != 1:
            raise RuleError("'del-header' expects exactly 1 argument.")
        rule.name = words[0].lower()
    elif action in ("replace-header", "replace-value"):
        words = take_until_condition()
        if len(words) != 3:
            raise RuleError(f"'{action}' expects exactly 3 arguments.")
        rule.name = words[0].lower()
        rule.regex = _regex(words[1])
        rule.value = _backref_template(words[2])
    elif action in ("replace-path", "replace-pathq", "replace-uri"):
        words = take_until_condition()
        if len(words) != 2:
            raise RuleError(f"'{action}' expects exactly 2 arguments.")
        rule.regex = _regex(words[0])
        rule.value = _backref_template(words[1])
    elif action in ("set-path", "set-pathq", "set-uri", "set-query", "set-method"):
        words = take_until_condition()
        if len(words) != 1:
            raise RuleError(f"'{action}' expects exactly 1 argument.")
        rule.value = words[0]
    elif action in ("set-var", "set-var-fmt"):
        if var is None:
            raise RuleError(f"'{action}' expects a variable name: '{action}(<scope>.<name>)'.")
        words = take_until_condition()
        if len(words) != 1:
            raise RuleError(f"'{action}({var})' expects exactly 1 argument.")
        rule.name, rule.value = var, words[0]
    elif action == "unset-var":
        if var is None:
            raise RuleError("'unset-var' expects a variable name: 'unset-var(<scope>.<name>)'.")
        rule.name = var
    elif action in MAP_ACTIONS:
        words = take_until_condition()
        wanted = 2 if action == "set-map" else 1
        if len(words) != wanted:
            raise RuleError(f"'{action}({var})' expects exactly {wanted} argument(s).")
        rule.name, rule.value = var, words[0]
        rule.map_value = words[1] if wanted == 2 else ""
    elif action in SOCKET_ACTIONS:
        words = take_until_condition()
        try:
            rule.status = int(words[0], 0) if len(words) == 1 else -1
        except ValueError:
            rule.status = -1
        limit = 255 if action == "set-tos" else 0xFFFFFFFF
        if not 0 <= rule.status <= limit:
            raise RuleError(f"'{action}' expects an integer between 0 and {limit}.")
    elif action == "set-nice":
        words = take_until_condition()
        if len(words) != 1:
            raise RuleError("'set-nice' expects exactly 1 argument (integer value)")
        digits = re.match(r"\s*[-+]?\d*", words[0]).group().strip()
        # C's atoi(), clamped to -1024..1024 as HAProxy does; warned about as without
        # effect by the config layer (no task scheduler to give a priority to)
        rule.status = max(-1024, min(1024, int(digits) if digits.lstrip("+-") else 0))
    elif action == "set-timeout":
        words = take_until_condition()
        if len(words) != 2:
            raise RuleError("'set-timeout' expects 'server' or 'tunnel' and a timeout or an "
                            "expression.")
        if words[0] not in ("server", "tunnel"):
            raise RuleError(f"'set-timeout' rule supports 'server'/'tunnel' (got '{words[0]}').")
        # a time (the config layer turns it into rule.status, in ms) or a sample
        rule.name, rule.value = words[0], words[1]
    elif action in ADDRESS_ACTIONS + PRIORITY_ACTIONS:
        words = take_until_condition()
        if len(words) != 1:
            raise RuleError(f"'{action}' expects a sample expression.")
        rule.value = words[0]
    elif action == "set-status":
        words = take_until_condition()
        if not words or not words[0].isdigit() or not 100 <= int(words[0]) <= 999:
            raise RuleError("'set-status' expects a status code between 100 and 999.")
        rule.status = int(words[0])
        if len(words) == 3 and words[1] == "reason":
            rule.reason = words[2]
        elif len(words) != 1:
            raise RuleError("'set-status' expects '<status> [reason <text>]'.")
    elif action == "set-log-level":
        words = take_until_condition()
        if len(words) != 1 or words[0] not in LOG_LEVELS:
            raise RuleError(f"'set-log-level' expects one of {', '.join(LOG_LEVELS)}.")
        rule.name = words[0]
    elif action == "use-service":
        words = take_until_condition()
        if len(words) != 1:
            raise RuleError("'use-service' expects a service name.")
        if words[0] not in SERVICES:
            raise RuleError(f"'use-service' : service '{words[0]}' is not supported by fastlb "
                            f"(known: {', '.join(SERVICES)}).")
        rule.name = words[0]
    elif action == "return":
        rule.status = 200
        _parse_reply(rule, rest, read_file, deny=False)
    elif action == "wait-for-body":
        _parse_wait_for_body(rule, take_until_condition())
    elif action == "redirect":
        _expect(rest, 2, "redirect")
        rule.redirect_kind = rest.pop(0)
        if response and rule.redirect_kind != "location":
            raise RuleError("response only supports redirect type 'location'.")
        if rule.redirect_kind not in ("location", "prefix", "scheme"):
            raise RuleError(f"'redirect' : expects 'location', 'prefix' or 'scheme', "
                            f"got '{rule.redirect_kind}'.")
        rule.value = rest.pop(0)
        rule.status = 302
        while rest and rest[0] not in ("if", "unless"):
            key = rest.pop(0)
            if key == "code":
                _expect(rest, 1, "code")
                rule.status = int(rest.pop(0))
                if rule.status not in REDIRECT_CODES:
                    raise RuleError(f"'redirect' : unsupported code {rule.status} "
                                    f"(301, 302, 303, 307 or 308).")
            elif key in ("drop-query", "append-slash"):
                rule.headers.append((key, ""))
            else:
                raise RuleError(f"'redirect' : unsupported option '{key}'.")
    texts = [rule.value, rule.reason, rule.content_type or ""] + \
        [v for pair in rule.headers for v in pair]
    for text in texts:
        if any(c in text for c in "\r\n\0"):
            raise RuleError(f"'{action}' : a value holds CR, LF or NUL, which no header may.")
    return rule, rest


def _parse_wait_for_body(rule: Rule, words: list) -> None:
    """``time <time> [at-least <bytes>]``, in any order (HAProxy's); the texts are kept in
    ``value`` and ``reason`` for the config layer to turn into numbers (wait_ms,
    at_least: fastlb.config.units, which this layer does not import)."""
    wait = None
    while words:
        key = words.pop(0)
        if key not in ("time", "at-least"):
            raise RuleError(f"'wait-for-body' : unexpected '{key}' (expects time <time> "
                            "[ at-least <bytes> ]).")
        if not words:
            raise RuleError(f"'wait-for-body' : missing argument for '{key}'.")
        text = words.pop(0)
        if key == "time":
            wait = text
        else:
            rule.reason = text
    if wait is None:
        raise RuleError("'wait-for-body' expects time <time> [ at-least <bytes> ].")
    rule.value = wait


def _parse_reply(rule: Rule, rest: list, read_file, deny: bool) -> None:
    """The answer of a deny or return (HAProxy's "http reply"): status, content-type, at
    most one source (an errorfile, an http-errors section, the proxy's pages, or a body),
    hdr lines.  A deny with nothing but a status answers with the proxy's page."""
    source = None
    while rest and rest[0] not in ("if", "unless"):
        key = rest.pop(0)
        if key in ("status", "content-type", "errorfile", "errorfiles", "file", "lf-file",
                   "string", "lf-string") or (key == "deny_status" and deny):
            _expect(rest, 1, key)
        if key in REPLY_SOURCES:
            if source is not None:
                raise RuleError(f"unexpected '{key}' argument, '{source}' already defined.")
            source = key
        if key == "status" or (key == "deny_status" and deny):
            word = rest.pop(0)
            if not word.isdigit() or not 200 <= int(word) <= 599:
                raise RuleError(f"Unexpected status code '{word}'.")
            rule.status = int(word)
        elif key == "content-type":
            rule.content_type = rest.pop(0)
        elif key == "string":
            rule.body = rest.pop(0).encode("utf-8", "surrogateescape")
        elif key == "lf-string":
            rule.body_format = rest.pop(0)
        elif key == "file":
            rule.body = read_file(rest.pop(0))
        elif key == "lf-file":
            rule.body_format = read_file(rest.pop(0)).decode("utf-8", "surrogateescape")
        elif key == "errorfile":
            rule.reply, rule.page = "page", read_file(rest.pop(0))
        elif key == "errorfiles":
            rule.reply, rule.errors_name = "errors", rest.pop(0)
        elif key == "default-errorfiles":
            rule.reply = "default"
        elif key == "hdr":
            _expect(rest, 2, "hdr")
            name, value = rest.pop(0), rest.pop(0)
            # HAProxy ignores these (with a warning): the reply sets its own framing
            if name.lower() not in ("content-length", "transfer-encoding", "content-type"):
                rule.headers.append((name, value))
        else:
            raise RuleError(f"'{rule.action}' : unknown argument '{key}'.")
    if source is None and deny:
        rule.reply = "default"
    if rule.reply in ("default", "errors") and rule.status not in ERROR_CODES:
        raise RuleError(f"status code '{rule.status}' not handled by default with "
                        f"'{source or 'deny'}' argument.")
    if rule.reply:
        # an errorfile is a whole response: HAProxy ignores content-type and hdr then
        rule.content_type, rule.headers = None, []
    elif (rule.body or rule.body_format) and not rule.content_type:
        raise RuleError(f"'{rule.action}' : a body needs a 'content-type'.")
    elif source is None:
        rule.content_type = None             # a dummy response: the status alone


def _regex(text: str):
    try:
        return re.compile(text.encode("utf-8", "surrogateescape"))
    except re.error as exc:
        raise RuleError(f"invalid regex '{text}': {exc}") from None


# ------------------------------------------------------------------ compiling
FORMATTED = {"set-header", "add-header", "early-hint", "set-path", "set-pathq", "set-uri", "set-query",
             "set-method", "set-var-fmt", "redirect", "replace-header", "replace-value",
             "replace-path", "replace-pathq", "replace-uri"}


def check_rule(rule: Rule, place: str) -> None:
    """Every check of the rule's values that needs no run-time table (see module doc)."""
    ctx = Context(place)
    try:
        if rule.literal:
            pass
        elif rule.action in FORMATTED:
            compile_format(rule.value, ctx, check_only=True)
        elif rule.action in ("set-var", "capture") + ADDRESS_ACTIONS + PRIORITY_ACTIONS or \
                (rule.action == "set-timeout" and rule.value):
            check_expr(rule.value, ctx)
        elif rule.action in MAP_ACTIONS:
            compile_format(rule.value, ctx, check_only=True)
            if rule.map_value:
                compile_format(rule.map_value, ctx, check_only=True)
        for _, value in rule.headers:
            compile_format(value, ctx, check_only=True)
        if rule.body_format:
            compile_format(rule.body_format, ctx, check_only=True)
    except SampleError as exc:
        raise RuleError(str(exc)) from None


@dataclass
class CompiledRule:
    """A rule with its values compiled for its place, and its condition's matcher."""
    rule: Rule
    matches: Callable
    value: Optional[Format] = None
    expr: object = None                      # set-var: the expression
    headers: tuple = ()                      # return: ((name bytes, Format), ...)
    body: Optional[Format] = None
    page: bytes = b""                        # auth: the 401 answer
    proxy_page: bytes = b""                  # ... and the 407 for a proxy request
    slot: tuple = ()                         # capture: (index, length)
    ref: object = None                       # set-map / del-map: (MapRegistry, file path)


def compile_rule(rule: Rule, matches: Callable, ctx: Context) -> CompiledRule:
    compiled = CompiledRule(rule, matches)
    if rule.literal:
        value = rule.value.encode("utf-8", "surrogateescape")
        compiled.value = Format(rule.value, (value,), value)
    elif rule.action in FORMATTED:
        # a variable keeps its bytes as they are; what goes on the wire is encoded
        compiled.value = compile_format(rule.value, ctx, http=rule.action != "set-var-fmt")
    elif rule.action in ("set-var", "capture") + ADDRESS_ACTIONS + PRIORITY_ACTIONS or \
            (rule.action == "set-timeout" and rule.value):
        compiled.expr = compile_expr(rule.value, ctx)
    elif rule.action in MAP_ACTIONS:
        compiled.value = compile_format(rule.value, ctx, http=False)
        if rule.map_value:
            compiled.body = compile_format(rule.map_value, ctx, http=False)
        # None: no converter reads that file (HAProxy keeps a reference nobody looks up)
        compiled.ref = maps.REGISTRY.action_key(rule.name, ctx.base_dir)
    compiled.headers = tuple((name, compile_format(value, ctx)) for name, value in rule.headers)
    if rule.body_format:
        compiled.body = compile_format(rule.body_format, ctx)
    return compiled


# ------------------------------------------------------------------ running
def apply_early_hint(c: CompiledRule, stream: Stream) -> None:
    """An early-hint rule and the unconditional ones right after it (c.slot: their run)
    build one 103 response, as HAProxy's do; it goes out before anything else.  HTTP/1.0
    clients get none."""
    if stream.version == b"1.0":
        return
    value = safe_value(c.value.render(stream))
    hints = stream.hints
    if hints is None:
        hints = stream.hints = []
    if not hints or hints[-1][0] != c.slot:
        hints.append((c.slot, []))
    hints[-1][1].append((c.rule.name.encode("latin-1"), value))


def early_hints_response(hints: list) -> bytes:
    out = []
    for _, fields in hints:
        out.append(b"HTTP/1.1 103 Early Hints\r\n")
        out.extend(name + b": " + value + b"\r\n" for name, value in fields)
        out.append(b"\r\n")
    return b"".join(out)


def apply_header_rule(c: CompiledRule, headers: list, stream: Stream) -> None:
    """set/add/del/replace on a head's [(name, value)] list (names lower case)."""
    rule = c.rule
    name = rule.name.encode("utf-8", "surrogateescape")
    if rule.action == "del-header":
        headers[:] = [h for h in headers if h[0] != name]
    elif rule.action == "set-header":
        value = safe_value(c.value.render(stream))
        headers[:] = [h for h in headers if h[0] != name]
        headers.append((name, value))
    elif rule.action == "add-header":
        headers.append((name, safe_value(c.value.render(stream))))
    elif rule.action == "replace-header":
        template = c.value.render(stream)
        headers[:] = [(k, safe_value(rule.regex.sub(template, v, count=1)))
                      if k == name and rule.regex.fullmatch(v) else (k, v) for k, v in headers]
    elif rule.action == "replace-value":
        template = c.value.render(stream)
        out = []
        for k, v in headers:
            if k == name:
                # as HAProxy: an element replaced loses the blanks around it, the others
                # stay as they were
                parts = [rule.regex.sub(template, p.strip(b" \t"), count=1)
                         if rule.regex.fullmatch(p.strip(b" \t")) else p
                         for p in v.split(b",")]
                v = safe_value(b",".join(parts))
            out.append((k, v))
        headers[:] = out


def apply_var_rule(c: CompiledRule, stream: Stream) -> None:
    rule = c.rule
    if rule.action == "unset-var":
        stream.unset_var(rule.name)
        return
    value = c.expr.one(stream) if rule.action == "set-var" else c.value.render(stream)
    if value is not None:                    # no sample: the variable is left as it was
        stream.set_var(rule.name, value)


def apply_map_rule(c: CompiledRule, stream: Stream) -> None:
    """set-map: the key's entries get the value (a new entry if there is none); del-map
    and del-acl: they go; add-acl: a new pattern unless it is there.  Published in the
    generation's journal, so every worker sees it; a key or value the file's users could
    not take is not written, as HAProxy's."""
    registry, full = c.ref
    action = c.rule.action
    ref = (registry.refs if action.endswith("-map") else registry.acl_refs).get(full)
    if ref is None:
        return
    key = c.value.render(stream).decode("utf-8", "surrogateescape")
    registry.catch_up()            # what is there now: a change that changes nothing is
    ids = ref.ids_of(key)          # not written (the journal only grows)
    if action in ("del-map", "del-acl"):
        if ids:
            registry.change(maps.OP_DEL_KEY, ref, key=key)
        return
    if action == "add-acl":
        try:
            ref.check(key, None)
        except SampleError:
            return
        if not ids:
            registry.change(maps.OP_ADD_NEW, ref, key=key)
        return
    value = c.body.render(stream).decode("utf-8", "surrogateescape")
    if ids and all(ref.entries[i][1] == value for i in ids):
        return
    try:
        ref.check(key, value)
    except SampleError:
        return
    registry.change(maps.OP_UPSERT, ref, key=key, value=value)


def _split_url(url: bytes) -> tuple[bytes, bytes, bytes]:
    """(scheme://authority, path, ?query) of a request target."""
    prefix, url = split_target(url)
    path, sep, query = url.partition(b"?")
    return prefix, path, sep + query


def _request_target(value: bytes) -> bytes:
    """A rewritten request line part: no space, CR, LF or NUL may split the line."""
    if any(c in value for c in b" \r\n\0\t"):
        raise ValueError("a rewritten request line holds a space, CR, LF or NUL")
    return value


def apply_line_rule(c: CompiledRule, stream: Stream) -> None:
    """set-path / set-uri / set-method ... on the request line (the stream's fields)."""
    action = c.rule.action
    prefix, path, query = _split_url(stream.url)
    if action == "set-method":
        stream.method = _request_target(c.value.render(stream))
        return
    if action.startswith("replace-"):
        template = c.value.render(stream)
        target = {"replace-path": path, "replace-pathq": path + query,
                  "replace-uri": stream.url}[action]
        if c.rule.regex.search(target) is None:
            return
        replaced = _request_target(c.rule.regex.sub(template, target, count=1))
        if action == "replace-path":
            url = prefix + replaced + query
        elif action == "replace-pathq":
            url = prefix + replaced
        else:
            url = replaced
    else:
        value = _request_target(c.value.render(stream))
        if action == "set-path":
            url = prefix + (value or b"/") + query
        elif action == "set-pathq":
            url = prefix + value
        elif action == "set-query":
            url = prefix + path + (b"?" + value if value else b"")
        else:                                # set-uri
            url = value
    stream.url = url
    stream._path = None
    stream._prefix_hits = None


def auth_page(page: bytes, realm: str, proxy: bool = False) -> bytes:
    """The 401 page with the challenge for ``realm`` (any WWW-Authenticate it had
    replaced, as HAProxy does); ``proxy``: the 407 page and Proxy-Authenticate."""
    field = b"proxy-authenticate" if proxy else b"www-authenticate"
    head, sep, body = page.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n")
             if not line.lower().startswith(field + b":")]
    lines.append(field + b': Basic realm="' +
                 safe_value(realm.encode("utf-8", "surrogateescape")) + b'"')
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def apply_address_rule(c: CompiledRule, stream: Stream) -> None:
    """set-src / set-dst (an address, its port kept) and set-src-port / set-dst-port:
    what fetches, logs and forwardfor see from now on; a sample of another kind leaves
    the address as it was (HAProxy's)."""
    action = c.rule.action
    value = c.expr.one(stream)
    if value is None:
        return
    if action in ("set-src", "set-dst"):
        address = dynamic_cast(value, ADDR)
        if address is None:
            return
        if address.version == 6 and address.ipv4_mapped:
            address = address.ipv4_mapped
        if action == "set-src":
            stream.src = str(address)
            stream.moved |= MOVED_SRC
        else:
            stream.dst = str(address)
            stream.moved |= MOVED_DST
        return
    port = dynamic_cast(value, SINT)
    if port is None or not 0 <= port <= 65535:
        return
    if action == "set-src-port":
        stream.src_port = port
        stream.moved |= MOVED_SRC
    else:
        stream.dst_port = port
        stream.moved |= MOVED_DST


def apply_socket_rule(c: CompiledRule, stream: Stream) -> None:
    """set-tos / set-mark: the loop sets them on the client connection after the rules."""
    if c.rule.action == "set-tos":
        stream.tos = c.rule.status
    else:
        stream.mark = c.rule.status
    stream.moved |= MOVED_SOCKET


def apply_timeout_rule(c: CompiledRule, stream: Stream) -> None:
    """set-timeout server|tunnel: this transaction's timeout (a sample: its integer value
    in ms; none, or not a positive integer: unchanged)."""
    ms = c.rule.status
    if c.expr is not None:
        value = c.expr.one(stream)
        value = dynamic_cast(value, SINT) if value is not None else None
        if value is None or value <= 0:
            return
        ms = min(int(value), 2 ** 31 - 1)
    if c.rule.name == "server":
        stream.timeout_server = ms
    else:
        stream.timeout_tunnel = ms
    stream.moved |= MOVED_TIMEOUT


# HAProxy's bounds: the class and the offset (ms) share a queue key with the date
PRIORITY_LIMITS = {"set-priority-class": 2047, "set-priority-offset": 524287}


def apply_priority_rule(c: CompiledRule, stream: Stream) -> None:
    """set-priority-class / set-priority-offset: the request's place in a queue (lower
    first), its integer value clamped to HAProxy's bounds; no value: unchanged."""
    value = c.expr.one(stream)
    value = dynamic_cast(value, SINT) if value is not None else None
    if value is None:
        return
    limit = PRIORITY_LIMITS[c.rule.action]
    value = max(-limit, min(limit, int(value)))
    if c.rule.action == "set-priority-class":
        stream.prio_class = value
    else:
        stream.prio_offset = value
    stream.moved |= MOVED_PRIORITY


def apply_capture(c: CompiledRule, stream: Stream, response: bool) -> None:
    """capture: the sample as text, cut to its slot's length, into the log's captures."""
    captures = stream.captures_rsp if response else stream.captures_req
    value = c.expr.one(stream)
    if captures is None or value is None:
        return
    index, length = c.slot
    captures[index] = as_bytes(value)[:length].decode("latin-1")


class InvalidRequest(ValueError):
    """A normalizer in strict mode found an invalid encoding: HAProxy answers 400."""


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = frozenset(b"0123456789abcdefABCDEF")


def _percent(text: bytes, strict: bool, decode: bool) -> bytes:
    """percent-decode-unreserved (``decode``) or percent-to-uppercase."""
    out, i = bytearray(), 0
    while i < len(text):
        c = text[i]
        if c == 37:                                     # "%"
            pair = text[i + 1:i + 3]
            if len(pair) == 2 and pair[0] in _HEX and pair[1] in _HEX:
                value = int(pair, 16)
                if decode and value in _UNRESERVED:
                    out.append(value)
                elif decode:
                    out += b"%" + pair
                else:
                    out += b"%" + pair.upper()
                i += 3
                continue
            if strict:
                raise InvalidRequest("invalid percent-encoding")
        out.append(c)
        i += 1
    return bytes(out)


def _strip_dotdot(path: bytes, full: bool) -> bytes:
    """Resolve "/.." segments; without ``full`` the ones above the root stay."""
    segments, up = [], 0
    parts = path.split(b"/")[1:] if path.startswith(b"/") else path.split(b"/")
    for part in parts:
        if part == b"..":
            if segments:
                segments.pop()
            else:
                up += 1
        else:
            segments.append(part)
    if path.endswith(b"/..") and (segments or up):
        segments.append(b"")
    prefix = b"" if full else b"/.." * up
    return prefix + b"/" + b"/".join(segments) if path.startswith(b"/") else b"/".join(segments)


def apply_normalizer(c: CompiledRule, stream: Stream) -> None:
    """normalize-uri: the request target made canonical as HAProxy's normalizers do
    (path-* on the path, percent-* and fragment-* on the path and query)."""
    name, option = c.rule.name, c.rule.reason
    prefix, path, query = _split_url(stream.url)
    if name == "path-merge-slashes":
        path = re.sub(rb"//+", b"/", path)
    elif name == "path-strip-dot":
        kept = [segment for segment in path.split(b"/") if segment != b"."]
        path = b"/".join(kept) if not path.endswith(b"/.") else b"/".join(kept) + b"/"
    elif name == "path-strip-dotdot":
        path = _strip_dotdot(path, option == "full")
    elif name == "query-sort-by-name":
        if query:
            params = query[1:].split(b"&")
            params.sort(key=lambda p: p.split(b"=", 1)[0])   # stable: equal names keep order
            query = b"?" + b"&".join(params)
    else:
        pathq = path + query
        if name == "percent-decode-unreserved":
            pathq = _percent(pathq, option == "strict", True)
        elif name == "percent-to-uppercase":
            pathq = _percent(pathq, option == "strict", False)
        elif name == "fragment-strip":
            pathq = pathq.split(b"#", 1)[0]
        else:                                           # fragment-encode
            pathq = pathq.replace(b"#", b"%23")
        path, sep, rest = pathq.partition(b"?")
        query = sep + rest
    stream.url = prefix + path + query
    stream._path = None
    stream._prefix_hits = None


def return_response(c: CompiledRule, stream: Stream) -> bytes:
    """A reply built from the rule: status, its hdr lines, then the framing HAProxy adds
    (no content-length on a 204 or 304, which have no body)."""
    rule = c.rule
    body = c.body.render(stream) if c.body is not None else rule.body
    lines = [f"HTTP/1.1 {rule.status} {reason_phrase(rule.status)}".encode()]
    for name, value in c.headers:
        text = safe_value(value.render(stream))
        if text:                                 # an empty value: no header, as HAProxy
            lines.append(safe_value(name.lower().encode("utf-8", "surrogateescape")) +
                         b": " + text)
    if rule.status in (204, 304):
        body = b""
    else:
        lines.append(b"content-length: %d" % len(body))
    if rule.content_type and body:
        lines.append(b"content-type: " + safe_value(
            rule.content_type.encode("utf-8", "surrogateescape")))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class LocalAnswer(bytes):
    """An http-response redirect's or return's answer: the proxy's own (logged L, no
    denial counted), as opposed to a deny's."""


class LocalStatus(int):
    """An http-response return answered with the proxy's page for this status."""


def redirect_response(c: CompiledRule, stream: Stream) -> bytes:
    rule = c.rule
    options = {name for name, _ in rule.headers}
    target = c.value.render(stream)
    if rule.redirect_kind == "location":
        location = target
    else:
        path = stream.url
        if "drop-query" in options:
            path = path.split(b"?", 1)[0]
        if "append-slash" in options and not path.split(b"?", 1)[0].endswith(b"/"):
            base, sep, query = path.partition(b"?")
            path = base + b"/" + sep + query
        if rule.redirect_kind == "prefix":
            location = target.rstrip(b"/") + path if target != b"/" else path
        else:
            host = stream.header_values("host")
            location = target + b"://" + (host[0] if host else b"") + path
    reason = {301: "Moved Permanently", 302: "Found", 303: "See Other",
              307: "Temporary Redirect", 308: "Permanent Redirect"}[rule.status]
    # HAProxy marks the temporary redirects uncacheable
    cache = b"cache-control: no-cache\r\n" if rule.status in (302, 303, 307) else b""
    return (f"HTTP/1.1 {rule.status} {reason}\r\ncontent-length: 0\r\nlocation: ".encode() +
            safe_value(location, "Location") + b"\r\n" + cache + b"\r\n")
