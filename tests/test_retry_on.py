"""retry-on (HAProxy's layer-7 retries), http-request disable-l7-retry and
http-send-name-header, compared with haproxy 2.6 on the same configuration: what the client
gets, which requests each server saw (bodies and heads included), and the retry and
redispatch counters of the statistics."""
from __future__ import annotations

import csv
import socket
import subprocess
import time

import pytest

from conftest import (FASTLB, HttpBackend, free_port, http_response, listening_sockets,
                      parse_headers, read_body, read_head, wait_until)
from test_tcp_rules import HAPROXY, needs_haproxy


class Server(HttpBackend):
    """A server that behaves as ``kind`` says on every request, and records them."""

    def __init__(self, kind: str, name: str):
        self.kind = kind
        super().__init__(name, self.answer)

    @property
    def seen(self) -> list:
        return [(r["method"], r["body"].decode()) for r in self.requests]

    @property
    def heads(self) -> list:
        return [r["head"] for r in self.requests]

    def answer(self, request):
        if self.kind == "close":
            return None                                 # nothing said
        if self.kind == "junk":
            return b"this is not http\r\n\r\n"
        if self.kind == "slow":
            time.sleep(0.6)                             # beyond timeout server
        status = {"503": 503, "404": 404}.get(self.kind, 200)
        return http_response(status, f"{self.name}:{status}".encode(), reason="X")


CASES = {
    # name: (retry-on, redispatch, first server's kind, request method, extra line)
    "503 on the same server": ("503", False, "503", "GET", ""),
    "503 redispatched": ("503", True, "503", "GET", ""),
    "empty response": ("empty-response", True, "close", "GET", ""),
    "junk response": ("junk-response", True, "junk", "GET", ""),
    "response timeout": ("response-timeout", True, "slow", "GET", ""),
    "all retryable errors": ("all-retryable-errors", True, "close", "GET", ""),
    "a status not named": ("503", True, "404", "GET", ""),
    "no conn-failure": ("503", True, "down", "GET", ""),
    "none": ("none", True, "down", "GET", ""),
    "disabled by a rule": ("503", True, "503", "GET", "http-request disable-l7-retry"),
    "small body replayed": ("503 504", True, "503", "POST", ""),
    "a buffer's worth of body replayed": ("503", True, "503", "BIG", ""),
    "round robin moves on at once": ("503", True, "503", "GET", "balance roundrobin"),
    "one retry left": ("503", True, "503", "GET", "retries 1"),
}


def config(port, sock, s1, s2, retry_on, redispatch, extra):
    return f"""
global
    stats socket {sock} level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 300ms
listen web
    bind 127.0.0.1:{port}
    balance first
    retries 3
    retry-on {retry_on}
    {"option redispatch" if redispatch else ""}
    {extra}
    server s1 127.0.0.1:{s1}
    server s2 127.0.0.1:{s2}
"""


def ask(port, method):
    body = b"payload=1234" if method == "POST" else b"x" * 12000 if method == "BIG" else b""
    method = "POST" if method == "BIG" else method
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"{method} /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data.split(b" ", 2)[1].decode(), data.partition(b"\r\n\r\n")[2].decode()


def stats(sock):
    with socket.socket(socket.AF_UNIX) as cli:
        cli.connect(str(sock))
        cli.sendall(b"show stat\n")
        text = b""
        while chunk := cli.recv(65536):
            text += chunk
    rows = {(r["pxname"], r["svname"]): r for r in
            csv.DictReader(text.decode().lstrip("# ").splitlines())}
    return {name: (rows[("web", name)]["wretr"], rows[("web", name)]["wredis"])
            for name in ("s1", "s2", "BACKEND")}


@needs_haproxy
@pytest.mark.parametrize("case", CASES)
def test_retry_on_as_haproxy(tmp_path, case):
    retry_on, redispatch, kind, method, extra = CASES[case]
    seen = {}
    for name in ("haproxy", "fastlb"):
        first = Server(kind, "s1")
        if kind == "down":
            first.close()                   # its port refuses connections
        second = Server("ok", "s2")
        port = free_port()
        sock = tmp_path / f"{name}.sock"
        path = tmp_path / f"{name}.cfg"
        path.write_text(config(port, sock, first.port, second.port, retry_on, redispatch, extra))
        cmd = [HAPROXY, "-db", "-f", str(path)] if name == "haproxy" else \
            FASTLB + ["-d", "-f", str(path), "-n", "1"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                stderr=open(tmp_path / f"{name}.err", "wb"), cwd=tmp_path)
        try:
            wait_until(lambda: listening_sockets(port) > 0, message=f"{name} listening")
            answer = ask(port, method)
            time.sleep(0.3)
            seen[name] = (answer, list(first.seen), list(second.seen), stats(sock))
        finally:
            proc.terminate()
            proc.wait(5)
            first.close()
            second.close()
    assert seen["fastlb"] == seen["haproxy"], (seen["fastlb"], seen["haproxy"])


@needs_haproxy
def test_send_name_header_names_the_server_each_attempt_goes_to(tmp_path):
    """The header the client sent is replaced; a retry redispatched to s2 says s2; a
    keep-alive request on the same connection names its server too; the heads each server
    receives are byte for byte haproxy's."""
    seen = {}
    for name in ("haproxy", "fastlb"):
        first, second = Server("503", "s1"), Server("ok", "s2")
        port = free_port()
        sock = tmp_path / f"{name}.sock"
        path = tmp_path / f"{name}.cfg"
        path.write_text(config(port, sock, first.port, second.port, "503", True,
                               "http-send-name-header X-Served-By"))
        cmd = [HAPROXY, "-db", "-f", str(path)] if name == "haproxy" else \
            FASTLB + ["-d", "-f", str(path), "-n", "1"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                stderr=open(tmp_path / f"{name}.err", "wb"), cwd=tmp_path)
        try:
            wait_until(lambda: listening_sockets(port) > 0, message=f"{name} listening")
            with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
                answers = []
                for i in range(2):
                    client.sendall(f"GET /{i} HTTP/1.1\r\nHost: x\r\nX-Served-By: forged\r\n"
                                   "User-Agent: t\r\n\r\n".encode())
                    head, rest = read_head(client)
                    _, fields = parse_headers(head)
                    body, _ = read_body(client, fields, rest)
                    answers.append((head.split(b" ")[1], body))
            seen[name] = (answers, first.heads, second.heads)
        finally:
            proc.terminate()
            proc.wait(5)
            first.close()
            second.close()
    answers, s1_heads, s2_heads = seen["fastlb"]
    assert answers == [(b"200", b"s2:200"), (b"200", b"s2:200")]
    assert all(b"x-served-by: s1\r\n" in h.lower() and b"forged" not in h for h in s1_heads)
    assert all(b"x-served-by: s2\r\n" in h.lower() and b"forged" not in h for h in s2_heads)
    assert seen["fastlb"] == seen["haproxy"], (seen["fastlb"], seen["haproxy"])


def test_send_name_header_with_a_dispatch_address_names_nothing(fastlb):
    """A backend whose only destination is a dispatch address has no server to name: the
    request goes out without the header (as in HAProxy), and the worker serves on."""
    origin = Server("ok", "origin")
    port = free_port()
    try:
        fastlb(f"""
        defaults
            mode http
            timeout connect 1s
            timeout client 5s
            timeout server 5s
        listen web
            bind 127.0.0.1:{port}
            http-send-name-header X-Served-By
            dispatch 127.0.0.1:{origin.port}
        """, ports=[port])
        for _ in range(2):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
                client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Served-By: forged\r\n"
                               b"Connection: close\r\n\r\n")
                assert client.recv(100).startswith(b"HTTP/1.1 200")
        assert len(origin.heads) == 2
        assert all(b"x-served-by" not in head.lower() for head in origin.heads)
    finally:
        origin.close()
