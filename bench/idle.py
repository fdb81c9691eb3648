"""Idle keep-alive connections: open N client connections through a proxy, make one
request on each, and hold them while the proxy's memory is read.

Bounded: every connection gets one request, the whole set has a deadline, and the
sockets are closed before returning.
"""
from __future__ import annotations

import resource
import selectors
import socket
import time

REQUEST = b"GET /small HTTP/1.1\r\nHost: bench\r\n\r\n"


def fd_budget() -> int:
    """How many idle connections this machine lets one run hold: the client, the proxy
    (client and server sides) and the origin each need a descriptor per connection; HAProxy
    wants 2 x maxconn + a few, with maxconn = connections + 100."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(0, (min(soft, hard) - 600) // 2)


def raise_fd_limit(wanted: int) -> None:
    """Raise this process's descriptor limit (inherited by the proxies it starts) when
    allowed: as root the hard limit can grow too."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in ((wanted, max(hard, wanted)), (min(wanted, hard), hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, limit)
            return
        except (ValueError, OSError):
            continue


class IdleClients:
    def __init__(self, port: int, count: int, deadline_s: float = 60.0):
        self.port = port
        self.count = count
        self.deadline = time.monotonic() + deadline_s
        self.socks: list[socket.socket] = []
        self.answered = 0

    def open(self) -> int:
        """Connect, send one request on each connection, read each response; returns how
        many connections got a complete 200 answer and are now idle."""
        sel = selectors.DefaultSelector()
        pending: dict[socket.socket, bytes] = {}
        try:
            for _ in range(self.count):
                if time.monotonic() > self.deadline:
                    break
                sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                sock.sendall(REQUEST)
                sock.setblocking(False)
                self.socks.append(sock)
                pending[sock] = b""
                sel.register(sock, selectors.EVENT_READ)
                # read what is already there so the listen backlog never overflows
                if len(pending) >= 256:
                    self._collect(sel, pending, wait=0)
            while pending and time.monotonic() < self.deadline:
                self._collect(sel, pending, wait=0.5)
        finally:
            sel.close()
        return self.answered

    def _collect(self, sel, pending, wait) -> None:
        for key, _ in sel.select(wait):
            sock = key.fileobj
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                continue
            if not data:
                sel.unregister(sock)
                del pending[sock]
                continue
            pending[sock] += data
            head, sep, body = pending[sock].partition(b"\r\n\r\n")
            if sep and len(body) >= 3:
                if head.startswith(b"HTTP/1.1 200"):
                    self.answered += 1
                sel.unregister(sock)
                del pending[sock]

    def close(self) -> None:
        for sock in self.socks:
            sock.close()
        self.socks.clear()
