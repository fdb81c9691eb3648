"""Log lines out to HAProxy-style targets: UDP syslog, UNIX datagram, stdout/stderr.

Headers follow HAProxy 2.6 byte for byte (checked against it):

    rfc3164   <134>Nov 22 04:26:13 haproxy[3108]: msg
    rfc5424   <134>1 2026-11-22T04:26:29.210624+00:00 - haproxy 3169 - - msg
    short     <6>msg            priority  <134>msg          raw  msg
    timed     <6>2026-11-22T04:26:29.210819+00:00 msg       iso  2026-...+00:00 msg
"""
from __future__ import annotations

import os
import socket
import sys
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:       # the configuration imports log formats, which import this module
    from .config.model import LogTarget

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
LEVEL_NAMES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
EMERG, ALERT, NOTICE, INFO = 0, 1, 5, 6     # syslog severities


def _iso_now(now: float) -> str:
    return datetime.fromtimestamp(now, timezone.utc).astimezone().isoformat(timespec="microseconds")


class LogSink:
    """Sends one message to every target of a proxy (or of the global section)."""

    def __init__(self, targets: list[LogTarget], tag: str, pid: int, hostname: str | None = None):
        self.targets = targets
        self.tag = tag
        self.pid = pid
        self.hostname = hostname
        self._sockets: dict[int, socket.socket] = {}

    def __bool__(self) -> bool:
        return bool(self.targets)

    def _socket(self, family: int) -> socket.socket:
        sock = self._sockets.get(family)
        if sock is None:
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            self._sockets[family] = sock
        return sock

    def format(self, target: LogTarget, level: int, message: str, now: float,
               sd: str = "-") -> bytes:
        pri = target.facility * 8 + level
        fmt = target.format
        if fmt == "raw":
            line = message
        elif fmt == "short":
            line = f"<{level}>{message}"
        elif fmt == "priority":
            line = f"<{pri}>{message}"
        elif fmt == "timed":
            line = f"<{level}>{_iso_now(now)} {message}"
        elif fmt == "iso":
            line = f"{_iso_now(now)} {message}"
        elif fmt == "rfc5424":
            host = self.hostname or "-"
            line = f"<{pri}>1 {_iso_now(now)} {host} {self.tag} {self.pid} - {sd or '-'} {message}"
        else:  # rfc3164 and local
            tm = time.localtime(now)
            host = f"{self.hostname} " if self.hostname and fmt == "rfc3164" else ""
            line = (f"<{pri}>{MONTHS[tm.tm_mon - 1]} {tm.tm_mday:2d} "
                    f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d} "
                    f"{host}{self.tag}[{self.pid}]: {message}")
        data = line.encode("utf-8", "replace")
        if len(data) + 1 > target.length:
            data = data[:target.length - 1]
        return data + b"\n"

    def send(self, level: int, message: str, sd: str = "-") -> None:
        """``sd``: the RFC 5424 structured data (log-format-sd), for rfc5424 targets."""
        now = time.time()
        for target in self.targets:
            if level > target.max_level:
                continue
            effective = max(level, target.min_level)
            data = self.format(target, effective, message, now, sd)
            try:
                if target.kind == "udp":
                    self._socket(target.family).sendto(data, target.address)
                elif target.kind == "unix":
                    self._socket(socket.AF_UNIX).sendto(data, target.address)
                else:
                    os.write(1 if target.kind == "stdout" else 2, data)
            except OSError:
                pass  # a full or absent log receiver must never stop traffic


def console(level: str, message: str) -> None:
    """A message on stderr in HAProxy's shape: ``[LEVEL]   (pid) : message``."""
    tag = f"[{level}]"
    sys.stderr.write(f"{tag:<10} ({os.getpid()}) : {message}\n")
    sys.stderr.flush()


def format_accept_date(epoch_ms: int) -> str:
    """HAProxy's ``%t`` / ``%tr`` date: ``22/Nov/2026:04:26:13.409`` in local time."""
    tm = time.localtime(epoch_ms // 1000)
    return (f"{tm.tm_mday:02d}/{MONTHS[tm.tm_mon - 1]}/{tm.tm_year}:"
            f"{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}.{epoch_ms % 1000:03d}")


def format_address(addr: tuple) -> str:
    return f"{addr[0]}:{addr[1]}"
