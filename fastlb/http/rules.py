"""``http-request`` / ``http-response`` rules: parsing and per-message execution.

Values are HAProxy log-format strings.  ``%[<fetch>]`` takes the first value of one of
the request fetches ACLs know (``src``, ``path``, ``hdr(host)``, ``url_param(id)`` ...),
and ``%ci``/``%cp``-style aliases are not supported yet.

Samples are bytes as received (``url_param`` is not decoded); every value written into a
head goes through ``fields.safe_value``, so no sample or configured string can add a
header, a line or a response of its own.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from .acl import Request, config_bytes
from .errors import reason_phrase
from .fields import safe_value

REDIRECT_CODES = (301, 302, 303, 307, 308)
REQUEST_ACTIONS = ("deny", "reject", "set-header", "add-header", "del-header",
                   "replace-header", "replace-value", "return", "redirect", "use-service")
SERVICES = ("prometheus-exporter",)
RESPONSE_ACTIONS = ("set-header", "add-header", "del-header", "replace-header",
                    "replace-value")
_SAMPLE = re.compile(r"%\[([^\]]+)\]")


class RuleError(ValueError):
    pass


@dataclass
class Rule:
    action: str
    condition: object = None                 # acl.Condition or None
    name: str = ""                           # header name (lower case)
    value: str = ""                          # log-format value
    regex: object = None                     # replace-header/-value
    status: int = 0
    content_type: Optional[str] = None
    body: bytes = b""
    headers: list = field(default_factory=list)   # return: [(name, value format)]
    redirect_kind: str = ""                  # location | prefix | scheme
    template: bytes = b""                    # replace-header/-value: the replacement


def _expect(args, count, what):
    if len(args) < count:
        raise RuleError(f"'{what}' expects {count} argument(s).")


def parse_rule(args: list[str], response: bool, read_file) -> tuple[Rule, list[str]]:
    """One rule without its condition; returns (rule, remaining words: the condition)."""
    if not args:
        raise RuleError("expects an action.")
    action, rest = args[0], list(args[1:])
    allowed = RESPONSE_ACTIONS if response else REQUEST_ACTIONS
    if action not in allowed:
        side = "http-response" if response else "http-request"
        raise RuleError(f"'{side} {action}' is not supported by fastlb yet.")

    def take_until_condition():
        words = []
        while rest and rest[0] not in ("if", "unless"):
            words.append(rest.pop(0))
        return words

    rule = Rule(action=action)
    if action in ("deny", "reject"):
        rule.status = 403
        if rest[:1] == ["deny_status"]:
            _expect(rest, 2, "deny_status")
            if not rest[1].isdigit():
                raise RuleError(f"invalid deny_status '{rest[1]}'.")
            rule.status = int(rest[1])
            rest = rest[2:]
    elif action in ("set-header", "add-header"):
        words = take_until_condition()
        if len(words) != 2:
            raise RuleError(f"'{action}' expects exactly 2 arguments.")
        rule.name, rule.value = words[0].lower(), words[1]
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
        try:
            rule.regex = re.compile(config_bytes(words[1]))
        except re.error as exc:
            raise RuleError(f"invalid regex '{words[1]}': {exc}") from None
        rule.value = re.sub(r"\\(\d)", r"\\g<\1>", words[2])
        rule.template = config_bytes(rule.value)
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
        while rest and rest[0] not in ("if", "unless"):
            key = rest.pop(0)
            if key in ("status", "content-type", "string", "file", "lf-string", "hdr"):
                _expect(rest, 1, key)
            if key == "status":
                rule.status = int(rest.pop(0))
            elif key == "content-type":
                rule.content_type = rest.pop(0)
            elif key in ("string", "lf-string"):
                rule.body = rest.pop(0).encode()
            elif key == "file":
                rule.body = read_file(rest.pop(0))
            elif key == "hdr":
                _expect(rest, 2, "hdr")
                rule.headers.append((rest.pop(0), rest.pop(0)))
            else:
                raise RuleError(f"'return' : unknown argument '{key}'.")
        if rule.body and not rule.content_type:
            raise RuleError("'return' : a body needs a 'content-type'.")
    elif action == "redirect":
        _expect(rest, 2, "redirect")
        rule.redirect_kind = rest.pop(0)
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
    for text in [rule.value, rule.content_type or ""] + [v for pair in rule.headers for v in pair]:
        if any(c in text for c in "\r\n\0"):
            raise RuleError(f"'{action}' : a value holds CR, LF or NUL, which no header may.")
    return rule, rest


def expand(value: str, request: Optional[Request]) -> bytes:
    """A log-format value as bytes: ``%[fetch]`` samples (first value), ``%%`` a percent."""
    raw = config_bytes(value)
    if b"%" not in raw:
        return raw
    out, last = [], 0
    for match in _SAMPLE.finditer(value):
        out.append(config_bytes(value[last:match.start()]).replace(b"%%", b"%"))
        if request is not None:
            out.append(first_sample(match.group(1), request))
        last = match.end()
    out.append(config_bytes(value[last:]).replace(b"%%", b"%"))
    return b"".join(out)


def first_sample(fetch: str, req: Request) -> bytes:
    name, _, arg = fetch.partition("(")
    arg = arg.rstrip(")")
    if name == "src":
        return req.src.encode("latin-1")
    if name == "dst_port":
        return str(req.dst_port).encode()
    if name in ("path", "url", "method"):
        return getattr(req, name)
    if name in ("hdr", "req.hdr", "req.fhdr"):
        values = req.header_values(arg) if name != "req.fhdr" else req.full_header_values(arg)
        return values[-1] if values else b""
    if name in ("url_param", "urlp"):
        values = req.url_param(arg)
        return values[0] if values else b""
    if name == "req.ver":
        return req.version
    return b""


def apply_header_rule(rule: Rule, headers: list, request: Optional[Request]) -> None:
    """set/add/del/replace on a head's [(name, value)] list (names lower case)."""
    name = config_bytes(rule.name)
    if rule.action == "del-header":
        headers[:] = [h for h in headers if h[0] != name]
    elif rule.action == "set-header":
        value = safe_value(expand(rule.value, request))
        headers[:] = [h for h in headers if h[0] != name]
        headers.append((name, value))
    elif rule.action == "add-header":
        headers.append((name, safe_value(expand(rule.value, request))))
    elif rule.action == "replace-header":
        headers[:] = [(k, safe_value(rule.regex.sub(rule.template, v, count=1)))
                      if k == name and rule.regex.fullmatch(v) else (k, v) for k, v in headers]
    elif rule.action == "replace-value":
        out = []
        for k, v in headers:
            if k == name:
                parts = [rule.regex.sub(rule.template, p.strip(), count=1)
                         if rule.regex.fullmatch(p.strip()) else p.strip()
                         for p in v.split(b",")]
                v = safe_value(b", ".join(parts))
            out.append((k, v))
        headers[:] = out


def return_response(rule: Rule, request: Request) -> bytes:
    lines = [f"HTTP/1.1 {rule.status} {reason_phrase(rule.status)}".encode()]
    if rule.content_type:
        lines.append(b"content-type: " + safe_value(config_bytes(rule.content_type)))
    lines.append(b"content-length: %d" % len(rule.body))
    lines += [safe_value(config_bytes(name.lower())) + b": " +
              safe_value(expand(value, request)) for name, value in rule.headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + rule.body


def redirect_response(rule: Rule, request: Request) -> bytes:
    options = {name for name, _ in rule.headers}
    target = expand(rule.value, request)
    if rule.redirect_kind == "location":
        location = target
    else:
        path = request.url
        if "drop-query" in options:
            path = path.split(b"?", 1)[0]
        if "append-slash" in options and not path.split(b"?", 1)[0].endswith(b"/"):
            base, sep, query = path.partition(b"?")
            path = base + b"/" + sep + query
        if rule.redirect_kind == "prefix":
            location = target.rstrip(b"/") + path if target != b"/" else path
        else:
            host = request.header_values("host")
            location = target + b"://" + (host[0] if host else b"") + path
    reason = {301: "Moved Permanently", 302: "Found", 303: "See Other",
              307: "Temporary Redirect", 308: "Permanent Redirect"}[rule.status]
    return (f"HTTP/1.1 {rule.status} {reason}\r\ncontent-length: 0\r\nlocation: ".encode() +
            safe_value(location, "Location") + b"\r\n\r\n")
