"""Listening sockets for ``bind`` lines.

Every worker binds its own socket with SO_REUSEPORT (the kernel spreads new
connections over them); an inherited ``fd@`` socket is shared as is.  The master
binds each address once before forking, so a busy port is an error at start-up.
"""
from __future__ import annotations

import os
import socket

DEFAULT_BACKLOG = 1024


def bound_socket(listener) -> socket.socket:
    """A socket bound to the listener's address (not listening yet)."""
    sock = socket.socket(listener.family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if listener.family == socket.AF_INET6 and listener.v6only is not None:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(listener.v6only))
        sock.bind((listener.host, listener.port))
    except OSError:
        sock.close()
        raise
    return sock


def listening_socket(listener, backlog: int) -> socket.socket:
    """The non-blocking listening socket a worker accepts on."""
    if listener.fd is not None:
        sock = socket.socket(fileno=os.dup(listener.fd))
    else:
        sock = bound_socket(listener)
        sock.listen(backlog)
    sock.setblocking(False)
    return sock


def listener_backlog(listener, proxy) -> int:
    # HAProxy: bind "backlog", else the proxy's "backlog", else its maxconn.
    return listener.backlog or proxy.backlog or proxy.maxconn or DEFAULT_BACKLOG


def check_listeners(tables) -> list[str]:
    """Try every bind address once (in the master), in HAProxy's words on failure."""
    errors = []
    for fe in tables.frontends:
        where = f"{fe.proxy.type_name} {fe.proxy.name}"
        for listener in fe.listeners:
            try:
                if listener.fd is not None:
                    os.fstat(listener.fd)
                else:
                    bound_socket(listener).close()
            except OSError as exc:
                what = f"inherited fd@{listener.fd}" if listener.fd is not None else "socket"
                errors.append(f"Binding [{listener.origin}] for {where}: cannot bind {what} "
                              f"({exc.strerror}) for [{listener.describe()}]")
    return errors
