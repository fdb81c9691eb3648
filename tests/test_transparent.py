"""option transparent (and its old spelling, transparent): a backend that does not balance
sends what no server takes (a persistence cookie, use-server) to the address the client
connected to, logged as <NOSRV>.  Here tcp-request connection set-dst-port points that
address at a test server, as a TPROXY redirect would.  haproxy and fastlb run the same
configuration; answers, cookies and log lines are compared."""
from __future__ import annotations

import shutil
import socket
import subprocess

import pytest

from conftest import FASTLB, HttpBackend, free_port, recv_until_eof
from test_proxy_protocol import both, needs_haproxy

HTTP_CONFIG = """
global
    log 127.0.0.1:{log} local0
defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 2s
    timeout server 2s
frontend f
    bind 127.0.0.1:{p0}
    tcp-request connection set-dst-port int({dst})
    default_backend b
frontend g
    bind 127.0.0.1:{p1}
    tcp-request connection set-dst-port int({dst})
    default_backend alone
backend b
    option transparent
    cookie SRV insert indirect nocache
    use-server s2 if {{ path /s2 }}
    server s1 127.0.0.1:{s1} cookie s1
    server s2 127.0.0.1:{s2} cookie s2
backend alone
    transparent
"""

TCP_CONFIG = """
global
    log 127.0.0.1:{log} local0
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 1s
    timeout client 2s
    timeout server 2s
listen t
    bind 127.0.0.1:{p0}
    tcp-request connection set-dst-port int({dst})
    option transparent
"""


def get(port: int, path: str = "/", cookie: bytes = b"") -> tuple:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     + (b"Cookie: SRV=" + cookie + b"\r\n" if cookie else b"") + b"\r\n")
        reply = recv_until_eof(sock)
    head, _, body = reply.partition(b"\r\n\r\n")
    cookies = [line for line in head.split(b"\r\n") if line.lower().startswith(b"set-cookie")]
    return head.split(b"\r\n")[0], body, cookies


@needs_haproxy
def test_transparent_http_backend_as_haproxy(tmp_path):
    dst, s1, s2 = HttpBackend("dst"), HttpBackend("s1"), HttpBackend("s2")

    def scenario(ports, syslog):
        return {
            "no-cookie": get(ports[0]),
            "cookie-s1": get(ports[0], cookie=b"s1"),
            "unknown-cookie": get(ports[0], cookie=b"zz"),
            "use-server": get(ports[0], "/s2"),
            "alone": get(ports[1]),
        }

    try:
        out = both(tmp_path, HTTP_CONFIG, 2, scenario, dst=dst.port, s1=s1.port, s2=s2.port)
    finally:
        for backend in (dst, s1, s2):
            backend.close()
    (hap, hap_logs), (flb, flb_logs) = out["haproxy"], out["fastlb"]
    assert flb == hap
    assert flb["no-cookie"][1] == flb["unknown-cookie"][1] == flb["alone"][1] == b"dst GET /"
    assert flb["no-cookie"][2] == []                  # no server of ours: no cookie either
    assert flb["cookie-s1"][1] == b"s1 GET /"
    assert flb["use-server"][1] == b"s2 GET /s2"
    assert flb["use-server"][2] == []                 # use-server: direct, as a cookie
    assert sorted(flb_logs) == sorted(hap_logs), \
        "\n".join(sorted(flb_logs)) + "\n--- haproxy ---\n" + "\n".join(sorted(hap_logs))
    assert any(" f b/<NOSRV> " in line for line in flb_logs)
    assert any(" g alone/<NOSRV> " in line for line in flb_logs)


@needs_haproxy
def test_transparent_tcp_listen_as_haproxy(tmp_path, backends):
    from conftest import name_handler
    dst = backends(name_handler, name="dst")

    def scenario(ports, syslog):
        with socket.create_connection(("127.0.0.1", ports[0]), timeout=5) as sock:
            sock.sendall(b"ping")
            sock.shutdown(socket.SHUT_WR)
            return recv_until_eof(sock)

    out = both(tmp_path, TCP_CONFIG, 1, scenario, dst=dst.port)
    (hap, hap_logs), (flb, flb_logs) = out["haproxy"], out["fastlb"]
    assert flb == hap == b"dst\nping"
    assert flb_logs == hap_logs and " t t/<NOSRV> " in flb_logs[0], (flb_logs, hap_logs)


@pytest.mark.parametrize("lines, code, message", [
    (["backend b", "    balance roundrobin", "    option transparent"], 1,
     "backend 'b' cannot use both transparent and balance mode."),
    (["defaults", "    balance source", "backend b", "    transparent"], 1,
     "backend 'b' cannot use both transparent and balance mode."),
    (["frontend f", "    bind 127.0.0.1:18460", "    option transparent"], 0,
     "'transparent' ignored because frontend 'f' has no backend capability."),
    (["frontend f", "    bind 127.0.0.1:18460", "    transparent"], 0, None),
    (["backend b", "    transparent x"], 1, "'transparent' cannot handle unexpected argument 'x'."),
    (["backend b", "    option transparent", "    no option transparent",
      "    balance roundrobin"], 0, None),
])
def test_transparent_is_checked_as_haproxy(tmp_path, lines, code, message):
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text("defaults\n    mode http\n    timeout client 1s\n    timeout server 1s\n"
                   "    timeout connect 1s\n" + "\n".join(lines) + "\n")
    for program in [FASTLB] + ([["haproxy"]] if shutil.which("haproxy") else []):
        run = subprocess.run([*program, "-c", "-f", str(cfg)], capture_output=True, text=True,
                             timeout=30)
        assert run.returncode in ((code,) if code else (0, 2)), (program, run.stderr)
        if message:
            assert message in run.stderr, (program, run.stderr)
        else:
            assert "transparent" not in run.stderr, (program, run.stderr)


def test_an_unknown_destination_fails_the_connection(fastlb, tmp_path):
    """A UNIX client has no IPv4/IPv6 destination to reach: the connection fails, as
    HAProxy's connect to an unset address does (503 after the retries)."""
    sock_path = tmp_path / "in.sock"
    lb = fastlb(f"""
    defaults
        mode http
        timeout connect 1s
        timeout client 2s
        timeout server 2s
    frontend f
        bind unix@{sock_path}
        default_backend b
    backend b
        option transparent
    """)
    from conftest import wait_until
    wait_until(sock_path.exists, message="the UNIX listener")
    with socket.socket(socket.AF_UNIX) as client:
        client.settimeout(10)
        client.connect(str(sock_path))
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert recv_until_eof(client).startswith(b"HTTP/1.1 503")
    assert lb.proc.poll() is None
