"""option persist, force-persist and ignore-persist: where a persistence cookie that names
a server marked down takes the request, the cookie set on the way back and the cookie
letters of the log line, compared with haproxy 2.6 on the same configuration."""
from __future__ import annotations

import socket
import subprocess
import textwrap
import time

from conftest import (FASTLB, HttpBackend, free_port, http_response, listening_sockets,
                      parse_headers, wait_until)
from test_differential_http import normalize
from test_tcp_rules import HAPROXY, needs_haproxy


def naming(name: str) -> HttpBackend:
    """A server that answers every request with its name."""
    return HttpBackend(name, lambda request: http_response(body=name.encode()))


def config(ports, log_port, alive_down, alive, closed):
    servers = f"""
        server s1 127.0.0.1:{alive_down} cookie s1 check port {closed} inter 100ms fall 1 rise 1
        server s2 127.0.0.1:{alive} cookie s2 check inter 100ms
        server s3 127.0.0.1:{closed} cookie s3 check inter 100ms fall 1 rise 1"""
    return textwrap.dedent(f"""
    global
        log 127.0.0.1:{log_port} len 4096 local0
    defaults
        mode http
        log global
        option httplog
        timeout connect 1s
        timeout client 5s
        timeout server 5s
        cookie SRV insert indirect nocache
        retries 1
    listen plain
        bind 127.0.0.1:{ports[0]}{servers}
    listen persisting
        bind 127.0.0.1:{ports[1]}
        option persist
        option redispatch{servers}
    listen ruled
        bind 127.0.0.1:{ports[2]}
        force-persist if {{ req.hdr(x-force) yes }}
        ignore-persist if {{ path_beg /static }}{servers}
    """)


REQUESTS = [            # (path, cookie, extra header)
    ("/a", "SRV=s1", ""),
    ("/b", "SRV=s1", "X-Force: yes"),
    ("/static/c", "SRV=s2", ""),
    ("/static/d", "SRV=s1", "X-Force: yes"),
    ("/e", "", ""),
    ("/f", "SRV=s3", ""),
]


def ask(port, path, cookie, extra):
    head = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    head += f"Cookie: {cookie}\r\n" if cookie else ""
    head += f"{extra}\r\n" if extra else ""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.encode() + b"\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, fields = parse_headers(head + b"\r\n\r\n")
    return status, fields.get("set-cookie"), body.decode() if len(body) < 10 else "page"


@needs_haproxy
def test_cookie_to_a_down_server_as_haproxy(tmp_path, syslog):
    alive_down = naming("s1")                   # serves, but its check port is closed
    alive = naming("s2")
    closed = free_port()
    seen = {}
    try:
        for name in ("haproxy", "fastlb"):
            ports = [free_port() for _ in range(3)]
            path = tmp_path / f"{name}.cfg"
            path.write_text(config(ports, syslog.port, alive_down.port, alive.port, closed))
            cmd = [HAPROXY, "-db", "-f", str(path)] if name == "haproxy" else \
                FASTLB + ["-d", "-f", str(path), "-n", "1"]
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    cwd=tmp_path)
            try:
                wait_until(lambda: all(listening_sockets(p) for p in ports),
                           message=f"{name} listening")
                time.sleep(1.0)                  # s1 and s3 fail their checks
                syslog.drain(0.2)
                got = []
                for port in ports:
                    for request in REQUESTS:
                        got.append((ask(port, *request), normalize(syslog.recv().rstrip("\n"))))
                seen[name] = got
            finally:
                proc.terminate()
                proc.wait(5)
    finally:
        alive_down.close()
        alive.close()
    fastlb = seen["fastlb"]
    # option persist: s1, though down, gets the request; without it, s2 does
    assert fastlb[0][0] == ("HTTP/1.1 200 OK", "SRV=s2; path=/", "s2")
    assert fastlb[6][0][2] == "s1"
    assert fastlb[len(REQUESTS) * 2 + 2][0] == ("HTTP/1.1 200 OK", None, "s2")   # ignored
    for mine, theirs in zip(fastlb, seen["haproxy"]):
        assert mine == theirs
