"""``server`` and ``default-server`` lines and their options."""
from __future__ import annotations

import os

from .. import addresses
from ..addresses import AddressError
from ..model import Server
from ..units import parse_time_ms, tcp_user_timeout
from .registry import BACKENDS, PROXY_AND_DEFAULTS, did_you_mean, keyword

# the options _server_options() reads (for "did you mean")
_SERVER_OPTIONS = (
    "weight", "backup", "disabled", "check", "no-backup", "enabled", "no-check", "maxconn",
    "maxqueue", "rise", "fall", "inter", "fastinter", "downinter", "observe", "error-limit",
    "on-error", "port", "addr", "id", "cookie", "pool-purge-delay", "proto", "tfo", "no-tfo", "tcp-ut",
)

# need TLS, which fastlb does not have yet
_SERVER_NEEDS_TLS = {"send-proxy-v2-ssl", "send-proxy-v2-ssl-cn", "check-ssl"}
_PP2_OPTIONS = ("crc32c", "authority")
_PP2_OPTIONS_NOT_YET = {
    "ssl": "needs TLS", "cert-cn": "needs TLS", "ssl-cipher": "needs TLS",
    "cert-sig": "needs TLS", "cert-key": "needs TLS",
    "unique-id": "needs unique-id-format",
}
_SERVER_NOT_YET = {
    "ssl", "verify", "ca-file", "crt", "sni", "slowstart",
    "track", "on-marked-down", "on-marked-up",
    "resolvers", "resolve-prefer", "init-addr", "agent-check", "check-ssl",
    "alpn", "pool-max-conn",
    "agent-port", "agent-inter",
}


@keyword("server", sections=BACKENDS)
def server(parser, proxy, args, origin):
    if len(args) < 2:
        raise ValueError("'server' expects <name> and <addr>[:<port>] as arguments.")
    name = args[0]
    what = f"'server {proxy.name}/{name}'"
    if any(s.name == name for s in proxy.servers):
        raise ValueError(f"{what} : a server with this name already exists in backend '{proxy.name}'.")
    try:
        address = addresses.parse_server_address(args[1])
    except AddressError as exc:
        parser.alerts.append(f"[{origin}] : {what} : {exc}")
        return
    entry = Server(**vars(proxy.default_server))
    entry.name, entry.address, entry.origin = name, address, origin
    try:
        _server_options(entry, args[2:])
        if address.sockpair is not None and entry.check:
            raise ValueError("health checks of a sockpair@ server are not supported by "
                             "fastlb yet.")
    except ValueError as exc:
        parser.alerts.append(f"[{origin}] : {what} : {exc}")
        return
    proxy.servers.append(entry)


@keyword("default-server", sections=PROXY_AND_DEFAULTS)
def default_server(parser, proxy, args, origin):
    _server_options(proxy.default_server, args)


def _server_options(target, args):
    i = 0

    def value(kind="int", low=0, high=None):
        nonlocal i
        if i + 1 >= len(args):
            raise ValueError(f"'{option}' expects {'a time' if kind.startswith('time') else 'an integer'}"
                             " argument.")
        i += 1
        text = args[i]
        if kind in ("time", "time or 0"):
            number = parse_time_ms(text)
            if number == 0 and kind == "time":
                raise ValueError(f"invalid value 0 for argument '{option}'.")
            return number
        if kind == "str":
            return text
        if not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
            if option == "weight":
                raise ValueError(f"weight of server is not within 0 and 256 ({text}).")
            raise ValueError(f"'{option}' expects an integer argument >= {low} (got '{text}').")
        return int(text)

    while i < len(args):
        option = args[i]
        if option == "weight":
            target.weight = value(high=256)
        elif option in ("backup", "disabled", "check"):
            setattr(target, option, True)
        elif option == "no-backup":
            target.backup = False
        elif option == "enabled":
            target.disabled = False
        elif option == "no-check":
            target.check = False
        elif option in ("maxconn", "maxqueue", "minconn"):
            setattr(target, option, value())
        elif option in ("rise", "fall"):
            setattr(target, option, value(low=1))
        elif option in ("inter", "fastinter", "downinter"):
            setattr(target, option, value("time"))
        elif option == "pool-purge-delay":
            target.pool_purge_delay = value("time or 0")
        elif option == "observe":
            mode = value("str")
            if mode not in ("layer4", "layer7", "none"):
                raise ValueError(f"'observe' expects one of 'none', 'layer4', 'layer7' "
                                 f"but got '{mode}'.")
            target.observe = None if mode == "none" else mode
        elif option == "error-limit":
            target.error_limit = value(low=1)
        elif option == "on-error":
            action = value("str")
            if action not in ("fastinter", "fail-check", "sudden-death", "mark-down"):
                raise ValueError("'on-error' expects one of 'fastinter', 'fail-check', "
                                 f"'sudden-death' or 'mark-down' but got '{action}'.")
            target.on_error = action
        elif option == "port":
            target.check_port = value(low=1, high=65535)
        elif option == "addr":
            target.check_addr = addresses.parse_server_address(value("str"),
                                                               allow_no_port=True).ip
        elif option in ("id", "cookie"):
            if not isinstance(target, Server):
                raise ValueError(f"'{option}' is not permitted on 'default-server'.")
            if option == "cookie":
                target.cookie = value("str")
                if any(char in target.cookie for char in "\r\n\0"):
                    raise ValueError("'cookie' may not hold CR, LF or NUL (it is written "
                                     "in Set-Cookie).")
            else:
                target.id = value(low=1)
                target.forced_id = True
        elif option == "redir":
            if i + 1 >= len(args) or not args[i + 1]:
                raise ValueError("'redir' expects <prefix> as argument.")
            target.redir = value("str")
            if any(char in target.redir for char in "\r\n\0"):
                raise ValueError("'redir' may not hold CR, LF or NUL (it is written in "
                                 "Location).")
        elif option == "namespace":
            if i + 1 >= len(args) or not args[i + 1]:
                raise ValueError("'namespace' : expects <name> as argument")
            name = value("str")
            if name == "*":
                raise ValueError("'namespace *' is not supported by fastlb yet (it takes the "
                                 "namespace of a PROXY header, which fastlb does not read).")
            if "/" in name or not os.path.exists(os.path.join(addresses.NETNS_DIR, name)):
                raise ValueError(f"Cannot open namespace '{name}'")
            target.namespace = name
        elif option == "ws":
            mode = value("str") if i + 1 < len(args) else ""
            if mode not in ("auto", "h1", "h2"):
                raise ValueError("'ws' has to be 'auto', 'h1' or 'h2'")
            if mode == "h2":
                raise ValueError("'ws h2' is not supported by fastlb yet (it needs HTTP/2).")
            # auto and h1: websockets go as HTTP/1.1, the only protocol fastlb speaks to
            # servers (without ALPN, which needs TLS, there is nothing to downgrade)
        elif option == "source":
            from .proxy import source_address, source_options
            target.source = source_address(value("str"))
            target.usesrc, target.source_interface, used = source_options(
                args[i + 1:], "server", server=True)
            i += used
            if i + 1 < len(args) and args[i + 1] == "namespace":
                raise ValueError("'source ... namespace' is not supported by fastlb yet.")
        elif option == "usesrc":
            raise ValueError("'usesrc' only allowed after a 'source' statement..")
        elif option == "proto":
            from .proxy import mux_protocol
            if i + 1 >= len(args):
                raise ValueError("'proto' : missing value.")
            target.proto = mux_protocol(value("str"), "'proto' : ", server=True)
        elif option in ("tfo", "no-tfo"):
            target.tfo = option == "tfo"
        elif option == "tcp-ut":
            i += 1
            try:
                target.tcp_ut = tcp_user_timeout(option, args[i] if i < len(args) else None)
            except ValueError as exc:
                raise ValueError(f"{exc}.") from None     # HAProxy's server messages end so
        elif option == "send-proxy":
            target.send_proxy = 1
        elif option == "send-proxy-v2":
            target.send_proxy = 2
        elif option == "no-send-proxy" or option == "no-send-proxy-v2":
            target.send_proxy = 0
        elif option == "check-send-proxy":
            target.check_send_proxy = True
        elif option == "no-check-send-proxy":
            target.check_send_proxy = False
        elif option == "proxy-v2-options":
            words = value("str").split(",")
            for word in words:
                if word in _PP2_OPTIONS_NOT_YET:
                    raise ValueError(f"'proxy-v2-options {word}' is not supported by fastlb "
                                     f"yet ({_PP2_OPTIONS_NOT_YET[word]}).")
                if word not in _PP2_OPTIONS:
                    raise ValueError(f"'proxy-v2-options' : unknown option '{word}'.")
            # as in HAProxy, they apply to a v2 header: alone they send nothing
            target.pp_options = tuple(dict.fromkeys(target.pp_options + tuple(words)))
        elif option in _SERVER_NEEDS_TLS:
            raise ValueError(f"server option '{option}' is not supported by fastlb yet "
                             "(it needs TLS).")
        elif option in _SERVER_NOT_YET:
            raise ValueError(f"server option '{option}' is not supported by fastlb yet.")
        else:
            suggestion = did_you_mean(option, (*_SERVER_OPTIONS, *sorted(_SERVER_NOT_YET)))
            raise ValueError(f"unknown keyword '{option}'{suggestion or '.'}")
        i += 1
