"""Email alerts: a mailers section and email-alert lines make a server's health-check state
changes go out by SMTP, to a relay the test runs.  haproxy 2.6 and fastlb run the same
configuration; the SMTP sessions each relay records (commands, headers and message) are
compared, dates and check durations masked."""
from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import FASTLB, Backend, free_port, wait_until

CONFIG = """
mailers relays
    mailer smtp1 127.0.0.1:{smtp}
    timeout mail 5s
defaults
    mode tcp
    timeout connect 1s
    timeout client 2s
    timeout server 2s
    timeout check 500ms
backend b
    email-alert mailers relays
    email-alert from lb@example.com
    email-alert to ops@example.com
    email-alert myhostname lb.example
    email-alert level {level}
    server s1 127.0.0.1:{server} check inter 150ms fall 1 rise 1
backend quiet
    server s2 127.0.0.1:{server} check inter 150ms fall 1 rise 1
listen front
    bind 127.0.0.1:{port}
    server s3 127.0.0.1:{server}
"""


class FakeRelay:
    """An SMTP relay that accepts every email and records each session's lines."""

    def __init__(self):
        self.sessions: list = []
        self.server = Backend(self._session, "relay")
        self.port = self.server.port

    def _session(self, conn, _backend):
        lines, buffer, in_data = [], b"", False
        conn.settimeout(10)
        conn.sendall(b"220 relay.test ESMTP\r\n")
        while True:
            try:
                data = conn.recv(4096)
            except OSError:               # haproxy resets once it has its 221
                break
            if not data:
                break
            buffer += data
            while b"\r\n" in buffer:
                line, buffer = buffer.split(b"\r\n", 1)
                lines.append(line.decode())
                if in_data:
                    if line == b".":
                        in_data = False
                        conn.sendall(b"250 2.0.0 queued\r\n")
                    continue
                verb = line[:4].upper()
                if verb == b"DATA":
                    in_data = True
                    conn.sendall(b"354 go ahead\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                else:
                    conn.sendall(b"250-relay.test\r\n250 ok\r\n")
        self.sessions.append(lines)

    def close(self):
        self.server.close()


def masked(session: list) -> list:
    out = []
    for line in session:
        line = re.sub(r"^Date: .*", "Date: DATE", line)
        out.append(re.sub(r"check duration: \d+ms", "check duration: Nms", line))
    return out


def run(program: str, tmp_path, level: str) -> list:
    relay = FakeRelay()
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    server_port = server.getsockname()[1]
    port = free_port()
    cfg = tmp_path / f"{program}.cfg"
    cfg.write_text(CONFIG.format(smtp=relay.port, level=level, server=server_port, port=port))
    cmd = ["haproxy", "-db", "-f", str(cfg)] if program == "haproxy" else \
        FASTLB + ["-d", "-n", "1", "-f", str(cfg)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.8)                       # a few passing checks: no mail for them
        assert relay.sessions == []
        server.close()                        # refused: DOWN
        wait_until(lambda: len(relay.sessions) >= 1, timeout=5, message="the DOWN alert")
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", server_port))
        server.listen(64)                     # back: UP
        time.sleep(1.0)
        return [masked(session) for session in relay.sessions]
    finally:
        proc.terminate()
        proc.wait(5)
        server.close()
        relay.close()


def test_state_changes_are_mailed(tmp_path):
    sessions = run("fastlb", tmp_path, "notice")
    assert len(sessions) == 2, sessions          # DOWN, then UP; backend quiet mails none
    down, up = sessions
    assert down[:4] == ["HELO lb.example", "MAIL FROM:<lb@example.com>",
                        "RCPT TO:<ops@example.com>", "DATA"]
    assert down[4:7] == ["From: lb@example.com", "To: ops@example.com", "Date: DATE"]
    assert down[7].startswith("Subject: [HAProxy Alert] Server b/s1 is DOWN, reason: Layer4 "
                              "connection problem")
    assert down[-3:] == ["", ".", "QUIT"] and down[9] == down[7][len("Subject: [HAProxy "
                                                                      "Alert] "):]
    assert up[7].startswith("Subject: [HAProxy Alert] Server b/s1 is UP")


def test_level_alert_mails_the_down_only(tmp_path):
    sessions = run("fastlb", tmp_path, "alert")
    assert [s[7].split(" is ")[1][:4] for s in sessions] == ["DOWN"]


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")
@pytest.mark.parametrize("level", ["notice", "alert"])
def test_the_same_sessions_as_haproxy(tmp_path, level):
    assert run("fastlb", tmp_path, level) == run("haproxy", tmp_path, level)
