"""h1-case-adjust, h1-case-adjust-file and option h1-case-adjust-bogus-client|server,
differentially: the header names a server and a client read (added ones included) have
the same case in Debian's haproxy and in fastlb, adjusted only where the option is set;
the keywords' mistakes are refused with haproxy's words."""
from __future__ import annotations

import shutil
import socket
import subprocess

import pytest

from conftest import FASTLB, Backend, free_port, read_body, read_head, parse_headers, serving

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")


def echo_head(conn, backend):
    """Answers with the request head it got as the body, and a few headers of its own."""
    rest = b""
    while True:
        head, rest = read_head(conn, rest)
        if head is None:
            return
        _, fields = parse_headers(head)
        _, rest = read_body(conn, fields, rest)
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Custom: 1\r\nx-other: 2\r\nCONTENT-TYPE: text/plain"
                     b"\r\nContent-Length: %d\r\n\r\n%s" % (len(head), head))


def names(head: bytes) -> list:
    return [line.split(b":", 1)[0].decode() for line in head.split(b"\r\n")[1:] if b":" in line]


def config(ports, server: int, adjust_file: str) -> str:
    return f"""
global
    h1-case-adjust content-length Content-Length
    h1-case-adjust x-custom X-CUSTOM
    h1-case-adjust Host HOST
    h1-case-adjust-file {adjust_file}
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend both
    bind 127.0.0.1:{ports[0]}
    option h1-case-adjust-bogus-client
    default_backend adjusted
frontend plain
    bind 127.0.0.1:{ports[1]}
    default_backend unadjusted
backend adjusted
    option h1-case-adjust-bogus-server
    option forwardfor
    http-request set-header x-custom yes
    server s 127.0.0.1:{server}
backend unadjusted
    option forwardfor
    server s 127.0.0.1:{server}
"""


def exchange(port: int) -> tuple:
    """(names the server got, names the client got)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: t\r\nX-FORWARDED-PROTO: http\r\n"
                     b"content-length: 2\r\nUser-Agent: t\r\nConnection: close\r\n\r\nab")
        head, rest = read_head(sock, b"")
        _, fields = parse_headers(head)
        body, _ = read_body(sock, fields, rest)
    return names(body), [n for n in names(head) if n.lower() not in ("date", "connection")]


def test_header_names_are_adjusted_as_by_haproxy(tmp_path):
    server = Backend(echo_head)
    adjust = tmp_path / "case.txt"
    adjust.write_text("# names some old client expects\n\n  x-forwarded-for \t X-Forwarded-For \n"
                      "\tuser-agent User-Agent\n")
    seen = {}
    try:
        for program in ("haproxy", "fastlb"):
            ports = [free_port(), free_port()]
            cfg = tmp_path / f"{program}.cfg"
            cfg.write_text(config(ports, server.port, adjust))
            with serving(program, cfg, ports):
                seen[program] = [exchange(port) for port in ports]
    finally:
        server.close()
    assert seen["fastlb"] == seen["haproxy"]
    (to_server, to_client), (plain_server, plain_client) = seen["haproxy"]
    assert "X-Forwarded-For" in to_server and "Content-Length" in to_server
    assert "X-CUSTOM" in to_client and "x-forwarded-for" in plain_server


@pytest.mark.parametrize("lines, file_text", [
    (["h1-case-adjust a"], None),
    (["h1-case-adjust a b"], None),
    (["h1-case-adjust a A x"], None),
    (["h1-case-adjust a A", "h1-case-adjust a A"], None),
    (["h1-case-adjust-file"], None),
    (["h1-case-adjust-file /no/such/file"], None),
    (["h1-case-adjust-file FILE"], "x-a X-A\nx-b X-C\n"),
    (["h1-case-adjust-file FILE"], "x-a\n"),
    (["h1-case-adjust x-a X-A", "h1-case-adjust-file FILE"], "x-a X-a\n"),
    (["h1-case-adjust-file FILE"], "# only comments\n\n"),
])
def test_mistakes_are_refused_like_haproxy(tmp_path, lines, file_text):
    path = tmp_path / "case.txt"
    if file_text is not None:
        path.write_text(file_text)
    text = "global\n" + "".join(f"    {line.replace('FILE', str(path))}\n" for line in lines)
    text += (f"defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n"
             f"    timeout server 1s\nlisten l\n    bind 127.0.0.1:{free_port()}\n"
             "    option h1-case-adjust-bogus-server\n    server s 127.0.0.1:1\n")
    cfg = tmp_path / "c.cfg"
    cfg.write_text(text)
    answers = []
    for cmd in (["haproxy"], FASTLB):
        result = subprocess.run(cmd + ["-c", "-f", str(cfg)], capture_output=True, text=True)
        alerts = [line.split(" : config : ", 1)[-1].split("] : ", 1)[-1]
                  for line in result.stderr.splitlines() if "[ALERT]" in line
                  and "Fatal errors" not in line and "Error(s) found" not in line]
        answers.append((result.returncode == 0, alerts))
    assert answers[0] == answers[1]
