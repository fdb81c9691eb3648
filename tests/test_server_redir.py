"""server ... redir <prefix>, differentially: a GET or HEAD for that server is answered
with HAProxy's 302 to the prefix and the path (the prefix "/" keeps the path alone), other
methods reach the server; status line, headers, body and the closed connection are the
same as Debian's haproxy's, and so is the log line."""
from __future__ import annotations

import re
import shutil
import socket

import pytest

from conftest import Backend, free_port, parse_headers, read_body, read_head, recv_until_eof, \
    serving

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")


def origin(conn, backend):
    rest = b""
    while True:
        head, rest = read_head(conn, rest)
        if head is None:
            return
        _, fields = parse_headers(head)
        body, rest = read_body(conn, fields, rest)
        reply = b"origin " + head.split(b" ")[0] + b" " + head.split(b" ")[1]
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(reply), reply))


REQUESTS = [
    (0, b"GET /a/b?c=1 HTTP/1.1\r\nHost: x\r\n\r\n"),
    (0, b"HEAD /img.png HTTP/1.1\r\nHost: x\r\n\r\n"),
    (0, b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab"),
    (0, b"GET http://x/abs?q HTTP/1.1\r\nHost: x\r\n\r\n"),
    (1, b"GET /keep/path HTTP/1.0\r\n\r\n"),
    (1, b"DELETE /thing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
]


LOG = re.compile(r" (\S+/\S+) \S+ (\d{3}) \d+ \S+ \S+ (\S{4}) .*\"(.*)\"")


def exchange(port: int, request: bytes) -> tuple:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        data = recv_until_eof(sock) if not request.startswith(b"POST") else None
        if data is None:              # a kept connection: read one response
            head, rest = read_head(sock, b"")
            _, fields = parse_headers(head)
            body, _ = read_body(sock, fields, rest)
            data = head + body
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    fields = [line for line in lines[1:] if not line.lower().startswith(b"date:")]
    return lines[0], fields, body


def test_redir_servers_answer_as_haproxy(tmp_path, syslog):
    server = Backend(origin)
    seen = {}
    try:
        for program in ("haproxy", "fastlb"):
            ports = [free_port(), free_port()]
            log = syslog
            log.drain(0.1)
            cfg = tmp_path / f"{program}.cfg"
            cfg.write_text(f"""
defaults
    mode http
    log 127.0.0.1:{log.port} local0
    option httplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
listen far
    bind 127.0.0.1:{ports[0]}
    server s1 127.0.0.1:{server.port} redir http://static.example.com
listen near
    bind 127.0.0.1:{ports[1]}
    server s2 127.0.0.1:{server.port} redir /
""")
            with serving(program, cfg, ports):
                answers = [exchange(ports[which], request) for which, request in REQUESTS]
                lines = [log.recv() for _ in REQUESTS]
            # backend/server, status, termination flags and request of each line
            seen[program] = (answers, sorted(LOG.search(line).groups() for line in lines))
    finally:
        server.close()
    assert seen["fastlb"][0] == seen["haproxy"][0]
    assert seen["fastlb"][1] == seen["haproxy"][1]
    first = seen["haproxy"][0][0]
    assert first[0] == b"HTTP/1.1 302 Found"
    assert b"location: http://static.example.com/a/b?c=1" in [f.lower() for f in first[1]]
