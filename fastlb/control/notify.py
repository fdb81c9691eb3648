"""systemd's readiness protocol for ``-Ws`` (a ``Type=notify`` unit), as sd_notify(3)
describes it: one datagram of ``KEY=value`` lines to the AF_UNIX socket named by
``$NOTIFY_SOCKET`` (a path, or ``@name`` for an abstract socket).  Plain sockets, so no
dependency on libsystemd.

What the master sends, and when (as HAProxy 2.6 does):

    READY=1, MAINPID=<pid>   the workers serve (at start-up, and after each reload)
    RELOADING=1              a reload starts (SIGHUP, SIGUSR2, master CLI "reload")
    STOPPING=1               the master was asked to stop (SIGINT, SIGTERM, SIGUSR1)
"""
from __future__ import annotations

import os
import socket


def notify_address(value: str | None) -> str | bytes | None:
    """The address ``$NOTIFY_SOCKET`` names, or None when it names none we can reach."""
    if not value:
        return None
    if value.startswith("@"):                 # abstract namespace: a leading NUL byte
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None


class Notifier:
    """Sends the master's state changes to the service manager; silent when there is
    none (a lost notification must never stop the load balancer)."""

    def __init__(self, address: str | bytes | None):
        self.address = address

    @classmethod
    def from_environment(cls) -> "Notifier":
        return cls(notify_address(os.environ.get("NOTIFY_SOCKET")))

    def send(self, *lines: str) -> bool:
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto("\n".join(lines).encode(), self.address)
        except OSError:
            return False
        return True

    def ready(self, pid: int) -> bool:
        return self.send("READY=1", f"MAINPID={pid}")

    def reloading(self) -> bool:
        return self.send("RELOADING=1")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")
