"""option checkcache, differentially: for the same responses, Debian's haproxy 2.6 and
fastlb must let the same ones through and block the same ones (a cacheable response that
sets a cookie), with the same answer to the client, log line and alert."""
from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from urllib.parse import quote, unquote

import pytest

from conftest import (FASTLB, Backend, free_port, listening_sockets, mask_log_line, read_head,
                      wait_until)

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")

COOKIE = "Set-Cookie: sid=42"
# (method, status, the response's extra header lines)
CASES = [
    ("GET", 200, [COOKIE]),                                       # no lifetime, no validator
    ("GET", 200, [COOKIE, "Cache-Control: max-age=60"]),
    ("GET", 200, [COOKIE, "Expires: Thu, 01 Dec 2039 16:00:00 GMT"]),
    ("GET", 200, [COOKIE, "Last-Modified: Thu, 01 Dec 2020 16:00:00 GMT"]),
    ("GET", 200, [COOKIE, 'ETag: "x1"']),
    ("GET", 200, [COOKIE, "Cache-Control: max-age=60, private"]),
    ("GET", 200, [COOKIE, 'Cache-Control: max-age=60, no-cache="set-cookie"']),
    ("GET", 200, [COOKIE, "Cache-Control: max-age=60", "Pragma: no-cache"]),
    ("GET", 200, [COOKIE, "Cache-Control: max-age=0"]),
    ("GET", 200, ["Cache-Control: max-age=60"]),                  # no cookie
    ("GET", 200, ["Set-Cookie2: a=1", "Cache-Control: s-maxage=30"]),
    ("POST", 200, [COOKIE, "Cache-Control: max-age=60"]),         # not a safe method
    ("POST", 200, [COOKIE, "Cache-Control: public, max-age=60"]),
    ("GET", 302, [COOKIE, "Cache-Control: max-age=60"]),          # not cacheable by default
    ("GET", 302, [COOKIE, "Cache-Control: public", "Cache-Control: max-age=60"]),
    ("GET", 404, [COOKIE, "Expires: Thu, 01 Dec 2039 16:00:00 GMT"]),
    ("GET", 203, [COOKIE, "Cache-Control: max-age=60"]),          # no page of its own: 500's
    ("HEAD", 200, [COOKIE, "Cache-Control: max-age=60"]),
    ("GET", 200, ["set-cookie: a=b", "cache-control: PUBLIC", "last-modified: x"]),
]


def respond(conn, backend):
    """Answer each request with the status and headers its path asks for (keep-alive)."""
    buffer = b""
    while True:
        head, buffer = read_head(conn, buffer)
        if not head:
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target = lines[0].split(" ")[:2]
        length = next((int(l.split(":", 1)[1]) for l in lines[1:]
                       if l.lower().startswith("content-length:")), 0)
        while len(buffer) < length:
            buffer += conn.recv(65536)
        buffer = buffer[length:]
        status, _, extra = target.lstrip("/").partition("/")
        fields = [unquote(f) for f in extra.split("/") if f]
        body = b"" if method == "HEAD" else b"hello"
        conn.sendall(f"HTTP/1.1 {status} Whatever\r\nContent-Length: 5\r\n".encode() +
                     "".join(f + "\r\n" for f in fields).encode() + b"\r\n" + body)


def config(port: int, server: int, syslog_port: int) -> str:
    return f"""
global
    log 127.0.0.1:{syslog_port} local0
defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
listen app
    bind 127.0.0.1:{port}
    option checkcache
    server web 127.0.0.1:{server}
"""


def exchange(port: int, method: str, status: int, fields: list) -> tuple[bytes, bool]:
    """The raw answer to one request, and whether the connection stayed open after it."""
    path = f"/{status}/" + "/".join(quote(f, safe="") for f in fields)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        body = b"x=1" if method == "POST" else b""
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len(body)}"
                     f"\r\n\r\n".encode() + body)
        head, rest = read_head(sock, b"")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        if method == "HEAD":
            length = 0                  # no body follows, blocked or not
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        sock.settimeout(0.3)
        try:
            still_open = sock.recv(1) != b""
        except socket.timeout:
            still_open = True
        return head + rest, still_open


def run(cmd: list, port: int, syslog) -> tuple[list, list, str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: listening_sockets(port) > 0, message="listening")
        answers = [exchange(port, *case) for case in CASES]
        time.sleep(0.2)
        lines = [mask_log_line(line) for line in syslog.drain()]
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=5)
    return answers, lines, err


def masked(line: str) -> str:
    """Timers and byte counts are the programs' own; the rest must be equal."""
    line = re.sub(r" \d+/\d+/\d+/-?\d+/\d+ ", " T ", line)
    return re.sub(r"(\d{3}) \d+ - -", r"\1 BYTES - -", line)


def test_checkcache_blocks_what_haproxy_blocks(tmp_path, syslog):
    backend = Backend(respond, "web")
    try:
        results = {}
        for program in ("haproxy", "fastlb"):
            port = free_port()
            cfg = tmp_path / f"{program}.cfg"
            cfg.write_text(config(port, backend.port, syslog.port))
            cmd = ["haproxy", "-f", str(cfg)] if program == "haproxy" else \
                FASTLB + ["-n", "2", "-f", str(cfg)]
            results[program] = run(cmd, port, syslog)
    finally:
        backend.close()
    theirs, ours = results["haproxy"], results["fastlb"]
    for case, their, our in zip(CASES, theirs[0], ours[0]):
        # header name case is each program's (HAProxy writes its pages in lower case)
        assert our[0].lower() == their[0].lower() and our[1] == their[1], case
    blocked = [case for case, answer in zip(CASES, ours[0]) if b"sid=42" not in answer[0]
               and b"a=" not in answer[0]]
    assert 8 <= len(blocked) < len(CASES) - 5
    assert sorted(map(masked, ours[1])) == sorted(map(masked, theirs[1]))
    alerts = [line for line in ours[2].splitlines() if "Blocking cacheable cookie" in line]
    assert len(alerts) == len([l for l in theirs[2].splitlines() if "Blocking cacheable" in l])
    assert alerts[0].endswith("Blocking cacheable cookie in response from instance app, "
                              "server web.")


def test_http_settings_in_a_tcp_proxy_are_warned_about_and_dropped_like_haproxy(tmp_path):
    """checkcache, http-request rules, forwardfor, ... in a tcp proxy: HAProxy warns and
    ignores them (fastlb refused the rules); the proxy then relays bytes untouched."""
    backend = Backend(lambda conn, b: conn.sendall(conn.recv(100)), "echo")
    port = free_port()
    cfg = tmp_path / "tcp.cfg"
    cfg.write_text(f"""
defaults
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    option checkcache
    default_backend be
backend be
    mode tcp
    option checkcache
    option http-buffer-request
    option prefer-last-server
    option forwardfor
    http-request deny
    http-response deny
    redirect location /elsewhere
    server s 127.0.0.1:{backend.port}
""")
    try:
        warnings = []
        for cmd in (["haproxy"], FASTLB):
            result = subprocess.run(cmd + ["-c", "-f", str(cfg)], capture_output=True, text=True)
            assert result.returncode == 0, (cmd, result.stderr)
            warnings.append([line.split(" : config : ", 1)[1] for line in
                             result.stderr.splitlines() if "[WARNING]" in line])
        assert warnings[1] == warnings[0] and len(warnings[0]) >= 8
        proc = subprocess.Popen(FASTLB + ["-f", str(cfg)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: listening_sockets(port) > 0, message="listening")
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                request = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
                sock.sendall(request)
                assert sock.recv(100) == request      # not denied, nothing added
        finally:
            proc.terminate()
            proc.wait(5)
    finally:
        backend.close()
