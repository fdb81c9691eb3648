"""capture cookie: the cookie the client sent and the one the server set, in the log line
(%CC %CS, and the httplog line), compared with haproxy 2.6 on the same requests."""
from __future__ import annotations

import socket
import subprocess
import textwrap
import time

import pytest

from conftest import FASTLB, HttpBackend, free_port, http_response, listening_sockets, wait_until
from test_differential_http import normalize
from test_tcp_rules import HAPROXY, needs_haproxy

# (request cookie lines, response set-cookie lines)
EXCHANGES = [
    (["a=1; JSESSIONID=abc123; b=2"], ["JSESSIONID=xyz; Path=/", "other=1"]),
    ([], []),
    (["JSESSIONID=" + "v" * 80], ["JSESSIONID=" + "w" * 80 + "; HttpOnly"]),
    (["x=1", "  JSESSIONIDX=second ;y=2"], ["first=1; JSESSIONID=attr", "JSESSIONID=late"]),
    (["JSESS=short; JSESSIONID=long"], []),
    (["jsessionid=lower"], ["Jsessionid=mixed"]),
]


def setting_cookies(request) -> bytes:
    """The Set-Cookie lines of the exchange the path names."""
    _, set_cookies = EXCHANGES[int(request["path"].strip("/"))]
    return http_response(body=b"ok", headers=[("Set-Cookie", value) for value in set_cookies])


def config(port, log_port, server_port, length, port2):
    return textwrap.dedent(f"""
    global
        log 127.0.0.1:{log_port} len 4096 local0
    defaults
        mode http
        log global
        timeout connect 1s
        timeout client 5s
        timeout server 5s
    frontend plain
        bind 127.0.0.1:{port}
        log-format "%CC|%CS|%{{+Q}}r"
        capture cookie JSESS len {length}
        default_backend web
    frontend logged
        bind 127.0.0.1:{port2}
        option httplog
        capture cookie JSESSIONID= len 20
        default_backend web
    backend web
        server s1 127.0.0.1:{server_port}
    """)


@needs_haproxy
@pytest.mark.parametrize("length", [25, 200])
def test_captured_cookies_are_logged_as_haproxy(tmp_path, syslog, length):
    backend = HttpBackend("web", setting_cookies)
    lines = {}
    try:
        for name in ("haproxy", "fastlb"):
            # two ports each known to be free (port + 1 could be any socket's)
            port, port2 = free_port(), free_port()
            while port2 == port:
                port2 = free_port()
            path = tmp_path / f"{name}.cfg"
            path.write_text(config(port, syslog.port, backend.port, length, port2))
            checker = [HAPROXY] if name == "haproxy" else FASTLB
            check = subprocess.run([*checker, "-c", "-f", str(path)], capture_output=True,
                                   text=True, timeout=30, cwd=tmp_path)
            warned = "truncating capture length to 63 bytes for frontend 'plain'." in check.stderr
            cmd = [HAPROXY, "-db", "-f", str(path)] if name == "haproxy" else \
                FASTLB + ["-d", "-f", str(path), "-n", "1"]
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    cwd=tmp_path)
            try:
                wait_until(lambda: listening_sockets(port) and listening_sockets(port2),
                           message=f"{name} listening")
                got = []
                for target in (port, port2):
                    for i, (cookies, _) in enumerate(EXCHANGES):
                        with socket.create_connection(("127.0.0.1", target), timeout=5) as sock:
                            head = f"GET /{i} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                            head += "".join(f"Cookie: {c}\r\n" for c in cookies)
                            sock.sendall(head.encode() + b"\r\n")
                            while sock.recv(65536):
                                pass
                        got.append(normalize(syslog.recv().rstrip("\n")))
                lines[name] = (warned, got)
            finally:
                proc.terminate()
                proc.wait(5)
            time.sleep(0.1)
    finally:
        backend.close()
    warned, got = lines["fastlb"]
    assert warned == (length == 200)
    assert got[0].endswith('JSESSIONID=abc123|JSESSIONID=xyz|"GET /0 HTTP/1.1"')
    assert got[1].endswith('-|-|"GET /1 HTTP/1.1"')
    for mine, theirs in zip(got, lines["haproxy"][1]):
        assert mine == theirs
    assert lines["fastlb"] == lines["haproxy"]
