"""Address forms found in haproxy.cfg: listeners, servers and log targets."""
from __future__ import annotations

import ipaddress
import re
import socket
from typing import Optional

from .model import Listener, ServerAddress

# where "ip netns" names network namespaces (bind / server ... namespace <name>)
NETNS_DIR = "/var/run/netns"
_PORT_RANGE = re.compile(r"^([0-9]+)(?:-([0-9]+))?$")


class AddressError(ValueError):
    pass


def _split_host_port(text: str) -> tuple[str, str]:
    """Split ``host:port``, ``[v6]:port`` or ``v6:port`` (last colon is the port)."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise AddressError(f"missing ']' in '{text}'")
        host, rest = text[1:end], text[end + 1:]
        if rest and not rest.startswith(":"):
            raise AddressError(f"invalid address '{text}'")
        return host, rest[1:]
    if ":" not in text:
        return text, ""
    host, _, port = text.rpartition(":")
    return host, port


def _strip_family_prefix(text: str) -> tuple[Optional[int], str]:
    for prefix, family in (("ipv4@", socket.AF_INET), ("ipv6@", socket.AF_INET6),
                           ("tcp4@", socket.AF_INET), ("tcp6@", socket.AF_INET6),
                           ("udp4@", socket.AF_INET), ("udp6@", socket.AF_INET6),
                           ("tcp@", None), ("udp@", None)):
        if text.startswith(prefix):
            return family, text[len(prefix):]
    return None, text


def _numeric_family(host: str) -> Optional[int]:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return None


def resolve_host(host: str, family: Optional[int] = None) -> tuple[int, str]:
    """Numeric address for ``host`` (resolved once at start-up, as HAProxy does with libc)."""
    numeric = _numeric_family(host)
    if numeric is not None:
        if family is not None and family != numeric:
            raise AddressError(f"address family mismatch for '{host}'")
        return numeric, host
    try:
        infos = socket.getaddrinfo(host, None, family or socket.AF_UNSPEC, socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise AddressError(f"could not resolve address '{host}'") from None
    infos.sort(key=lambda info: 0 if info[0] == socket.AF_INET else 1)
    return infos[0][0], infos[0][4][0]


def _parse_port(text: str, what: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise AddressError(f"invalid port '{text}'" if text else f"missing port specification in '{what}'")
    return int(text)


def unix_path(text: str) -> Optional[str]:
    """The socket path of ``unix@<path>``, ``/<path>`` or ``abns@<name>``, else None.  An
    abstract name is a leading NUL, then the name padded with NULs to the whole sun_path,
    as HAProxy binds and connects them (so that the two reach each other's)."""
    if text.startswith("unix@"):
        path = text[5:]
    elif text.startswith("/"):
        path = text
    elif text.startswith("abns@"):
        path = "\0" + text[5:]
    else:
        return None
    if len(path.encode()) > 107 or len(path) < 2:
        raise AddressError(f"invalid UNIX socket address '{text}'")
    if path.startswith("\0"):
        path += "\0" * (108 - len(path.encode()))
    return path


def parse_server_address(text: str, allow_no_port: bool = True) -> ServerAddress:
    """``server``/``dispatch`` address; no port means "the port the client connected to"."""
    path = unix_path(text)
    if path is not None:
        return ServerAddress(family=socket.AF_UNIX, host=text, ip=path, port=0)
    if text.startswith("sockpair@"):
        if not text[len("sockpair@"):].isdigit():
            raise AddressError(f"invalid file descriptor in '{text}' (is the variable set?)")
        return ServerAddress(family=socket.AF_UNIX, host=text, ip="", port=0,
                             sockpair=int(text[len("sockpair@"):]))
    if text.startswith("fd@"):
        raise AddressError(f"address '{text}' : fd@ server addresses are not supported by fastlb yet")
    family, rest = _strip_family_prefix(text)
    host, port_text = _split_host_port(rest)
    if not host:
        raise AddressError(f"missing address in '{text}'")
    if port_text == "":
        if not allow_no_port:
            raise AddressError(f"missing port specification in '{text}'")
        port = 0
    elif port_text.startswith(("+", "-")):
        raise AddressError(f"port offsets ('{text}') are not supported by fastlb yet")
    else:
        port = _parse_port(port_text, text)
    resolved_family, ip = resolve_host(host, family)
    return ServerAddress(family=resolved_family, host=host, ip=ip, port=port)


def parse_bind_addresses(text: str) -> list[Listener]:
    """Expand one ``bind`` address list (comma separated, port ranges) into listeners."""
    listeners = []
    for item in text.split(","):
        if not item:
            raise AddressError(f"empty address in '{text}'")
        if item.startswith(("fd@", "sockpair@")):
            pair = item.startswith("sockpair@")
            fd_text = item[len("sockpair@") if pair else 3:]
            if not fd_text.isdigit():
                raise AddressError(f"invalid file descriptor in '{item}' (is the variable set?)")
            listeners.append(Listener(family=socket.AF_UNIX if pair else 0, host="", port=0,
                                      fd=int(fd_text), sockpair=pair, text=item))
            continue
        path = unix_path(item)
        if path is not None:
            listeners.append(Listener(family=socket.AF_UNIX, host=path, port=0, text=item))
            continue
        if item.startswith(("quic4@", "quic6@", "udp")):
            raise AddressError(f"address '{item}' : only TCP, UNIX and fd@ listeners are supported by fastlb yet")
        family, rest = _strip_family_prefix(item)
        host, port_text = _split_host_port(rest)
        match = _PORT_RANGE.match(port_text)
        if not match:
            if not port_text:
                raise AddressError(f"missing port number: '{item}'")
            raise AddressError(f"invalid port range '{port_text}' in '{item}'")
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if not 0 < low <= high < 65536:
            raise AddressError(f"invalid port range '{port_text}' in '{item}'")
        if host in ("", "*"):
            host = "::" if family == socket.AF_INET6 else "0.0.0.0"
        resolved_family, ip = resolve_host(host, family)
        for port in range(low, high + 1):
            listeners.append(Listener(family=resolved_family, host=ip, port=port, text=item))
    return listeners


def parse_log_address(text: str) -> tuple[str, object, int]:
    """``log`` target: returns (kind, address, family)."""
    if text in ("stdout", "fd@1"):
        return "stdout", None, 0
    if text in ("stderr", "fd@2"):
        return "stderr", None, 0
    if text.startswith("unix@"):
        return "unix", text[5:], socket.AF_UNIX
    if text.startswith("/"):
        return "unix", text, socket.AF_UNIX
    if text.startswith(("ring@", "fd@", "abns@")):
        raise AddressError(f"log target '{text}' is not supported by fastlb yet")
    family, rest = _strip_family_prefix(text)
    host, port_text = _split_host_port(rest)
    port = 514 if port_text == "" else _parse_port(port_text, text)
    resolved_family, ip = resolve_host(host, family)
    return "udp", (ip, port), resolved_family
