"""The stats socket's dynamic-cookie commands (enable|disable dynamic-cookie backend,
set dynamic-cookie-key backend): the cookies a backend sets and follows change at once
in every worker, as in haproxy 2.6, which this test runs on the same config and
commands; a server with a cookie of its own keeps it."""
from __future__ import annotations

import shutil
import socket

import pytest

from conftest import HttpBackend, free_port, recv_until_eof, serving, stats_cli

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")

CONFIG = """
global
    stats socket {sock} level admin
defaults
    mode http
    timeout connect 1s
    timeout client 2s
    timeout server 2s
listen l
    bind 127.0.0.1:{port}
    balance roundrobin
    cookie SRV insert indirect nocache dynamic
    dynamic-cookie-key first-key
    server s1 127.0.0.1:{s1} cookie own
    server s2 127.0.0.1:{s2}
"""


def request(port, cookie=None):
    """(the server that answered, the Set-Cookie it got) for one request."""
    extra = f"Cookie: SRV={cookie}\r\n" if cookie else ""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall(f"GET / HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n".encode())
        data = recv_until_eof(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    cookies = [line.split(b":", 1)[1].strip().decode() for line in head.split(b"\r\n")
               if line.lower().startswith(b"set-cookie:")]
    return body.decode().split()[0], cookies


def by_server(port, rounds=4):
    """The Set-Cookie each server's answers carried (round robin reaches both)."""
    seen = {}
    for _ in range(rounds):
        server, cookies = request(port)
        seen.setdefault(server, set()).update(cookies)
    return {name: sorted(values) for name, values in sorted(seen.items())}


def scenario(program, tmp_path, s1, s2):
    sock = tmp_path / f"{program}.sock"
    port = free_port()
    cfg = tmp_path / f"{program}.cfg"
    cfg.write_text(CONFIG.format(sock=sock, port=port, s1=s1.port, s2=s2.port))
    steps = []
    with serving(program, cfg, [port]):
        steps.append(("start", by_server(port)))
        for command in ("set dynamic-cookie-key backend l second-key",
                        "disable dynamic-cookie backend l",
                        "enable dynamic-cookie backend l",
                        "set dynamic-cookie-key backend l",
                        "enable dynamic-cookie backend",
                        "disable dynamic-cookie backend nosuch"):
            answer = stats_cli(sock, command).strip()
            steps.append((command, answer, by_server(port)))
        # a client bearing the current cookie of s2 stays on s2
        current = [c for c in steps[-1][2].get("s2", []) if c.startswith("SRV=")]
        value = current[0].split(";")[0].split("=", 1)[1] if current else ""
        steps.append(("follow", [request(port, value)[0] for _ in range(3)]))
    return steps


def test_dynamic_cookie_commands_as_haproxy(tmp_path):
    s1, s2 = HttpBackend("s1"), HttpBackend("s2")
    try:
        theirs = scenario("haproxy", tmp_path, s1, s2)
        ours = scenario("fastlb", tmp_path, s1, s2)
    finally:
        s1.close()
        s2.close()
    # disabled: s2 has no cookie (an insert backend then clears the client's)
    assert theirs[2][2]["s2"] == ["SRV=; Expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/"]
    assert theirs[-1] == ("follow", ["s2"] * 3)
    assert ours == theirs
