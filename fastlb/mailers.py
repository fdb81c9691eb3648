"""Email alerts (HAProxy's ``mailers`` sections and ``email-alert``): a server's state
change mailed to each relay of the proxy's mailers section, with HAProxy 2.6's SMTP
dialogue (src/mailers.c: HELO, MAIL FROM, RCPT TO, DATA, QUIT, each answer awaited) and
its message.  A ``Delivery`` is one non-blocking SMTP client, driven by the health
checker's selector loop (fastlb/health.py), so a slow relay never delays a check."""
from __future__ import annotations

import selectors
import socket
import time

from .config.model import LEVELS, EmailAlert, Mailers

LEVEL_NUMBERS = {name: number for number, name in enumerate(LEVELS)}


def wanted(settings: EmailAlert, level: str) -> bool:
    """Whether a message of syslog ``level`` is mailed (email-alert level: the least
    severe one that is)."""
    return settings.active() and LEVEL_NUMBERS[level] <= LEVEL_NUMBERS[settings.level]


def dialogue(settings: EmailAlert, message: str, now: float | None = None) -> list:
    """HAProxy's steps: ("expect", answer prefix) and ("send", bytes)."""
    date = time.strftime("%a, %d %b %Y %H:%M:%S %z (%Z)", time.localtime(now))
    body = (f"From: {settings.sender}\r\nTo: {settings.to}\r\nDate: {date}\r\n"
            f"Subject: [HAProxy Alert] {message}\r\n\r\n{message}\r\n\r\n.\r\n")
    return [("expect", b"220 "), ("send", f"HELO {settings.myhostname}\r\n".encode()),
            ("expect", b"250 "), ("send", f"MAIL FROM:<{settings.sender}>\r\n".encode()),
            ("expect", b"250 "), ("send", f"RCPT TO:<{settings.to}>\r\n".encode()),
            ("expect", b"250 "), ("send", b"DATA\r\n"),
            ("expect", b"354 "), ("send", body.encode()),
            ("expect", b"250 "), ("send", b"QUIT\r\n"),
            ("expect", b"221 ")]


class Delivery:
    """One email to one relay: connect, then each step in turn; ``done`` once the relay
    said goodbye or failed; past ``deadline`` (timeout mail) its owner drops it, as HAProxy
    drops a failed alert."""

    def __init__(self, relay: tuple, steps: list, timeout_ms: int):
        _, host, port = relay
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.steps, self.step = steps, 0
        self.received = b""
        self.pending = b""
        self.done = self.delivered = False
        self.deadline = time.monotonic() + timeout_ms / 1000
        self.connected = self.sock.connect_ex((host, port)) == 0

    def events(self) -> int:
        if not self.connected or self.pending:
            return selectors.EVENT_WRITE
        return selectors.EVENT_READ

    def on_event(self, events: int) -> None:
        try:
            if not self.connected:
                if self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                    return self.finish()
                self.connected = True
            if events & selectors.EVENT_WRITE and self.pending:
                self.pending = self.pending[self.sock.send(self.pending):]
            elif events & selectors.EVENT_READ:
                data = self.sock.recv(4096)
                if not data:
                    return self.finish()
                self.received += data
            self.advance()
        except OSError:
            self.finish()

    def advance(self) -> None:
        """Run the steps the answers so far allow (an expected answer anywhere in what the
        relay sent since the last command, as a tcp-check expect string)."""
        while not self.pending and self.step < len(self.steps):
            kind, data = self.steps[self.step]
            if kind == "expect":
                if data not in self.received:
                    return
                self.received = b""
            else:
                self.pending = data
            self.step += 1
        if self.step == len(self.steps) and not self.pending:
            self.delivered = True
            self.finish()

    def expired(self, now: float) -> bool:
        return now >= self.deadline

    def finish(self) -> None:
        self.done = True              # its owner unregisters, then closes the socket


def deliveries(settings: EmailAlert, mailers: dict, message: str) -> list:
    """One Delivery per relay of the proxy's mailers section."""
    section: Mailers = mailers[settings.mailers]
    steps = dialogue(settings, message)
    made: list = []
    try:
        for relay in section.relays:
            made.append(Delivery(relay, steps, section.timeout_ms))
    except OSError:
        for mail in made:
            mail.sock.close()
        raise
    return made
