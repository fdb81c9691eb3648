"""tune.http.maxhdr, differentially: with the default (101) and with a small value, a
request with one field too many gets haproxy's 400 and a response with one too many
haproxy's 502, the counts around the limit pass, and the keyword's mistakes are refused
with haproxy's words."""
from __future__ import annotations

import shutil
import socket
import subprocess

import pytest

from conftest import FASTLB, Backend, free_port, read_head, serving

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")


def answer(conn, backend):
    """A response with as many fields as the request's X-Fields asks (one of them is
    Content-Length)."""
    head, _ = read_head(conn, b"")
    wanted = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"x-fields:"))
    fields = b"".join(b"X-R%d: v\r\n" % i for i in range(wanted - 1))
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + fields + b"\r\nok")


def status(port: int, request_fields: int, response_fields: int) -> bytes:
    """The status the client gets for a request with ``request_fields`` fields (Host and
    X-Fields among them) whose response has ``response_fields``."""
    extra = b"".join(b"X-Q%d: v\r\n" % i for i in range(request_fields - 2))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nX-Fields: %d\r\n" % response_fields +
                     extra + b"\r\n")
        head, _ = read_head(sock, b"")
        return head.split(b" ")[1]


CASES = {None: (99, 100, 101, 102, 103), 5: (3, 4, 5, 6, 7)}


def test_header_field_limits_match_haproxy(tmp_path):
    backend = Backend(answer, "web")
    results = {}
    try:
        for program in ("haproxy", "fastlb"):
            for limit, counts in CASES.items():
                port = free_port()
                cfg = tmp_path / f"{program}-{limit}.cfg"
                tune = f"global\n    tune.http.maxhdr {limit}\n" if limit else ""
                cfg.write_text(f"""{tune}
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
listen app
    bind 127.0.0.1:{port}
    server web 127.0.0.1:{backend.port}
""")
                with serving(program, cfg, [port]):
                    results[program, limit] = (
                        [status(port, n, 2) for n in counts],
                        [status(port, 3, n) for n in counts])
    finally:
        backend.close()
    for limit in CASES:
        assert results["fastlb", limit] == results["haproxy", limit], limit
        requests, responses = results["fastlb", limit]
        assert b"400" in requests and b"200" in requests
        assert b"502" in responses and b"200" in responses


@pytest.mark.parametrize("line", ["tune.http.maxhdr", "tune.http.maxhdr 0",
                                  "tune.http.maxhdr 32768", "tune.http.maxhdr abc",
                                  "tune.http.maxhdr 10 20", "tune.http.maxhdr 32767",
                                  "tune.http.maxhdr 12abc"])
def test_maxhdr_values_are_checked_like_haproxy(tmp_path, line):
    cfg = tmp_path / "m.cfg"
    cfg.write_text(f"global\n    {line}\n")
    answers = []
    for cmd in (["haproxy"], FASTLB):
        result = subprocess.run(cmd + ["-c", "-f", str(cfg)], capture_output=True, text=True)
        alerts = [l.split(" : config : ", 1)[1].rstrip(".") for l in result.stderr.splitlines()
                  if "[ALERT]" in l and "m.cfg:2]" in l]
        answers.append((result.returncode == 0, alerts))
    assert answers[0] == answers[1]
