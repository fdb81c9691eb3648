"""Proxy keywords: mode, listeners, backend switching, timeouts, options, logs and limits."""
from __future__ import annotations

import ipaddress
import re
import socket

from .. import addresses
from ..addresses import AddressError
from ..model import ForwardFor, HttpCheck
from ...logformat import LogFormatError, compile_format
from ...sample import Context, SampleError, compile_format as compile_value
from ..units import parse_time_ms, parse_time_s, tcp_user_timeout
from .arguments import (CLI_BIND_VALUES, c_atol, cli_bind_option, condition, log_statement, one_arg,
                        positive_int, process_set)
from .registry import (BACKENDS, DEFAULTS, FRONTENDS, PROXIES, PROXY_AND_DEFAULTS, did_you_mean,
                       keyword)

TIMEOUT_NAMES = ("client", "server", "connect", "check", "queue", "http-keep-alive",
                 "http-request", "tunnel", "tarpit", "client-fin", "server-fin")
# Which proxy capabilities a timeout applies to (HAProxy warns when it cannot apply).
_TIMEOUT_SIDE = {"client": "frontend", "client-fin": "frontend", "http-request": "frontend",
                 "http-keep-alive": None, "tarpit": None, "server": "backend",
                 "server-fin": "backend", "connect": "backend", "queue": "backend",
                 "check": "backend", "tunnel": "backend"}
_OPTIONS_NOT_YET = {
    "mysql-check", "pgsql-check", "redis-check", "smtpchk", "ldap-check", "ssl-hello-chk",
    "tcp-check", "external-check", "spop-check",
}
# options HAProxy 2.6 itself refuses, with its words
_OPTIONS_REMOVED = {
    "forceclose": "option 'forceclose' is not supported any more since HAProxy 2.0, please just "
                  "remove it, or use 'option httpclose' if absolutely needed.",
    "http-tunnel": "option 'http-tunnel' is not supported any more since HAProxy 2.1, please "
                   "just remove it, it shouldn't be needed.",
    "http_proxy": "option 'http_proxy' is not supported any more since HAProxy 2.5. This option "
                  "stopped working in HAProxy 1.9 and usually had nasty side effects. It can be "
                  "more reliably implemented with combinations of 'http-request set-dst' and "
                  "'http-request set-uri', and even 'http-request do-resolve' if DNS resolution "
                  "is desired.",
}
# options whose effect is how fastlb always works: it splices bulk transfers when both
# sides allow, sends without delay (TCP_NODELAY, no MSG_MORE), never upgrades to HTTP/2
ALREADY_SO = ("splice-auto", "splice-request", "splice-response", "http-no-delay",
              "disable-h2-upgrade")
# the bind and proxy options fastlb reads (for "did you mean")
_BIND_OPTIONS = ("v4v6", "v6only", "backlog", "name", "accept-proxy", "defer-accept", "tfo",
                 "transparent", "interface", "mss", "proto", "mode", "user", "group", "uid",
                 "gid", "namespace", "nice", "maxconn", "id", "tcp-ut", "process", "thread", "accept-netscaler-cip", "level", "expose-fd",
                 "severity-output")
_OPTIONS = ("tcplog", "httplog", "logasap", "dontlognull", "http-ignore-probes",
            "log-separate-errors", "dontlog-normal", "nolinger", "prefer-last-server", "abortonclose",
            "independent-streams", "socket-stats",
            "http-restrict-req-hdr-names", *ALREADY_SO, "redispatch", "tcpka", "clitcpka",
            "srvtcpka", "tcp-smart-accept", "tcp-smart-connect", "persist", "checkcache", "http-pretend-keepalive", "http-use-proxy-header",
            "h1-case-adjust-bogus-client", "h1-case-adjust-bogus-server", "contstats",
            "accept-invalid-http-request", "accept-invalid-http-response",
            "idle-close-on-response", "transparent",
            "log-health-checks", "allbackups", "httpchk", "forwardfor", "originalto",
            "http-keep-alive", "http-server-close", "httpclose", "http-buffer-request")
_BIND_NOT_YET = {
    "ssl", "crt", "crt-list", "ca-file", "verify", "alpn", "npn",
    "allow-0rtt", "strict-sni", "generate-certificates",
    "ciphers", "ciphersuites", "curves", "ecdhe", "ssl-min-ver",
    "ssl-max-ver", "no-sslv3", "no-tlsv10", "no-tlsv11", "no-tlsv12", "no-tlsv13",
    "prefer-client-ciphers", "quic-cc-algo", "quic-force-retry",
}


# HAProxy 2.6's multiplexers (haproxy -vv) and the mode each serves
MUX_MODES = {"h1": "http", "h2": "http", "fcgi": "http", "none": "tcp"}


def mux_protocol(name: str, where: str, server: bool = False) -> str:
    """A ``proto`` argument of bind and server lines: h1 and none are how fastlb speaks
    in its two modes; whether it fits the proxy's mode is checked once the section is read."""
    if name not in MUX_MODES:
        raise ValueError(f"{where} unknown MUX protocol '{name}'" + ("." if server else ""))
    if name == "h2":
        raise ValueError(f"{where}'h2' is not supported by fastlb yet (it speaks HTTP/1 only).")
    if name == "fcgi" and server:
        raise ValueError(f"{where}'fcgi' is not supported by fastlb yet (no fcgi-app).")
    return name


def ignored_without(parser, proxy, origin, what: str, side: str, hint: str = "") -> bool:
    """HAProxy's warning for a keyword a proxy without the ``side`` capability ignores
    (warned, not refused); True when it is ignored."""
    kind = "backend" if side == "frontend" else "frontend"
    if proxy.kind != kind:
        return False
    parser.warn(origin, f"'{what}' ignored because {kind} '{proxy.name}' has no {side} "
                f"capability.{hint}")
    return True


def unix_bind_option(option, text, where):
    """A UNIX bind's mode (octal), user/uid or group/gid, as numbers."""
    import grp
    import pwd
    try:
        if option == "mode":
            return int(text, 8)
        if option in ("uid", "gid"):
            return int(text)
        if option == "user":
            return pwd.getpwnam(text).pw_uid
        return grp.getgrnam(text).gr_gid
    except ValueError:
        raise ValueError(f"'bind {where}' : '{option}' : invalid value '{text}'.") from None
    except KeyError:
        raise ValueError(f"'bind {where}' : unknown {option} '{text}'.") from None


MAX_THREADS = 64                # HAProxy's on 64-bit machines (its thread masks are longs)


def process_option(where: str, text: str) -> str:
    """``bind ... process <proc>[/<threads>]``: HAProxy 2.6 takes process 1 only (nbproc is
    gone) and warns that the keyword is deprecated; the warning's text."""
    proc, slash, threads = text.partition("/")
    try:
        process_set(proc, 1)
    except ValueError as exc:
        raise ValueError(f"{where} : 'process' : {exc}") from None
    warning = f"{where} : 'process {text}' on 'bind' lines is deprecated and will be removed in 2.7."
    return warning + (f" Please use 'thread {threads}' instead." if slash else "")


def bind_threads(listeners: list, where: str, text: str) -> None:
    """``bind ... thread [<group>/]<set>``: the workers (HAProxy's threads, numbered from 1)
    that accept on these listeners. One thread group, as Debian's HAProxy 2.6 has."""
    group, sep, rest = text.partition("/")
    if sep and re.fullmatch(r"[-+]?\d+", group):
        if int(group) != 1:
            raise ValueError(f"{where} : '{text}' thread-group number must be between 1 and 1 "
                             f"(was {int(group)})")
        group_number, numbers = 1, rest
    else:
        group_number, numbers = 0, text
    for listener in listeners:
        if listener.threads is not None and listener.thread_group != group_number:
            raise ValueError(f"{where} : '{text}' multiple thread-groups are not supported")
    try:
        threads = frozenset(process_set(numbers, MAX_THREADS))
    except ValueError as exc:
        raise ValueError(f"{where} : '{numbers}' : {exc}") from None
    for listener in listeners:
        listener.threads = (listener.threads or frozenset()) | threads
        listener.thread_group = group_number


# HAProxy 2.6's filters (Debian's build), and the subsystem each needs
_FILTERS = {"compression": "compression", "cache": "the cache", "spoe": "SPOE",
            "fcgi-app": "FastCGI applications (fcgi-app sections)",
            "trace": "the trace filter (a debugging aid)", "opentracing": "OpenTracing"}


@keyword("filter", sections=PROXIES)
def filter_(parser, proxy, args, origin):
    """Every HAProxy 2.6 filter belongs to a subsystem fastlb does not have: refused,
    naming it."""
    name = args[0] if args else ""
    if name not in _FILTERS:
        raise ValueError(f"'filter' : unknown keyword '{name}'. Registered keywords : "
                         + ", ".join(sorted(_FILTERS)))
    raise ValueError(f"'filter {name}' needs {_FILTERS[name]}, which fastlb does not support "
                     "yet.")


@keyword("load-server-state-from-file", sections=PROXY_AND_DEFAULTS)
def load_server_state_from_file(parser, proxy, args, origin):
    if ignored_without(parser, proxy, origin, "load-server-state-from-file", "backend"):
        return
    if not args or args[0] not in ("global", "local", "none"):
        raise ValueError(f"'load-server-state-from-file' expects 'global', 'local' or 'none'. "
                         f"Got '{args[0] if args else ''}'")
    proxy.state_from_file = args[0]


@keyword("server-state-file-name", sections=PROXY_AND_DEFAULTS)
def server_state_file_name(parser, proxy, args, origin):
    if ignored_without(parser, proxy, origin, "server-state-file-name", "backend"):
        return
    if len(args) > 1:
        raise ValueError(f"'server-state-file-name' cannot handle unexpected argument "
                         f"'{args[1]}'.")
    proxy.state_file_name = None if not args or args[0] == "use-backend-name" else args[0]


@keyword("email-alert", sections=PROXY_AND_DEFAULTS)
def email_alert(parser, proxy, args, origin):
    """``email-alert from|to|mailers|myhostname|level <value>``, read as HAProxy 2.6 reads
    them (a missing value is an empty one, but for level)."""
    from ..model import LEVELS
    if not args or not args[0]:
        raise ValueError("missing argument after 'email-alert'.")
    what, value = args[0], args[1] if len(args) > 1 else ""
    settings = proxy.email_alert
    if what == "level":
        if value not in LEVELS:
            raise ValueError(f"unknown log level 'level' after '{value}'")  # HAProxy's order
        settings.level = value
    elif what in ("from", "to", "mailers", "myhostname"):
        setattr(settings, "sender" if what == "from" else what, value)
    else:
        raise ValueError(f"email-alert: unknown argument '{what}'.")
    settings.set = True


@keyword("transparent", sections=PROXY_AND_DEFAULTS)
def transparent(parser, proxy, args, origin):
    """The old spelling of ``option transparent`` (HAProxy takes it anywhere, silently)."""
    if args:
        raise ValueError(f"'transparent' cannot handle unexpected argument '{args[0]}'.")
    proxy.options.transparent = True


@keyword("bind-process", sections=PROXY_AND_DEFAULTS)
def bind_process(parser, proxy, args, origin):
    """Deprecated in HAProxy 2.6 (nbproc is gone): the set is checked, then warned about."""
    for arg in args:
        if arg == "all":
            break
        try:
            process_set(arg, 1)
        except ValueError as exc:
            raise ValueError(f"bind-process : {exc}") from None
    parser.warn(origin, "'bind-process' has no effect, is deprecated, and will be removed in "
                "version 2.7.")


@keyword("mode", sections=PROXY_AND_DEFAULTS)
def mode(parser, proxy, args, origin):
    value = one_arg(args, "mode")
    if value == "health":
        raise ValueError("'mode health' doesn't exist anymore. Please use 'http-request return "
                         "status 200' instead.")
    if value not in ("tcp", "http"):
        raise ValueError(f"unknown proxy mode '{value}'.")
    proxy.mode = value


@keyword("bind", sections=PROXIES)
def bind(parser, proxy, args, origin):
    if not args:
        raise ValueError("'bind' expects {<path>|[addr1]:port1[-end1]}{,...} [param*] as arguments.")
    # warned, not refused (as HAProxy does), so not left to the registry's sections
    if ignored_without(parser, proxy, origin, "bind", "frontend"):
        return
    listeners = addresses.parse_bind_addresses(args[0])
    i = 1
    while i < len(args):
        option = args[i]
        if option == "v4v6":
            for listener in listeners:
                listener.v6only = False
        elif option == "v6only":
            for listener in listeners:
                listener.v6only = True
        elif option in ("accept-proxy", "defer-accept", "tfo", "transparent"):
            for listener in listeners:
                setattr(listener, option.replace("-", "_"), True)
        elif option in ("interface", "mss", "proto", "namespace"):
            if i + 1 >= len(args):
                raise ValueError(f"'bind {args[0]}' : missing value for '{option}'.")
            value = args[i + 1]
            if option == "mss":
                if not value.isdigit() or not 1 <= int(value) <= 65535:
                    raise ValueError(f"'bind {args[0]}' : 'mss' expects a positive number "
                                     f"(got '{value}'; a negative one is not supported yet).")
                value = int(value)
            elif option == "proto":
                value = mux_protocol(value, f"'bind {args[0]}' in section '{proxy.kind}' : "
                                            "'proto' : ")
            for listener in listeners:
                setattr(listener, option, value)
            i += 1
        elif option in ("mode", "user", "group", "uid", "gid"):
            if i + 1 >= len(args):
                raise ValueError(f"'bind {args[0]}' : missing value for '{option}'.")
            value = unix_bind_option(option, args[i + 1], args[0])
            for listener in listeners:
                setattr(listener, "mode" if option == "mode" else
                        "uid" if option in ("user", "uid") else "gid", value)
            i += 1
        elif option in ("maxconn", "id"):
            value = args[i + 1] if i + 1 < len(args) else ""
            if not value.lstrip("-").isdigit():
                raise ValueError(f"'bind {args[0]}' : '{option}' : missing or invalid value.")
            number = int(value)
            if option == "id":
                if len(listeners) != 1:
                    raise ValueError(f"'bind {args[0]}' : 'id' can only be used with a single "
                                     "socket.")
                if number <= 0:
                    raise ValueError(f"'bind {args[0]}' : custom id has to be > 0.")
                listeners[0].id, listeners[0].forced_id = number, True
            else:
                if number < 0:
                    raise ValueError(f"'bind {args[0]}' : '{option}' : invalid value "
                                     f"{number}, must be >= 0.")
                for listener in listeners:
                    listener.maxconn = number
            i += 1
        elif option in ("backlog", "name"):
            if i + 1 >= len(args):
                raise ValueError(f"'bind {args[0]}' : missing value for '{option}'.")
            value = args[i + 1]
            for listener in listeners:
                if option == "backlog":
                    listener.backlog = positive_int([value], "backlog")
                else:
                    listener.name = value
            i += 1
        elif option == "tcp-ut":
            try:
                delay = tcp_user_timeout(option, args[i + 1] if i + 1 < len(args) else None)
            except ValueError as exc:
                raise ValueError(f"'bind {args[0]}' in section '{proxy.kind}' : {exc}") from None
            for listener in listeners:
                if listener.family in (socket.AF_INET, socket.AF_INET6):
                    listener.tcp_ut = delay
            i += 1
        elif option == "process":
            where = f"'bind {args[0]}' in section '{proxy.kind}'"
            text = args[i + 1] if i + 1 < len(args) else ""
            parser.warn(origin, process_option(where, text))
            if "/" in text:         # process 1/<threads>: HAProxy's bind_thread too
                try:
                    threads = process_set(text.partition("/")[2], MAX_THREADS)
                except ValueError as exc:
                    raise ValueError(f"{where} : 'process' : {exc}") from None
                for listener in listeners:
                    listener.threads = (listener.threads or frozenset()) | threads
            i += 1
        elif option == "thread":
            bind_threads(listeners, f"'bind {args[0]}' in section '{proxy.kind}'",
                         args[i + 1] if i + 1 < len(args) else "")
            i += 1
        elif option == "accept-netscaler-cip":
            text = args[i + 1] if i + 1 < len(args) else ""
            where = f"'bind {args[0]}' in section '{proxy.kind}'"
            if not text:
                raise ValueError(f"{where} : '{option}' : missing value")
            magic = c_atol(text) & 0xFFFFFFFF      # HAProxy keeps it in a uint32_t
            if magic == 0:
                raise ValueError(f"{where} : '{option}' : invalid value 0, must be >= 0")
            for listener in listeners:
                listener.cip_magic = magic
            i += 1
        elif option in CLI_BIND_VALUES:
            # the stats socket's settings: HAProxy checks them on any bind line, and they
            # change nothing but on its CLI (fastlb's is the stats socket's, in global)
            try:
                cli_bind_option(option, args[i + 1] if i + 1 < len(args) else None)
            except ValueError as exc:
                raise ValueError(f"'bind {args[0]}' in section '{proxy.kind}' : {exc}") from None
            i += 1
        elif option == "nice":
            value = args[i + 1] if i + 1 < len(args) else ""
            if not value.lstrip("-").isdigit() or not -1024 <= int(value) <= 1024:
                raise ValueError(f"'bind {args[0]}' : '{option}' expects an integer argument "
                                 "between -1024 and 1024.")
            parser.warn(origin, f"'bind {args[0]}' : 'nice' has no effect in fastlb (it has no "
                        "task scheduler to give connections a priority in).")
            i += 1
        elif option in _BIND_NOT_YET:
            raise ValueError(f"'bind {args[0]}' : option '{option}' is not supported by fastlb yet.")
        else:
            suggestion = did_you_mean(option, (*_BIND_OPTIONS, *sorted(_BIND_NOT_YET)))
            raise ValueError(f"'bind {args[0]}' in section '{proxy.kind}': unknown keyword "
                             f"'{option}'{suggestion or '.'}")
        i += 1
    defaults = parser.global_.unix_bind
    for listener in listeners:
        listener.origin = origin
        if listener.family == socket.AF_UNIX and defaults and listener.fd is None and \
                not listener.host.startswith("\0"):
            listener.host = defaults.get("prefix", "") + listener.host
            for name in ("mode", "uid", "gid"):
                if getattr(listener, name) is None and name in defaults:
                    setattr(listener, name, defaults[name])
    proxy.listeners.extend(listeners)


# tcp-request / tcp-response: the actions of each rule set (HAProxy 2.6's lists), and
# the ones fastlb refuses by name
_ADDRESS = ("set-src", "set-src-port", "set-dst", "set-dst-port")
_VARS = ("set-var", "set-var-fmt", "unset-var")
_TCP_ACTIONS = {
    "connection": ("accept", "reject", "expect-proxy", "expect-netscaler-cip", "silent-drop",
                   "set-mark", "set-tos")
    + _ADDRESS + _VARS,
    "session": ("accept", "reject", "silent-drop", "set-mark", "set-tos") + _ADDRESS + _VARS,
    "content": ("accept", "reject", "silent-drop", "capture", "set-log-level", "switch-mode",
                "set-mark", "set-tos", "set-priority-class", "set-priority-offset", "set-nice")
    + _ADDRESS + _VARS,
    "response": ("accept", "reject", "close", "silent-drop", "set-log-level", "set-mark",
                 "set-tos") + _VARS,
}
_STICK = ("track-sc0", "track-sc1", "track-sc2", "sc-inc-gpc", "sc-inc-gpc0", "sc-inc-gpc1",
          "sc-set-gpt", "sc-set-gpt0", "sc-add-gpc")
_TCP_NOT_YET = {
    "lua": "Lua", "send-spoe-group": "SPOE",
    "do-resolve": "resolvers (issue #13)", "use-service": "Lua (HAProxy's only TCP services)",
}


def rest_is(args: list, word: str) -> bool:
    return len(args) > 1 and args[1] == word


def _tcp_rule(proxy, what: str, ruleset: str, args: list):
    """One tcp-request/tcp-response rule as an http.rules.Rule (its condition set)."""
    from ...http.rules import Rule, RuleError, check_rule, parse_rule
    if not args:
        raise ValueError(f"'{what}' expects an action.")
    action = args[0]
    base = action.partition("(")[0]
    if base in _STICK:
        raise ValueError(f"'{what} {base}' needs stick tables, which fastlb does not support "
                         "yet.")
    if base == "use-service" and rest_is(args, "prometheus-exporter"):
        raise ValueError("Prometheus exporter service only available on 'http-request' "
                         "rulesets")
    if base in _TCP_NOT_YET:
        raise ValueError(f"'{what} {base}' needs {_TCP_NOT_YET[base]}, which fastlb does not "
                         "support yet.")
    if base in ("expect-proxy", "expect-netscaler-cip") and ruleset != "connection":
        raise ValueError(f"'{base} {args[1] if len(args) > 1 else ''}' is not allowed in "
                         f"'{what}' rules in {proxy.kind} '{proxy.name}'")
    if base not in _TCP_ACTIONS[ruleset]:
        raise ValueError(f"'{what}' unknown action '{action}'.")
    rest = args[1:]
    if base in ("accept", "reject", "silent-drop", "close"):
        rule = Rule(action=base)
    elif base == "expect-proxy":
        if not rest or rest[0] != "layer4":
            raise ValueError(f"'{what} expect-proxy' expects 'layer4'.")
        rule, rest = Rule(action=base), rest[1:]
    elif base == "expect-netscaler-cip":
        if not rest or rest[0] != "layer4":
            raise ValueError(f"'{what} {base}' only supports 'layer4' in {proxy.kind} "
                             f"'{proxy.name}' (got '{rest[0] if rest else ''}')")
        rule, rest = Rule(action=base), rest[1:]
    elif base == "switch-mode":
        if not rest or rest[0] != "http":
            raise ValueError(f"'{what} switch-mode' expects 'http'.")
        rest = rest[1:]
        if rest[:1] == ["proto"]:
            if rest[1:2] not in (["h1"], ["http/1.1"]):
                raise ValueError(f"'{what} switch-mode http proto' : only HTTP/1 ('h1') is "
                                 "supported by fastlb.")
            rest = rest[2:]
        if proxy.mode != "tcp":
            raise ValueError(f"'{what} switch-mode http' is only valid in a tcp proxy.")
        if not proxy.has_frontend:
            raise ValueError(f"'{what} switch-mode http' in a backend is not supported by "
                             "fastlb yet.")
        rule = Rule(action=base)
    else:
        place = "tcp-response content" if ruleset == "response" else \
            "tcp-request session" if ruleset == "session" else \
            "frontend http-request" if proxy.mode == "http" else "tcp-request content"
        try:
            rule, rest = parse_rule(args, ruleset == "response", None,
                                    "http-response" if ruleset == "response" else "")
            check_rule(rule, place if ruleset != "connection" else "tcp-request connection")
        except RuleError as exc:
            raise ValueError(f"'{what}' : {exc}") from None
        if rule.action == "capture":
            if not proxy.has_frontend or not rule.status:
                raise ValueError(f"'{what} capture' expects '<sample> len <length>' in a "
                                 "frontend.")
            rule.name = str(len(proxy.captures_req))
            proxy.captures_req.append((None, rule.status))
    if rest:
        if rest[0] not in ("if", "unless"):
            raise ValueError(f"'{what} {base}' : unexpected '{rest[0]}', expects 'if' or "
                             "'unless'.")
        rule.condition = condition(proxy, rest, f"'{what}'")
    return rule


@keyword("tcp-request", sections=PROXY_AND_DEFAULTS)
def tcp_request(parser, proxy, args, origin):
    """``tcp-request connection|session|content <action> [if|unless <cond>]`` and
    ``tcp-request inspect-delay <time>``."""
    if not args:
        raise ValueError("'tcp-request' expects 'connection', 'session', 'content' or "
                         "'inspect-delay'.")
    ruleset = args[0]
    if ruleset == "inspect-delay":
        if len(args) != 2:
            raise ValueError("'tcp-request inspect-delay' expects a timeout.")
        proxy.inspect_delay = parse_time_ms(args[1])
        return
    if ruleset not in ("connection", "session", "content"):
        raise ValueError(f"'tcp-request' : unknown ruleset '{ruleset}'.")
    if proxy.kind == "defaults":
        raise ValueError(f"'tcp-request {ruleset}' in a 'defaults' section is not supported "
                         "by fastlb yet.")
    if ruleset in ("connection", "session") and not proxy.has_frontend:
        raise ValueError(f"'tcp-request {ruleset}' is only allowed in a frontend or listen "
                         "section.")
    if ruleset == "content" and not proxy.has_frontend:
        raise ValueError("'tcp-request content' in a backend is not supported by fastlb yet.")
    rule = _tcp_rule(proxy, f"tcp-request {ruleset}", ruleset, args[1:])
    if rule.action == "set-nice":
        parser.warn(origin, f"'tcp-request {ruleset} set-nice' has no effect in fastlb (it has "
                    "no task scheduler to give a session a priority in).")
    {"connection": proxy.tcp_connection_rules, "session": proxy.tcp_session_rules,
     "content": proxy.tcp_content_rules}[ruleset].append((rule, origin))


@keyword("tcp-response", sections=PROXY_AND_DEFAULTS)
def tcp_response(parser, proxy, args, origin):
    """``tcp-response inspect-delay <time>`` and ``tcp-response content <action>``."""
    if not args or args[0] not in ("content", "inspect-delay"):
        raise ValueError("'tcp-response' expects 'content' or 'inspect-delay'.")
    if args[0] == "inspect-delay":
        if len(args) != 2:
            raise ValueError("'tcp-response inspect-delay' expects a timeout.")
        proxy.res_inspect_delay = parse_time_ms(args[1])
        return
    if proxy.kind == "defaults":
        raise ValueError("'tcp-response content' in a 'defaults' section is not supported by "
                         "fastlb yet.")
    if not proxy.has_backend:
        raise ValueError("'tcp-response content' is only allowed in a backend or listen "
                         "section.")
    rule = _tcp_rule(proxy, "tcp-response content", "response", args[1:])
    proxy.tcp_response_rules.append((rule, origin))


@keyword("default_backend", sections=FRONTENDS | DEFAULTS)
def default_backend(parser, proxy, args, origin):
    proxy.default_backend = one_arg(args, "default_backend")
    proxy.default_backend_origin = origin


@keyword("use_backend", sections=FRONTENDS)
def use_backend(parser, proxy, args, origin):
    if not args:
        raise ValueError("'use_backend' expects a backend name.")
    rule = None
    if len(args) > 1:
        rule = condition(proxy, args[1:], "switching rule")
    if "%" in args[0]:             # a name computed per request: checked as a value now
        try:
            compile_value(args[0], Context("use_backend"), check_only=True)
        except SampleError as exc:
            raise ValueError(f"'use_backend' : {exc}") from None
    proxy.switching_rules.append((args[0], rule, origin))


@keyword("use-server", sections=BACKENDS)
def use_server(parser, proxy, args, origin):
    """``use-server <server | log-format> if|unless <condition>``: checked once all the
    backend's servers are known."""
    if len(args) < 3 or args[1] not in ("if", "unless"):
        raise ValueError("'use-server' requires a server name and a condition "
                         "('if' or 'unless').")
    if "%" in args[0]:
        try:
            compile_value(args[0], Context("backend http-request"), check_only=True)
        except SampleError as exc:
            raise ValueError(f"'use-server' : {exc}") from None
    proxy.server_rules.append((args[0], condition(proxy, args[1:], "'use-server' rule"),
                               origin))


def persist_rule(kind: str):
    @keyword(kind, sections=BACKENDS)
    def rule(parser, proxy, args, origin):
        """``force-persist|ignore-persist if|unless <condition>``: the first that holds
        decides, once the request is in the backend."""
        if not args or args[0] not in ("if", "unless"):
            raise ValueError(f"'{kind}' requires either 'if' or 'unless' followed by a "
                             "condition.")
        proxy.persist_rules.append((kind, condition(proxy, args, f"'{kind}' rule")))
    return rule


persist_rule("force-persist")
persist_rule("ignore-persist")


@keyword("dispatch", sections=BACKENDS)
def dispatch(parser, proxy, args, origin):
    try:
        proxy.dispatch = addresses.parse_server_address(
            one_arg(args, "dispatch"), allow_no_port=False)
    except AddressError as exc:
        raise ValueError(f"'dispatch' : {exc}") from None


@keyword("http-reuse", sections=BACKENDS | DEFAULTS)
def http_reuse(parser, proxy, args, origin):
    value = one_arg(args, "http-reuse")
    if value not in ("never", "safe", "aggressive", "always"):
        raise ValueError("'http-reuse' only supports 'never', 'safe', 'aggressive', 'always'.")
    proxy.http_reuse = value


@keyword("timeout", sections=PROXY_AND_DEFAULTS)
def timeout(parser, proxy, args, origin):
    if not args or args[0] not in TIMEOUT_NAMES:
        got = args[0] if args else ""
        raise ValueError("'timeout' supports 'client', 'server', 'connect', 'check', 'queue', "
                         "'http-keep-alive', 'http-request', 'tunnel', 'tarpit', 'client-fin' and "
                         f"'server-fin' (got '{got}')")
    name = args[0]
    if len(args) != 2:
        raise ValueError(f"'timeout {name}' expects an integer value (in milliseconds)")
    try:
        value = parse_time_ms(args[1])
    except ValueError:
        bad = next((c for c in args[1] if not c.isdigit()), args[1][:1])
        raise ValueError(f"unexpected character '{bad}' in 'timeout {name}'") from None
    side = _TIMEOUT_SIDE[name]
    if (side == "frontend" and proxy.kind == "backend") or \
            (side == "backend" and proxy.kind == "frontend"):
        parser.warn(origin, f"'timeout {name}' will be ignored because {proxy.kind} "
                    f"'{proxy.name}' has no {side} capability")
    setattr(proxy.timeouts, name.replace("-", "_"), value)


def tcpka_keyword(name: str):
    """clitcpka-cnt|idle|intvl, srvtcpka-cnt|idle|intvl: the TCP keep-alive probes of
    client (cli) or server (srv) connections that option clitcpka/srvtcpka/tcpka enable."""
    @keyword(name, sections=PROXY_AND_DEFAULTS)
    def tcpka(parser, proxy, args, origin):
        if not args or not args[0]:
            raise ValueError(f"'{name}' expects an integer value")
        if name.endswith("-cnt"):
            try:
                value = int(args[0], 0)
            except ValueError:
                bad = next((c for c in args[0] if not c.isdigit()), args[0][:1])
                raise ValueError(f"'{name}' : unexpected character '{bad}' in integer value "
                                 f"'{args[0]}'") from None
        else:
            try:
                value = parse_time_s(args[0])
            except ValueError:
                bad = next((c for c in args[0] if not c.isdigit()), args[0][:1])
                raise ValueError(f"unexpected character '{bad}' in argument to <{name}>.") \
                    from None
        side = "frontend" if name.startswith("cli") else "backend"
        if proxy.kind == ("backend" if side == "frontend" else "frontend"):
            parser.warn(origin, f"{name} will be ignored because {proxy.kind} '{proxy.name}' "
                        f"has no {side} capability")
        setattr(proxy.options, name.replace("-", "_"), value)
    return tcpka


for _side in ("cli", "srv"):
    for _what in ("cnt", "idle", "intvl"):
        tcpka_keyword(f"{_side}tcpka-{_what}")


@keyword("option", sections=PROXY_AND_DEFAULTS)
def option(parser, proxy, args, origin, enable=True):
    if not args:
        raise ValueError("'option' expects an option name.")
    name = args[0]
    opts = proxy.options
    if name in ("tcplog", "httplog"):
        if not enable:
            raise ValueError(f"negation/default is not supported for option '{name}'.")
        clf = name == "httplog" and args[1:] == ["clf"]
        if len(args) > 1 and not clf:
            raise ValueError(f"'option {name}' does not take arguments here.")
        setattr(opts, name, True)
        if name == "httplog":
            opts.tcplog = False
            opts.httplog_clf = clf
    elif name == "logasap":
        opts.logasap = enable
    elif name == "dontlognull":
        opts.dontlognull = enable
    elif name == "http-buffer-request":
        opts.http_buffer_request = enable
    elif name == "http-ignore-probes":
        opts.ignore_probes = enable
    elif name == "http-restrict-req-hdr-names":
        if not enable or len(args) != 2 or args[1] not in ("preserve", "delete", "reject"):
            raise ValueError("'option http-restrict-req-hdr-names' expects 'preserve', "
                             "'delete' or 'reject' as argument.")
        opts.restrict_hdr_names = args[1]
    elif name in ALREADY_SO:
        if not enable and name.startswith("splice"):
            raise ValueError(f"'no option {name}' is not supported by fastlb yet (it "
                             "always splices bulk transfers).")
        # what fastlb always does (README): nothing to change
    elif name in ("log-separate-errors", "dontlog-normal", "nolinger", "prefer-last-server",
                  "abortonclose", "independent-streams"):
        setattr(opts, name.replace("-", "_"), enable)
    elif name == "transparent":
        if ignored_without(parser, proxy, origin, "transparent", "backend"):
            return
        opts.transparent = enable
    elif name == "redispatch":
        interval = -1
        if enable and len(args) > 1:
            try:
                interval = int(args[1])
            except ValueError:
                raise ValueError("'option redispatch' expects an integer interval.") from None
        opts.redispatch = interval if enable and interval != 0 else None
    elif name in ("tcpka", "clitcpka", "srvtcpka"):
        if name in ("tcpka", "clitcpka"):
            opts.clitcpka = enable
        if name in ("tcpka", "srvtcpka"):
            opts.srvtcpka = enable
    elif name in ("persist", "tcp-smart-accept", "tcp-smart-connect", "checkcache",
                  "http-pretend-keepalive", "http-use-proxy-header",
                  "h1-case-adjust-bogus-client", "h1-case-adjust-bogus-server", "contstats",
                  "accept-invalid-http-request", "accept-invalid-http-response",
                  "idle-close-on-response", "socket-stats"):
        side = "frontend" if name in ("tcp-smart-accept", "http-use-proxy-header",
                                      "h1-case-adjust-bogus-client", "contstats",
                                      "accept-invalid-http-request",
                                      "idle-close-on-response", "socket-stats") else "backend"
        if ignored_without(parser, proxy, origin, name, side):
            return
        setattr(opts, name.replace("-", "_"), enable)
    elif name == "log-health-checks":
        opts.log_health_checks = enable
    elif name == "allbackups":
        opts.allbackups = enable
    elif name == "httpchk":
        # one of the many options, so the registry's sections cannot refuse it
        if proxy.kind == "frontend":
            raise ValueError(f"'option httpchk' not allowed because frontend '{proxy.name}' "
                             "has no backend capability.")
        if not enable:
            proxy.httpchk = None
            return
        check = proxy.httpchk or HttpCheck()
        check.enabled = True
        words = args[1:]
        if len(words) == 1:
            check.uri = words[0]             # "option httpchk <uri>"
        elif len(words) >= 2:
            check.method, check.uri = words[0], words[1]
            if len(words) >= 3:
                # "<version>" may carry "\r\nHost: x" as old configs do
                version, _, extra = " ".join(words[2:]).partition("\r\n")
                check.version = version
                for line in extra.split("\r\n") if extra else []:
                    name, _, value = line.partition(":")
                    if name.strip():
                        check.headers.append((name.strip(), value.strip()))
        proxy.httpchk = check
    elif name == "forwardfor":
        opts.forwardfor = _forwardfor(args[1:]) if enable else None
    elif name == "originalto":
        opts.originalto = _forwardfor(args[1:], "originalto", "x-original-to") \
            if enable else None
    elif name in ("http-keep-alive", "http-server-close", "httpclose"):
        # HAProxy's HTTP connection modes; the last one set wins, "no" returns to keep-alive
        opts.http_mode = name if enable else "http-keep-alive"
    elif name in _OPTIONS_REMOVED:
        raise ValueError(_OPTIONS_REMOVED[name])
    elif name in _OPTIONS_NOT_YET:
        raise ValueError(f"'option {name}' is not supported by fastlb yet.")
    else:
        suggestion = did_you_mean(name, (*_OPTIONS, *sorted(_OPTIONS_NOT_YET)))
        raise ValueError(f"unknown option '{name}'{suggestion or '.'}")


def _forwardfor(args, option="forwardfor", header="x-forwarded-for"):
    """``option forwardfor [except <network>] [header <name>] [if-none]``, and
    ``option originalto [except <network>] [header <name>]``."""
    setting = ForwardFor(header=header)
    i = 0
    while i < len(args):
        if args[i] == "except" and i + 1 < len(args):
            try:
                setting.except_net = ipaddress.ip_network(args[i + 1], strict=False)
            except ValueError:
                raise ValueError(f"'option {option}' : invalid network '{args[i + 1]}'.") from None
            i += 2
        elif args[i] == "header" and i + 1 < len(args):
            setting.header = args[i + 1].lower()
            i += 2
        elif args[i] == "if-none" and option == "forwardfor":
            setting.if_none = True
            i += 1
        else:
            raise ValueError(f"'option {option}' : unknown parameter '{args[i]}'.")
    return setting


@keyword("no", sections=PROXY_AND_DEFAULTS)
def negation(parser, proxy, args, origin):
    if not args:
        raise ValueError("'no' expects an option.")
    if args[0] == "option":
        option(parser, proxy, args[1:], origin, enable=False)
    elif args[0] == "log" and len(args) == 1:
        proxy.logs = []
    else:
        raise ValueError(f"'no {args[0]}' is not supported.")


@keyword("log", sections=PROXY_AND_DEFAULTS)
def log(parser, proxy, args, origin):
    if args == ["global"]:
        proxy.logs.extend(parser.global_.logs)
        return
    log_statement(proxy.logs, args, in_global=False)


@keyword("log-format", sections=PROXY_AND_DEFAULTS)
def log_format(parser, proxy, args, origin):
    if ignored_without(parser, proxy, origin, "log-format", "frontend"):
        return
    text = " ".join(args)
    try:
        compile_format(text, check_only=True)
    except LogFormatError as exc:
        raise ValueError(f"'log-format' : {exc}") from None
    proxy.log_format = text


@keyword("error-log-format", sections=PROXY_AND_DEFAULTS)
def error_log_format(parser, proxy, args, origin):
    log_format_sd(parser, proxy, args, origin, "error-log-format")


@keyword("log-format-sd", sections=PROXY_AND_DEFAULTS)
def log_format_sd(parser, proxy, args, origin, keyword="log-format-sd"):
    if ignored_without(parser, proxy, origin, keyword, "frontend"):
        return
    text = " ".join(args)
    try:
        compile_format(text, check_only=True)
    except LogFormatError as exc:
        raise ValueError(f"'{keyword}' : {exc}") from None
    setattr(proxy, keyword.replace("-", "_"), text)


@keyword("unique-id-format", sections=PROXY_AND_DEFAULTS)
def unique_id_format(parser, proxy, args, origin):
    if not args:
        raise ValueError("'unique-id-format' expects an argument.")
    text = " ".join(args)
    try:
        compile_format(text, check_only=True)
    except LogFormatError as exc:
        raise ValueError(f"'unique-id-format' : {exc}") from None
    proxy.unique_id_format = text


@keyword("unique-id-header", sections=PROXY_AND_DEFAULTS)
def unique_id_header(parser, proxy, args, origin):
    proxy.unique_id_header = one_arg(args, "unique-id-header")


@keyword("log-tag", sections=PROXY_AND_DEFAULTS)
def log_tag(parser, proxy, args, origin):
    proxy.log_tag = one_arg(args, "log-tag")


@keyword("maxconn", sections=PROXY_AND_DEFAULTS)
def maxconn(parser, proxy, args, origin):
    if ignored_without(parser, proxy, origin, "maxconn", "frontend",
                       " Maybe you want 'fullconn' instead ?"):
        return
    proxy.maxconn = positive_int(args, "maxconn")


def c_strtol(text: str) -> tuple:
    """C's strtol(text, &end, 0): (value, what follows the number)."""
    match = re.match(r"\s*([-+]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)?", text)
    digits = match.group(2)
    if not digits:
        return 0, text
    value = int(digits, 16) if digits[:2] in ("0x", "0X") else \
        int(digits, 8) if digits[0] == "0" else int(digits)
    return (-value if match.group(1) == "-" else value), text[match.end():]


@keyword("max-keep-alive-queue", sections=PROXY_AND_DEFAULTS)
def max_keep_alive_queue(parser, proxy, args, origin):
    """With prefer-last-server: how long the last server's queue may be for a request to
    wait there rather than be balanced (-1, the default: any length; 0: never wait)."""
    if not args:
        raise ValueError("'max-keep-alive-queue' expects expects an integer value "
                         "(or -1 to disable)")
    value, rest = c_strtol(args[0])
    if rest:
        raise ValueError(f"'max-keep-alive-queue' : unexpected character '{rest[0]}' in "
                         f"integer value '{args[0]}'")
    if proxy.kind == "frontend":
        parser.warn(origin, f"max-keep-alive-queue will be ignored because frontend "
                    f"'{proxy.name}' has no backend capability")
        return
    # HAProxy keeps <value + 1>: 0 means any queue length (as any value below -1 does)
    proxy.max_ka_queue = value + 1 if value >= -1 else 0


@keyword("rate-limit", sections=PROXY_AND_DEFAULTS)
def rate_limit(parser, proxy, args, origin):
    """``rate-limit sessions <rate>``: new sessions per second, all workers together."""
    if not args or args[0] != "sessions":
        raise ValueError(f"'rate-limit' only supports 'sessions' (got '{args[0] if args else ''}').")
    if len(args) < 2 or not args[1].isdigit():
        raise ValueError("'rate-limit sessions' expects an integer value.")
    if not proxy.has_frontend and proxy.kind != "defaults":
        parser.warn(origin, f"rate-limit sessions will be ignored because backend "
                    f"'{proxy.name}' has no frontend capability")
        return
    proxy.rate_limit_sessions = int(args[1])


@keyword("fullconn", sections=PROXY_AND_DEFAULTS)
def fullconn(parser, proxy, args, origin):
    """Only scales the dynamic maxconn of servers with a minconn, which fastlb refuses:
    checked and kept, with no effect."""
    if ignored_without(parser, proxy, origin, "fullconn", "backend",
                       " Maybe you want 'maxconn' instead ?"):
        return
    proxy.fullconn = positive_int(args, "fullconn")


@keyword("source", sections=PROXY_AND_DEFAULTS)
def source(parser, proxy, args, origin):
    """``source <addr>[:<port>]``: the local address of server connections."""
    if ignored_without(parser, proxy, origin, "source", "backend"):
        return
    if not args:
        raise ValueError("'source' expects <addr>[:<port>] as argument.")
    usesrc, interface, used = source_options(args[1:], "source", server=False)
    if len(args) > used + 1:
        word = args[used + 1]
        if word == "namespace":
            raise ValueError("'source ... namespace' is not supported by fastlb yet.")
        raise ValueError(f"'source' only supports the 'usesrc', 'interface' and "
                         f"'namespace' keywords, not '{word}'.")
    proxy.source = source_address(args[0])
    proxy.usesrc, proxy.source_interface = usesrc, interface


def source_options(words: list, where: str, server: bool) -> tuple:
    """The ``usesrc`` and ``interface`` words that may follow a source's address:
    (usesrc, interface, how many words they took)."""
    usesrc = interface = None
    i = 0
    while i < len(words) and words[i] in ("usesrc", "interface"):
        if i + 1 >= len(words):
            if words[i] == "interface":
                raise ValueError(f"'{where}' : missing interface name.")
            forms = "'client', 'clientip', or 'hdr_ip(name,#)'" if server else \
                "'client', or 'clientip'"
            raise ValueError(f"'usesrc' expects <addr>[:<port>], {forms} as argument.")
        if words[i] == "usesrc":
            usesrc = usesrc_target(words[i + 1])
        else:
            interface = words[i + 1]
        i += 2
    return usesrc, interface, i


def usesrc_target(text: str) -> tuple:
    """What server connections present as their source in full transparent proxy mode:
    ("client",) its address and port, ("clientip",) its address, ("hdr", name, occurrence)
    the address in a request header, or ("addr", family, ip, port)."""
    if text in ("client", "clientip"):
        return (text,)
    if text.startswith("hdr_ip("):
        # as HAProxy reads it: the name up to ',' or ')', then atol() of the occurrence
        inner = text[len("hdr_ip("):]
        name, comma, rest = inner.partition(",")
        name = name.split(")", 1)[0]
        occurrence = -1
        if comma:
            digits = re.match(r"\s*[-+]?\d*", rest).group().strip()
            occurrence = int(digits) if digits.lstrip("+-") else 0
        return ("hdr", name.lower(), occurrence)
    try:
        address = addresses.parse_server_address(text[:-2] if text.endswith(":0") else text)
    except AddressError:
        address = None
    if address is None or address.family == socket.AF_UNIX or address.host != address.ip:
        raise ValueError(f"'usesrc {text}' : invalid address: '{text}' in '{text}'")
    return ("addr", address.family, address.ip, address.port)


def source_address(text: str) -> tuple:
    """``<addr>[:<port>]`` of a ``source`` (backend or server) -> (family, ip, port)."""
    try:
        # port 0 (or none): the kernel picks one
        address = addresses.parse_server_address(text[:-2] if text.endswith(":0") else text)
    except AddressError as exc:
        raise ValueError(f"'source' : {exc}") from None
    if address.family == socket.AF_UNIX:
        raise ValueError(f"'source' : address '{text}' is not an IPv4/IPv6 address.")
    return (address.family, address.ip, address.port)


@keyword("backlog", sections=PROXY_AND_DEFAULTS)
def backlog(parser, proxy, args, origin):
    proxy.backlog = positive_int(args, "backlog")


@keyword("retries", sections=PROXY_AND_DEFAULTS)
def retries(parser, proxy, args, origin):
    if ignored_without(parser, proxy, origin, "retries", "backend"):
        return
    value = one_arg(args, "retries")
    if not value.isdigit():
        raise ValueError("'retries' expects an integer argument.")
    proxy.retries = int(value)


# retry-on: the events a request is sent again on (HAProxy's PR_RE_* bits, the loop's
# RE_* in defs.pxd); a status is a bit of its own
RETRY_ON = {"conn-failure": 1, "empty-response": 2, "response-timeout": 4, "junk-response": 8,
            "0rtt-rejected": 16, "401": 1 << 8, "403": 1 << 9, "404": 1 << 10, "408": 1 << 11,
            "425": 1 << 12, "500": 1 << 13, "501": 1 << 14, "502": 1 << 15, "503": 1 << 16,
            "504": 1 << 17}
RETRY_ON["all-retryable-errors"] = sum(RETRY_ON[k] for k in (
    "conn-failure", "empty-response", "junk-response", "response-timeout", "0rtt-rejected",
    "500", "502", "503", "504"))


@keyword("http-send-name-header", sections=BACKENDS | DEFAULTS)
def http_send_name_header(parser, proxy, args, origin):
    if not args:
        raise ValueError("'http-send-name-header' requires a header string.")
    if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", args[0]):
        raise ValueError(f"'http-send-name-header' : '{args[0]}' is not a header name.")
    proxy.send_name_header = args[0].lower()


@keyword("retry-on", sections=BACKENDS | DEFAULTS)
def retry_on(parser, proxy, args, origin):
    """Replaces the setting (not cumulative); 'none' alone."""
    if not args:
        raise ValueError("'retry-on' expects at least one keyword.")
    bits = 0
    for word in args:
        if word == "none":
            if len(args) > 1:
                raise ValueError("'retry-on' : 'none' must be used alone.")
            continue
        if word not in RETRY_ON:
            raise ValueError(f"'retry-on' : unknown keyword '{word}'.")
        bits |= RETRY_ON[word]
    proxy.retry_on = bits


@keyword("id", sections=PROXIES)
def proxy_id(parser, proxy, args, origin):
    value = one_arg(args, "id")
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{proxy.kind} '{proxy.name}' : custom id has to be > 0.")
    proxy.id = int(value)
    proxy.forced_id = True


@keyword("disabled", sections=PROXIES)
def disabled(parser, proxy, args, origin):
    proxy.enabled = False


@keyword("enabled", sections=PROXIES)
def enabled(parser, proxy, args, origin):
    proxy.enabled = True


@keyword("description", sections=PROXY_AND_DEFAULTS)
def description(parser, proxy, args, origin):
    proxy.description = " ".join(args)
