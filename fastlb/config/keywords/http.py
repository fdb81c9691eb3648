"""HTTP keywords of proxies: ACLs, http-request/response rules, captures, health-check
requests, error files, monitoring and the statistics page."""
from __future__ import annotations

import os
import re

from ...http.acl import AclError, parse_acl
from ...http.rules import RuleError, check_rule, parse_rule
from ..model import HttpCheck, StatsPage
from ..units import parse_size, parse_time_ms
from .arguments import condition, one_arg
from .registry import BACKENDS, DEFAULTS, FRONTENDS, PROXIES, PROXY_AND_DEFAULTS, keyword

ERRORFILE_CODES = (200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 421, 422, 425, 429,
                   500, 501, 502, 503, 504)
EXPERIMENTAL = ("normalize-uri",)      # HAProxy 2.6 wants expose-experimental-directives


def _config_dir(origin):
    """Where the relative file names of that line are read from (default-path)."""
    return origin.base


@keyword("acl", sections=PROXIES)
def acl(parser, proxy, args, origin):
    if len(args) < 2:
        raise ValueError("'acl' expects an ACL name and a criterion.")
    name = args[0]
    if not re.fullmatch(r"[A-Za-z0-9_.:-]+", name):
        raise ValueError(f"ACL name '{name}' contains an invalid character.")
    try:
        term = parse_acl(args[1:], _config_dir(origin))
    except AclError as exc:
        raise ValueError(f"error detected while parsing ACL '{name}' : {exc}") from None
    proxy.acls.setdefault(name, []).append(term)


@keyword("http-request", sections=PROXIES)
def http_request(parser, proxy, args, origin):
    _http_rule(parser, proxy, args, origin, response=False)


@keyword("http-response", sections=PROXIES)
def http_response(parser, proxy, args, origin):
    _http_rule(parser, proxy, args, origin, response=True)


@keyword("http-after-response", sections=PROXY_AND_DEFAULTS)
def http_after_response(parser, proxy, args, origin):
    if proxy.kind == "defaults":
        # HAProxy takes them in named defaults only, for one capability; not here yet
        raise ValueError("'http-after-response' in a 'defaults' section is not supported "
                         "by fastlb yet.")
    _http_rule(parser, proxy, args, origin, response=True, side="http-after-response")


def _http_rule(parser, proxy, args, origin, response, side=""):
    side = side or ("http-response" if response else "http-request")
    base = _config_dir(origin)

    def read_file(path):
        full = path if os.path.isabs(path) else os.path.join(base, path)
        try:
            with open(full, "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise RuleError(f"failed to open file '{path}' : {exc.strerror}") from None

    if response:
        place = side
    else:
        place = "frontend http-request" if proxy.kind == "frontend" else "backend http-request"
    try:
        rule, rest = parse_rule(args, response, read_file, side)
        if rule.action == "set-timeout":
            try:                 # a time is fixed; anything else is a sample (its ms)
                rule.status, rule.value = parse_time_ms(rule.value), ""
            except ValueError:
                pass
        check_rule(rule, place)
    except RuleError as exc:
        raise ValueError(f"'{side}' : {exc}") from None
    if rule.action == "set-nice":
        parser.warn(origin, f"'{side} set-nice' has no effect in fastlb (it has no task "
                    "scheduler to give a request a priority in).")
    if rule.action == "wait-for-body":
        try:
            rule.wait_ms = parse_time_ms(rule.value)
            rule.at_least = parse_size(rule.reason) if rule.reason else 0
        except ValueError as exc:
            raise ValueError(f"'{side} wait-for-body' : {exc}") from None
        rule.value = rule.reason = ""
    if rule.action == "capture":
        slots = proxy.captures_rsp if response else proxy.captures_req
        if not proxy.has_frontend:
            raise ValueError(f"'{side} capture' : only in a frontend or listen section "
                             "(captures belong to the frontend).")
        if rule.status:                  # "len": a new slot of its own
            rule.name = str(len(slots))
            slots.append((None, rule.status))
        elif int(rule.name) >= len(slots):
            raise ValueError(f"'{side} capture' : no capture slot with id {rule.name} "
                             f"(this proxy has {len(slots)}).")
    if rule.action == "set-timeout" and not proxy.has_backend and proxy.kind != "defaults":
        raise ValueError(f"error detected in {proxy.kind} '{proxy.name}' while parsing "
                         f"'http-request set-timeout' rule : proxy '{proxy.name}' has no "
                         "backend capability.")
    if rule.action in EXPERIMENTAL and not parser.global_.experimental:
        raise ValueError(f"'{rule.action}' action is experimental, must be allowed via a "
                         "global 'expose-experimental-directives'")
    if rest:
        rule.condition = condition(proxy, rest, f"'{side}' rule")
    if side == "http-after-response":
        proxy.http_after_response_rules.append(rule)
    else:
        (proxy.http_response_rules if response else proxy.http_request_rules).append(rule)


@keyword("redirect", sections=PROXIES)
def redirect(parser, proxy, args, origin):
    """The older form of ``http-request redirect``: its target is a plain string (no
    log-format), and its rules run after the http-request rules and the stats page."""
    try:
        rule, rest = parse_rule(["redirect", *args], False, None)
    except RuleError as exc:
        raise ValueError(f"'redirect' : {exc}") from None
    rule.literal = True
    if rest:
        rule.condition = condition(proxy, rest, "'redirect' rule")
    proxy.redirect_rules.append(rule)


@keyword("capture", sections=FRONTENDS)
def capture(parser, proxy, args, origin):
    if len(args) != 5 or args[0] not in ("request", "response") or args[1] != "header" \
            or args[3] != "len" or not args[4].isdigit() or int(args[4]) < 1:
        if args[:1] == ["cookie"]:
            return capture_cookie(parser, proxy, args[1:], origin)
        raise ValueError("'capture' expects 'request header <name> len <length>' or "
                         "'response header <name> len <length>'.")
    target = proxy.captures_req if args[0] == "request" else proxy.captures_rsp
    target.append((args[2].lower(), int(args[4])))


def capture_cookie(parser, proxy, args, origin):
    """``capture cookie <name> len <length>``: one per frontend (a later line replaces it,
    as in HAProxy); the length is kept below tune.http.cookielen (63 by default)."""
    if len(args) != 3 or args[1] != "len" or not args[2].isdigit():
        raise ValueError("'capture' expects 'cookie' <cookie_name> 'len' <len>.")
    length = int(args[2])
    cookielen = parser.global_.cookielen
    if length >= cookielen:
        parser.warnings.append(f"truncating capture length to {cookielen - 1} bytes for "
                               f"{proxy.type_name} '{proxy.name}'.")
        length = cookielen - 1
    proxy.capture_cookie = (args[0], length)


@keyword("declare", sections=FRONTENDS)
def declare(parser, proxy, args, origin):
    """``declare capture request|response len <n>``: a capture slot that
    ``http-request|http-response capture ... id <n>`` fills."""
    if len(args) != 4 or args[0] != "capture" or args[1] not in ("request", "response") \
            or args[2] != "len" or not args[3].isdigit() or int(args[3]) < 1:
        raise ValueError("'declare' expects 'capture request|response len <length>'.")
    (proxy.captures_req if args[1] == "request" else proxy.captures_rsp).append(
        (None, int(args[3])))


@keyword("http-check", sections=BACKENDS | DEFAULTS)
def http_check(parser, proxy, args, origin):
    check = proxy.httpchk
    if check is None:
        check = proxy.httpchk = HttpCheck()
        check.enabled = False
    if not args:
        raise ValueError("'http-check' expects 'send', 'expect' as an argument.")
    if args[0] == "send":
        i = 1
        while i < len(args):
            word = args[i]
            if i + 1 >= len(args) and word != "":
                raise ValueError(f"'http-check send' : '{word}' expects an argument.")
            if word == "meth":
                check.method = args[i + 1]
            elif word == "uri":
                check.uri = args[i + 1]
            elif word == "ver":
                check.version = args[i + 1]
            elif word == "hdr":
                if i + 2 >= len(args):
                    raise ValueError("'http-check send' : 'hdr' expects <name> and <value>.")
                check.headers.append((args[i + 1], args[i + 2]))
                i += 1
            elif word == "body":
                check.body = args[i + 1]
            else:
                raise ValueError(f"'http-check send' : unknown parameter '{word}'.")
            i += 2
    elif args[0] == "expect":
        rest = args[1:]
        negate = False
        if rest[:1] == ["!"]:
            negate, rest = True, rest[1:]
        if len(rest) != 2 or rest[0] not in ("status", "rstatus", "string", "rstring"):
            raise ValueError("'http-check expect' expects 'status', 'rstatus', 'string' or "
                             "'rstring' and a pattern.")
        kind, pattern = rest
        if kind in ("rstatus", "rstring"):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"'http-check expect {kind}' : invalid regex: {exc}") from None
        check.expect = (kind, negate, pattern)
    elif args[0] in ("disable-on-404", "send-state", "connect", "set-var", "unset-var",
                     "comment", "comment"):
        raise ValueError(f"'http-check {args[0]}' is not supported by fastlb yet.")
    else:
        raise ValueError(f"'http-check' only supports 'comment', 'connect', 'send', "
                         f"'expect', 'set-var', 'unset-var' (got '{args[0]}').")


def read_errorfile(args, origin, keyword="errorfile"):
    """``<code> <file>`` of an errorfile line: (status, the file's bytes, a whole response)."""
    if len(args) != 2:
        raise ValueError(f"'{keyword}' expects <code> and <file> as arguments.")
    if not args[0].isdigit() or int(args[0]) not in ERRORFILE_CODES:
        raise ValueError(f"'{keyword}' : status code '{args[0]}' cannot be overridden.")
    path = args[1]
    if not os.path.isabs(path):
        path = os.path.join(_config_dir(origin), path)
    try:
        with open(path, "rb") as handle:
            return int(args[0]), handle.read()
    except OSError as exc:
        raise ValueError(f"'{keyword}' : error opening file <{args[1]}> : {exc.strerror}.") from None


@keyword("errorfile", sections=PROXY_AND_DEFAULTS)
def errorfile(parser, proxy, args, origin):
    status, page = read_errorfile(args, origin)
    proxy.error_decls.append(("page", status, page))


@keyword("http-error", sections=PROXY_AND_DEFAULTS)
def http_error(parser, proxy, args, origin):
    """``http-error status <code> [content-type <type>] [<source>] [hdr <name> <value>]*``:
    the proxy's page for that status, in order with the errorfile lines.  The page is built
    once, or, with a log-format body or header value (lf-string, lf-file, %[...]), kept as
    its rule and made for each answer."""
    from ...http.errors import reason_phrase
    from ...http.rules import Rule, _parse_reply
    base = _config_dir(origin)

    def read_file(path):
        full = path if os.path.isabs(path) else os.path.join(base, path)
        try:
            with open(full, "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise RuleError(f"failed to open file '{path}' : {exc.strerror}") from None

    if args[:1] != ["status"]:
        raise ValueError("'http-error' : expects 'status' followed by a status code.")
    rule = Rule(action="http-error")
    try:
        _parse_reply(rule, list(args), read_file, deny=False)
    except RuleError as exc:
        raise ValueError(f"'http-error' : {exc}") from None
    if rule.status not in ERRORFILE_CODES:
        raise ValueError(f"'http-error' : status code '{rule.status}' not handled.")
    if rule.body_format or any("%" in value for _, value in rule.headers):
        # made for each answer (runtime/http_rules.py's LogFormatPage)
        proxy.error_decls.append(("page", rule.status, rule))
    elif rule.reply == "errors":
        proxy.error_decls.append(("import", rule.errors_name, [rule.status], origin))
    elif rule.reply == "default":
        proxy.error_decls.append(("reset", rule.status))
    elif rule.reply == "page":
        proxy.error_decls.append(("page", rule.status, rule.page))
    else:
        body = rule.body or b""
        lines = [f"HTTP/1.1 {rule.status} {reason_phrase(rule.status)}".encode()]
        lines += [name.lower().encode("latin-1") + b": " + value.encode("utf-8", "surrogateescape")
                  for name, value in rule.headers]
        lines.append(b"content-length: %d" % len(body))
        if rule.content_type and body:
            lines.append(b"content-type: " + rule.content_type.encode("utf-8", "surrogateescape"))
        if any(c in line for line in lines for c in (b"\r", b"\n", b"\0")):
            raise ValueError("'http-error' : a header holds CR, LF or NUL.")
        page = b"\r\n".join(lines) + b"\r\n\r\n" + body
        proxy.error_decls.append(("page", rule.status, page))


@keyword("errorfiles", sections=PROXY_AND_DEFAULTS)
def errorfiles(parser, proxy, args, origin):
    """Import an http-errors section (all its pages, or the listed codes); resolved, in
    order with the errorfile lines, once every section is read."""
    if not args:
        raise ValueError("'errorfiles' expects <name> as argument.")
    codes = None
    if len(args) > 1:
        codes = []
        for word in args[1:]:
            if not word.isdigit() or int(word) not in ERRORFILE_CODES:
                raise ValueError(f"'errorfiles' : status code '{word}' not handled.")
            codes.append(int(word))
    proxy.error_decls.append(("import", args[0], codes, origin))


def _errorloc(word, code):
    """errorloc / errorloc302 / errorloc303 <code> <url>: a redirect as the error page."""
    def handler(parser, proxy, args, origin):
        if len(args) != 2:
            raise ValueError(f"'{word}' expects <status_code> and <url> as arguments.")
        if not args[0].isdigit() or int(args[0]) not in ERRORFILE_CODES:
            raise ValueError(f"'{word}' : status code '{args[0]}' not handled.")
        url = args[1].encode("utf-8", "surrogateescape")
        if any(c in url for c in b"\r\n\0"):
            raise ValueError(f"'{word}' : the URL holds CR, LF or NUL.")
        reason = b"Found" if code == 302 else b"See Other"
        # HAProxy's redirect page, as it writes it
        page = (b"HTTP/1.1 %d %s\r\nCache-Control: no-cache\r\nContent-length: 0\r\n"
                b"Location: %s\r\n\r\n" % (code, reason, url))
        proxy.error_decls.append(("page", int(args[0]), page))
    return handler


for _word, _code in (("errorloc", 302), ("errorloc302", 302), ("errorloc303", 303)):
    keyword(_word, sections=PROXY_AND_DEFAULTS)(_errorloc(_word, _code))


@keyword("monitor-uri", sections=FRONTENDS | DEFAULTS)
def monitor_uri(parser, proxy, args, origin):
    proxy.monitor_uri = one_arg(args, "monitor-uri")


@keyword("monitor", sections=FRONTENDS)
def monitor(parser, proxy, args, origin):
    if not args or args[0] != "fail":
        raise ValueError("'monitor' expects 'fail'.")
    if len(args) < 3 or args[1] not in ("if", "unless"):
        raise ValueError("'monitor fail' expects 'if' or 'unless' followed by a condition.")
    proxy.monitor_fail = condition(proxy, args[1:], "'monitor fail'")


@keyword("stats", sections=PROXY_AND_DEFAULTS)
def stats(parser, proxy, args, origin):
    if not args:
        raise ValueError("'stats' expects 'admin', 'auth', 'enable', 'hide-version', "
                         "'realm', 'refresh', 'scope', 'show-desc', 'show-legends', "
                         "'show-node' or 'uri'.")
    if proxy.stats is None:
        proxy.stats = StatsPage()            # any stats keyword enables the page
    page, what, rest = proxy.stats, args[0], args[1:]
    if what == "enable":
        pass
    elif what == "uri":
        page.uri = one_arg(rest, "stats uri")
    elif what == "realm":
        # HAProxy 2.6 keeps the first word of an unquoted "stats realm HAProxy Statistics"
        # (its 401 says realm="HAProxy") and ignores the others, as tutorials write it
        page.realm = one_arg(rest, "stats realm", allow_more=True).replace("\\ ", " ")
        page.realm_given = True
    elif what == "auth":
        credentials = one_arg(rest, "stats auth")
        if ":" not in credentials:
            raise ValueError("'stats auth' expects <user>:<password> in argument.")
        page.auths.append(tuple(credentials.split(":", 1)))
    elif what == "refresh":
        page.refresh = max(1, parse_time_ms(one_arg(rest, "stats refresh")) // 1000)
    elif what == "admin":
        if proxy.kind == "defaults":
            raise ValueError("'stats admin' not allowed in 'defaults' section.")
        if not rest or rest[0] not in ("if", "unless"):
            raise ValueError("'stats admin' requires either 'if' or 'unless' followed by "
                             "a condition.")
        page.admin.append(condition(proxy, rest, "'stats admin' rule"))
    elif what == "hide-version":
        page.hide_version = True
    elif what == "show-legends":
        page.show_legends = True
    elif what == "show-node":
        page.show_node = rest[0] if rest else ""
    elif what == "show-desc":
        page.show_desc = " ".join(rest)
    elif what == "scope":
        page.scopes.append(one_arg(rest, "stats scope"))
    elif what == "http-request":
        # stats http-request allow | deny | auth [realm <realm>] [if|unless <cond>]
        if not rest or rest[0] not in ("allow", "deny", "auth"):
            raise ValueError("'stats http-request' expects 'allow', 'deny' or 'auth'.")
        action, words, realm = rest[0], rest[1:], None
        if action == "auth" and words[:1] == ["realm"]:
            if len(words) < 2:
                raise ValueError("'stats http-request auth realm' : missing realm value.")
            realm, words = words[1], words[2:]
            if any(c in realm for c in "\r\n\0\""):
                raise ValueError("'stats http-request auth' : the realm may not hold CR, LF, "
                                 "NUL or a double quote.")
        cond = condition(proxy, words, "'stats http-request' rule") if words else None
        page.rules.append((action, realm, cond))
    else:
        raise ValueError(f"unknown stats parameter '{what}', expects 'admin', 'uri', 'realm', "
                         "'auth', 'scope', 'enable', 'hide-version', 'show-node', 'show-desc' "
                         "or 'show-legends'.")
