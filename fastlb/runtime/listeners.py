"""Listening sockets for ``bind`` lines.

The master binds every address once per worker slot with SO_REUSEPORT (the kernel
spreads new connections over the slots) and keeps the sockets in a ``ListenerPool``
across reloads; an inherited ``fd@`` socket is shared as is by every worker.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import socket
from typing import Optional

from ..config.addresses import NETNS_DIR

DEFAULT_BACKLOG = 1024


def unix_socket(listener) -> socket.socket:
    """A UNIX listener: bound under a temporary name, given its mode and owner, then
    renamed over the path (HAProxy's way: the path never points at a socket without its
    permissions, and a stale one is replaced).  An abstract (abns@) name is bound as is."""
    path = listener.host
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if path.startswith("\0"):
            sock.bind(path)
            return sock
        temp = f"{path}.{os.getpid()}.tmp"
        if os.path.lexists(temp):
            os.unlink(temp)
        sock.bind(temp)
        try:
            if listener.mode is not None:
                os.chmod(temp, listener.mode)
            if listener.uid is not None or listener.gid is not None:
                os.chown(temp, -1 if listener.uid is None else listener.uid,
                         -1 if listener.gid is None else listener.gid)
            os.rename(temp, path)
        except OSError:
            os.unlink(temp)
            raise
    except OSError:
        sock.close()
        raise
    return sock


IP_TRANSPARENT, IPV6_TRANSPARENT = 19, 75      # <linux/in.h>, <linux/in6.h>


def socket_options(sock: socket.socket, listener) -> None:
    """The bind line's socket options (a refusal, e.g. transparent without
    CAP_NET_ADMIN, stops the start with the option named)."""
    def apply(what: str, level: int, name: int, value) -> None:
        try:
            sock.setsockopt(level, name, value)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot set '{what}' on {listener.describe()}: "
                                     f"{exc.strerror}") from None
    if listener.transparent:
        v6 = listener.family == socket.AF_INET6
        apply("transparent", socket.IPPROTO_IPV6 if v6 else socket.IPPROTO_IP,
              IPV6_TRANSPARENT if v6 else IP_TRANSPARENT, 1)
    if listener.interface:
        apply("interface", socket.SOL_SOCKET, socket.SO_BINDTODEVICE,
              listener.interface.encode() + b"\0")
    if listener.defer_accept:
        apply("defer-accept", socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 1)   # up to 1 s
    if listener.tfo:
        apply("tfo", socket.IPPROTO_TCP, socket.TCP_FASTOPEN, listener.backlog or 1024)
    if listener.mss:
        apply("mss", socket.IPPROTO_TCP, socket.TCP_MAXSEG, listener.mss)
    if listener.tcp_ut:     # accepted connections inherit it from the listening socket
        apply("tcp-ut", socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, listener.tcp_ut)


_CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def network_namespace(name: Optional[str]):
    """Sockets made inside belong to network namespace ``name`` (``ip netns`` names it
    under /var/run/netns), as HAProxy's ``namespace``; the process goes back to its own
    namespace afterwards.  A socket keeps the namespace it was made in."""
    if not name:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY | os.O_CLOEXEC)
        try:
            if libc.setns(target, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
        finally:
            os.close(target)
        try:
            yield
        finally:
            if libc.setns(home, _CLONE_NEWNET) != 0:       # cannot stay in the wrong one
                raise SystemExit(f"fastlb: cannot return to its own network namespace: "
                                 f"{os.strerror(ctypes.get_errno())}")
    finally:
        os.close(home)


def bound_socket(listener, reuseport: bool = True) -> socket.socket:
    """A socket bound to the listener's address (not listening yet); SO_REUSEPORT unless
    ``noreuseport`` (the workers then share one socket)."""
    if listener.family == socket.AF_UNIX:
        return unix_socket(listener)
    with network_namespace(listener.namespace):
        sock = socket.socket(listener.family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if listener.family == socket.AF_INET6 and listener.v6only is not None:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(listener.v6only))
        socket_options(sock, listener)
        sock.bind((listener.host, listener.port))
    except OSError:
        sock.close()
        raise
    return sock


def inherited_socket(listener) -> socket.socket:
    """A worker's own non-blocking copy of an ``fd@`` listener."""
    sock = socket.socket(fileno=os.dup(listener.fd))
    sock.setblocking(False)
    return sock


def smart_accept(proxy) -> bool:
    """option tcp-smart-accept, on by default in HTTP mode as in HAProxy."""
    chosen = proxy.options.tcp_smart_accept
    return proxy.mode == "http" if chosen is None else chosen


def listener_backlog(listener, proxy) -> int:
    # HAProxy: bind "backlog", else the proxy's "backlog", else its maxconn.
    return listener.backlog or proxy.backlog or proxy.maxconn or DEFAULT_BACKLOG


def check_inherited(tables) -> list[str]:
    """Every ``fd@`` listener must be an open descriptor (HAProxy's words on failure)."""
    errors = []
    for fe in tables.frontends:
        for listener in fe.listeners:
            if listener.fd is None:
                continue
            try:
                os.fstat(listener.fd)
            except OSError as exc:
                errors.append(f"Binding [{listener.origin}] for {fe.proxy.type_name} "
                              f"{fe.proxy.name}: cannot bind inherited fd@{listener.fd} "
                              f"({exc.strerror}) for [{listener.describe()}]")
    return errors


def listener_key(listener, occurrence: int) -> tuple:
    """What identifies a bind address across reloads (the n-th bind of the same address)."""
    return (listener.family, listener.host, listener.port, listener.v6only, listener.namespace,
            occurrence)


def listener_keys(tables) -> list:
    """[(frontend index, listener, key)] for the bound (not fd@) listeners of the tables."""
    seen: dict = {}
    out = []
    for fe in tables.frontends:
        for listener in fe.listeners:
            if listener.fd is not None:
                continue
            base = listener_key(listener, 0)
            seen[base] = seen.get(base, -1) + 1
            out.append((fe, listener, listener_key(listener, seen[base])))
    return out


class ListenerPool:
    """The master's listening sockets, kept from one configuration generation to the next.

    Each bind address has one SO_REUSEPORT socket per worker slot, and worker N of every
    generation accepts on slot N's sockets.  A reload therefore hands the very same
    sockets to the new workers: connections waiting in a backlog are accepted by the new
    worker instead of being reset when an old one closes its copy."""

    def __init__(self):
        self.sockets: dict[tuple, list] = {}      # key -> [socket per worker slot]

    def prepare(self, tables, nworkers: int) -> list[str]:
        """Bind what the tables need and the pool lacks.  All or nothing: on an error the
        sockets bound by this call are closed and HAProxy's messages are returned.  A slot
        whose worker does not accept on a listener (bind ... thread) gets no socket, since
        the kernel would queue connections on it that nobody takes."""
        added: list = []
        errors: list = []
        reuseport = not tables.config.global_.noreuseport
        for fe, listener, key in listener_keys(tables):
            have = list(self.sockets.get(key, []))
            have += [None] * (nworkers - len(have))
            backlog = listener_backlog(listener, fe.proxy)
            try:
                for sock in have:
                    if sock is not None:
                        sock.listen(backlog)      # a reload may change the backlog
                for slot in range(nworkers):
                    if have[slot] is not None or not listener.serves(slot):
                        continue
                    first = next((s for s in have if s is not None), None)
                    if first is not None and (listener.family == socket.AF_UNIX or
                                              not reuseport):
                        # one path (or noreuseport), one socket: every worker slot
                        # accepts on a copy
                        sock = socket.socket(fileno=os.dup(first.fileno()))
                    else:
                        sock = bound_socket(listener, reuseport)
                    added.append(sock)
                    sock.listen(backlog)
                    sock.setblocking(False)
                    have[slot] = sock
                if listener.family != socket.AF_UNIX:
                    # tcp-smart-accept (a reload may change it): no quick ACK, the first
                    # one rides on the response
                    quickack = 0 if smart_accept(fe.proxy) else 1
                    for sock in have:
                        if sock is not None:
                            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, quickack)
            except OSError as exc:
                errors.append(f"Binding [{listener.origin}] for {fe.proxy.type_name} "
                              f"{fe.proxy.name}: cannot bind socket ({exc.strerror}) for "
                              f"[{listener.describe()}]")
                continue
            self.sockets[key] = have
        if errors:
            for key, socks in list(self.sockets.items()):
                self.sockets[key] = [None if s in added else s for s in socks]
                if all(s is None for s in self.sockets[key]):
                    del self.sockets[key]
            for sock in added:
                sock.close()
        return errors

    def slot(self, tables, worker: int) -> dict:
        """{id(listener): socket} for worker slot ``worker`` of these tables: the listeners
        it accepts on."""
        out = {}
        for _, listener, key in listener_keys(tables):
            socks = self.sockets[key]
            if listener.serves(worker) and worker < len(socks) and socks[worker] is not None:
                out[id(listener)] = socks[worker]
        return out

    def keep_only(self, tables, nworkers: int) -> None:
        """Close what the current tables no longer use (addresses removed, fewer workers,
        workers a bind ... thread no longer names)."""
        wanted = {key: listener for _, listener, key in listener_keys(tables)}
        for key in list(self.sockets):
            socks = self.sockets[key]
            if key not in wanted:
                del self.sockets[key]
                closing = socks
            else:
                kept = [s if wanted[key].serves(slot) else None
                        for slot, s in enumerate(socks[:nworkers])]
                closing = [s for s in socks if s not in kept]
                self.sockets[key] = kept
            for sock in closing:
                if sock is not None:
                    sock.close()

    def fds(self) -> list[int]:
        return [s.fileno() for socks in self.sockets.values() for s in socks if s is not None]

    def close_all(self, keep=()) -> None:
        """Close every socket but those in ``keep`` (a worker keeps its own slot)."""
        keep_fds = {s.fileno() for s in keep}
        for socks in self.sockets.values():
            for sock in socks:
                if sock is not None and sock.fileno() not in keep_fds:
                    sock.close()
        self.sockets = {}

    # -- hand-over to a new process ("expose-fd listeners", "-x") ------------------------------
    def export(self) -> tuple[list, list[int]]:
        """([key, slot] per socket, descriptors in the same order)."""
        names, fds = [], []
        for key, socks in self.sockets.items():
            for slot, sock in enumerate(socks):
                if sock is None:
                    continue
                names.append([list(key), slot])
                fds.append(sock.fileno())
        return names, fds

    def adopt(self, names: list, fds: list[int]) -> None:
        """Take sockets received from an old process, by key and slot."""
        found: dict = {}
        for (key, slot), fd in zip(names, fds):
            found.setdefault(tuple(key), {})[slot] = fd
        for key, slots in found.items():
            socks = [None] * (max(slots) + 1)
            for slot, fd in slots.items():
                socks[slot] = socket.socket(fileno=fd)
                socks[slot].setblocking(False)
            self.sockets[key] = socks
