"""source ... usesrc (full transparent proxy) and source ... interface: the address a server
sees its connections come from, compared with haproxy 2.6.

On loopback every 127.0.0.0/8 address is this host's, so the client takes 127.0.0.5 (or
.6) and the server sees whether the proxy presented that, a configured address, or one
from a request header; health checks keep the source line's own address."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

from conftest import FASTLB, Backend, free_port, read_head, recv_until_eof, serving, wait_until

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")


def peer_tcp(conn, backend):
    """Says the address it was reached from (a connection that sends nothing: a check)."""
    host, port = conn.getpeername()[:2]
    conn.settimeout(2)
    try:
        data = conn.recv(100)
    except OSError:
        data = b""
    if not data:
        backend.checks.add(host)
        return
    conn.sendall(f"{host}:{port}".encode())


def peer_http(conn, backend):
    host, port = conn.getpeername()[:2]
    conn.settimeout(2)
    try:
        head, _ = read_head(conn)
    except OSError:
        return
    if head is None:
        return
    body = f"{host}:{port}".encode()
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                 % (len(body), body))


CONFIG = """
defaults
    timeout connect 1s
    timeout client 3s
    timeout server 3s
listen t_clientip
    mode tcp
    bind 127.0.0.1:{p0}
    source 0.0.0.0 usesrc clientip
    server s 127.0.0.1:{tcp}
listen t_client
    mode tcp
    bind 127.0.0.1:{p1}
    source 0.0.0.0 usesrc client
    server s 127.0.0.1:{tcp}
listen t_addr
    mode tcp
    bind 127.0.0.1:{p2}
    source 0.0.0.0 usesrc 127.0.0.9
    server s 127.0.0.1:{tcp}
listen t_server_own
    mode tcp
    bind 127.0.0.1:{p3}
    source 127.0.0.3
    server s 127.0.0.1:{tcp} source 127.0.0.2 usesrc clientip
listen t_interface
    mode tcp
    bind 127.0.0.1:{p4}
    source 127.0.0.4 interface lo
    server s 127.0.0.1:{tcp}
listen t_checked
    mode tcp
    bind 127.0.0.1:{p5}
    source 127.0.0.11 usesrc clientip
    server s 127.0.0.1:{checked} check inter 300
listen h_last
    mode http
    bind 127.0.0.1:{p6}
    source 0.0.0.0 usesrc hdr_ip(x-src)
    server s 127.0.0.1:{http}
listen h_first
    mode http
    bind 127.0.0.1:{p7}
    server s 127.0.0.1:{http} source 0.0.0.0 usesrc hdr_ip(X-Src,1)
listen h_xff
    mode http
    bind 127.0.0.1:{p8}
    option forwardfor
    source 0.0.0.0 usesrc hdr_ip(x-forwarded-for)
    server s 127.0.0.1:{http}
"""


def tcp_peer(port, client_ip):
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # usesrc client reuses it
        sock.bind((client_ip, 0))
        mine = sock.getsockname()[1]
        sock.settimeout(3)
        sock.connect(("127.0.0.1", port))
        sock.sendall(b"hello")
        data = b""
        while True:
            try:
                chunk = sock.recv(100)
            except OSError:
                break
            if not chunk:
                break
            data += chunk
    host, _, port_seen = data.decode().partition(":")
    return host, "client's port" if port_seen == str(mine) else "another port" if data else ""


def http_peer(port, headers):
    with socket.socket() as sock:
        sock.bind(("127.0.0.5", 0))
        sock.settimeout(3)
        sock.connect(("127.0.0.1", port))
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers)
        sock.sendall(f"GET / HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n".encode())
        data = recv_until_eof(sock)
    status = data.split(b"\r\n", 1)[0].decode()
    body = data.split(b"\r\n\r\n", 1)[1].decode() if b"\r\n\r\n" in data else ""
    return status, body.partition(":")[0] if status.endswith("200 OK") else ""


def outcome(program, tmp_path, tcp, checked, http):
    ports = [free_port() for _ in range(9)]
    cfg = tmp_path / f"{program}.cfg"
    cfg.write_text(CONFIG.format(tcp=tcp.port, checked=checked.port, http=http.port,
                                 **{f"p{i}": port for i, port in enumerate(ports)}))
    checked.checks.clear()
    with serving(program, cfg, ports):
        seen = {
            "clientip": tcp_peer(ports[0], "127.0.0.5"),
            "client": tcp_peer(ports[1], "127.0.0.6"),
            "addr": tcp_peer(ports[2], "127.0.0.5"),
            "server's own": tcp_peer(ports[3], "127.0.0.5"),
            "interface": tcp_peer(ports[4], "127.0.0.5"),
            "checked traffic": tcp_peer(ports[5], "127.0.0.5"),
            "hdr last": http_peer(ports[6], [("X-Src", "127.0.0.7, 127.0.0.8")]),
            "hdr two lines": http_peer(ports[6], [("x-src", "127.0.0.7"), ("x-src", "127.0.0.12")]),
            "hdr not an address": http_peer(ports[6], [("x-src", "name.example")]),
            "hdr missing": http_peer(ports[6], []),
            "hdr first": http_peer(ports[7], [("x-src", "127.0.0.7, 127.0.0.8")]),
            "forwardfor": http_peer(ports[8], []),
        }
        if program == "fastlb":
            # (haproxy 2.6.12's checks of a test server never complete here: strace shows
            # a loop of socket()+connect() with EINPROGRESS, so fastlb's alone are asserted)
            wait_until(lambda: checked.checks, message="a health check")
            seen["checks"] = sorted(checked.checks)
    return seen


def test_usesrc_presents_the_address_haproxy_presents(tmp_path):
    tcp, checked, http = Backend(peer_tcp), Backend(peer_tcp), Backend(peer_http)
    for backend in (tcp, checked):
        backend.checks = set()
    try:
        theirs = outcome("haproxy", tmp_path, tcp, checked, http)
        ours = outcome("fastlb", tmp_path, tcp, checked, http)
    finally:
        for backend in (tcp, checked, http):
            backend.close()
    assert theirs["clientip"] == ("127.0.0.5", "another port")
    assert theirs["client"] == ("127.0.0.6", "client's port")
    assert theirs["hdr last"] == ("HTTP/1.1 200 OK", "127.0.0.8")
    assert ours.pop("checks") == ["127.0.0.11"]      # checks keep the source's own address
    assert ours == theirs


@pytest.mark.parametrize("line, message", [
    ("source 0.0.0.0 usesrc", "'usesrc' expects <addr>[:<port>], 'client', or 'clientip' as argument."),
    ("source 0.0.0.0 usesrc bogus", "'usesrc bogus' : invalid address: 'bogus' in 'bogus'"),
    ("source 0.0.0.0 interface", "'source' : missing interface name."),
    ("server s 127.0.0.1:1 source 0.0.0.0 usesrc",
     "'usesrc' expects <addr>[:<port>], 'client', 'clientip', or 'hdr_ip(name,#)' as argument."),
    ("server s 127.0.0.1:1 usesrc clientip", "'usesrc' only allowed after a 'source' statement.."),
    ("server s 127.0.0.1:1 source 0.0.0.0 interface", "'server' : missing interface name."),
])
def test_usesrc_mistakes_answered_as_haproxy(tmp_path, line, message):
    cfg = tmp_path / "u.cfg"
    cfg.write_text("defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n"
                   f"    timeout server 1s\nlisten l\n    bind 127.0.0.1:{free_port()}\n"
                   f"    {line}\n")
    for cmd in (FASTLB, ["haproxy"]):
        run = subprocess.run(cmd + ["-c", "-f", str(cfg)], capture_output=True, text=True,
                             timeout=30)
        assert run.returncode != 0 and message in run.stderr and "u.cfg:8" in run.stderr, \
            (cmd, run.stderr)


def test_usesrc_header_in_tcp_mode_warned_and_ignored(tmp_path):
    cfg = tmp_path / "u.cfg"
    cfg.write_text("defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 1s\n"
                   f"    timeout server 1s\nlisten l\n    bind 127.0.0.1:{free_port()}\n"
                   "    source 0.0.0.0 usesrc hdr_ip(x-forwarded-for)\n"
                   "    server s 127.0.0.1:1\n")
    warning = "proxy 'l' : ignoring use of header x-forwarded-for as source IP in non-HTTP mode."
    for cmd in (FASTLB, ["haproxy"]):
        run = subprocess.run(cmd + ["-c", "-f", str(cfg)], capture_output=True, text=True,
                             timeout=30)
        assert run.returncode == 0 and warning in run.stderr, (cmd, run.stderr)
