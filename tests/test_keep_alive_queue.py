"""option prefer-last-server with max-keep-alive-queue, differentially: a keep-alive
client whose last server is full waits for that server (HAProxy's default, and while the
server's queue is shorter than the setting) or is balanced to another one (0, or a queue
as long as allowed), in Debian's haproxy as in fastlb; the setting's mistakes are refused
with haproxy's words."""
from __future__ import annotations

import shutil
import socket
import subprocess
import threading

import pytest

from conftest import FASTLB, free_port, parse_headers, read_body, read_head, serving, \
    wait_until

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")


class NamedServer:
    """Answers with its name; a request for /hold waits until release()."""

    def __init__(self, name: str):
        self.name = name.encode()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.go = threading.Event()
        self.holding = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(10)
        rest = b""
        try:
            while True:
                head, rest = read_head(conn, rest)
                if head is None:
                    return
                if b" /hold " in head.split(b"\r\n", 1)[0] + b" ":
                    self.holding += 1
                    self.go.wait(10)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(self.name), self.name))
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.go.set()
        self.sock.close()


def get(sock, path: str, rest=b"") -> tuple:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head, rest = read_head(sock, rest)
    _, fields = parse_headers(head)
    body, rest = read_body(sock, fields, rest)
    return body.decode(), rest


def second_request_server(program: str, tmp_path, setting: str) -> list:
    """[the keep-alive client's first server, the server of its second request once b is
    free (None: still waiting for a), the same once a is free too]."""
    a, b = NamedServer("a"), NamedServer("b")
    port = free_port()
    cfg = tmp_path / f"{program}.cfg"
    cfg.write_text(f"""
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    timeout queue 10s
backend be
    balance roundrobin
    option prefer-last-server
    http-reuse never
    {setting}
    server a 127.0.0.1:{a.port} maxconn 1
    server b 127.0.0.1:{b.port} maxconn 1
frontend f
    bind 127.0.0.1:{port}
    default_backend be
""")
    out = []
    try:
        with serving(program, cfg, [port]):
            keep = socket.create_connection(("127.0.0.1", port), timeout=10)
            first, rest = get(keep, "/")                  # a: round robin's first
            out.append(first)
            holders = []
            for _ in range(2):                            # b, then a again: both full
                holder = socket.create_connection(("127.0.0.1", port), timeout=10)
                holder.sendall(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
                holders.append(holder)
            wait_until(lambda: a.holding == b.holding == 1, message="both servers full")
            result = {}

            def second():
                result["server"], _ = get(keep, "/", rest)
            thread = threading.Thread(target=second)
            thread.start()
            thread.join(0.5)
            b.go.set()                                    # b is free first
            thread.join(0.7)
            out.append(result.get("server"))             # None: it still waits for a
            a.go.set()
            thread.join(5)
            out.append(result.get("server"))
            for holder in holders:
                holder.close()
            keep.close()
    finally:
        a.close()
        b.close()
    return out


@pytest.mark.parametrize("setting, waits", [
    ("", True),                                   # HAProxy's default: wait for the last one
    ("max-keep-alive-queue -1", True),
    ("max-keep-alive-queue 0", False),            # never wait: balanced (b, once free)
    ("max-keep-alive-queue 1", True),             # HAProxy keeps 1 + 1: queue 0 + 1 < 2
])
def test_a_full_last_server_is_waited_for_or_not_as_haproxy(tmp_path, setting, waits):
    seen = {p: second_request_server(p, tmp_path, setting) for p in ("haproxy", "fastlb")}
    assert seen["fastlb"] == seen["haproxy"]
    assert seen["haproxy"] == (["a", None, "a"] if waits else ["a", "b", "b"])


@pytest.mark.parametrize("value", ["", "x", "5x", "0x10", "010", "-3"])
def test_values_are_read_like_haproxy(tmp_path, value):
    cfg = tmp_path / "k.cfg"
    cfg.write_text("defaults\n    timeout connect 1s\n    timeout client 1s\n"
                   f"    timeout server 1s\nbackend be\n    mode http\n"
                   f"    max-keep-alive-queue {value}\n    server a 127.0.0.1:1\n")
    answers = []
    for cmd in (["haproxy"], FASTLB):
        result = subprocess.run(cmd + ["-c", "-f", str(cfg)], capture_output=True, text=True)
        alerts = [line.split(" : config : ", 1)[1] for line in result.stderr.splitlines()
                  if "[ALERT]" in line and "k.cfg:7]" in line]
        answers.append((result.returncode == 0, alerts))
    assert answers[0] == answers[1]
