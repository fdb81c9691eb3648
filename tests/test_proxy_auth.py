"""option http-use-proxy-header, differentially: a request to a proxy (an absolute target)
on such a frontend authenticates with Proxy-Authorization and is challenged with 407 and
Proxy-Authenticate (http-request auth and stats auth), an origin-form request keeps
Authorization and 401, exactly as haproxy 2.6 answers them."""
from __future__ import annotations

import base64
import shutil
import socket

import pytest

from conftest import Backend, free_port, read_head, serving

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")

GOOD = base64.b64encode(b"alice:secret").decode()
BAD = base64.b64encode(b"alice:wrong").decode()
REQUESTS = [
    ("http://example.com/a", ""),
    ("http://example.com/a", f"Proxy-Authorization: Basic {GOOD}"),
    ("http://example.com/a", f"Proxy-Authorization: Basic {BAD}"),
    ("http://example.com/a", f"Authorization: Basic {GOOD}"),
    ("/a", ""),
    ("/a", f"Authorization: Basic {GOOD}"),
    ("/a", f"Proxy-Authorization: Basic {GOOD}"),
    ("http://example.com/stats", ""),
    ("http://example.com/stats", f"Proxy-Authorization: Basic {GOOD}"),
    ("/stats", ""),
]


def ask(port: int, target: str, header: str) -> tuple:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        extra = header + "\r\n" if header else ""
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: example.com\r\n{extra}"
                     "Connection: close\r\n\r\n".encode())
        head, _ = read_head(sock, b"")
        lines = head.decode("latin-1").split("\r\n")
        challenge = [l.lower() for l in lines if "authenticate:" in l.lower()]
        return lines[0].split(" ")[1], challenge


def test_proxy_requests_authenticate_as_with_haproxy(tmp_path):
    backend = Backend(lambda conn, b: (read_head(conn, b""), conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")), "web")
    results = {}
    try:
        for program in ("haproxy", "fastlb"):
            port = free_port()
            cfg = tmp_path / f"{program}.cfg"
            cfg.write_text(f"""
userlist users
    user alice insecure-password secret
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    option http-use-proxy-header
    stats enable
    stats uri /stats
    stats auth alice:secret
    http-request auth realm shop unless {{ http_auth(users) }} || {{ path_beg /stats }}
    default_backend web
backend web
    server s 127.0.0.1:{backend.port}
""")
            with serving(program, cfg, [port]):
                results[program] = [ask(port, *request) for request in REQUESTS]
    finally:
        backend.close()
    assert results["fastlb"] == results["haproxy"]
    statuses = [status for status, _ in results["fastlb"]]
    assert "407" in statuses and "401" in statuses and "200" in statuses
