"""option contstats, differentially: with it, the byte counters of the frontend, backend
and server grow while a long transfer is still under way (HAProxy updates them at its
wake-ups and at least every 5 s, fastlb as the bytes move); without it they change only
when the session ends, in Debian's haproxy as in fastlb.  TCP and HTTP."""
from __future__ import annotations

import csv
import io
import shutil
import socket
import time

import pytest

from conftest import Backend, free_port, stats_cli, serving, wait_until

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")

CHUNK = 64 * 1024


def sink(conn, backend):
    """Reads everything; for HTTP, answers with a long body sent in two halves."""
    conn.settimeout(10)
    data = b""
    try:
        while b"\r\n\r\n" not in data and not data.startswith(b"raw"):
            part = conn.recv(65536)
            if not part:
                return
            data += part
        if data.startswith(b"GET"):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (2 * CHUNK))
            conn.sendall(b"x" * CHUNK)
            backend.go.wait(10)
            conn.sendall(b"x" * CHUNK)
        while conn.recv(65536):
            pass
    except OSError:
        pass


def counters(sock_path) -> dict:
    rows = csv.reader(io.StringIO(stats_cli(sock_path, "show stat").lstrip("# ")))
    header = next(rows)
    out = {}
    for row in rows:
        if len(row) > 9:
            record = dict(zip(header, row))
            out[(record["pxname"], record["svname"])] = (int(record["bin"] or 0),
                                                         int(record["bout"] or 0))
    return out


@pytest.mark.parametrize("mode", ["tcp", "http"])
@pytest.mark.parametrize("contstats", [True, False])
def test_byte_counters_during_a_transfer_match_haproxy(tmp_path, mode, contstats):
    import threading
    server = Backend(sink)
    server.go = threading.Event()
    seen = {}
    try:
        for program in ("haproxy", "fastlb"):
            server.go.clear()
            port = free_port()
            sock = tmp_path / f"{program}.sock"
            cfg = tmp_path / f"{program}.cfg"
            cfg.write_text(f"""
global
    stats socket {sock} level admin
defaults
    mode {mode}
    timeout connect 1s
    timeout client 20s
    timeout server 20s
listen l
    bind 127.0.0.1:{port}
    {"option contstats" if contstats else ""}
    server s 127.0.0.1:{server.port}
""")
            with serving(program, cfg, [port]):
                client = socket.create_connection(("127.0.0.1", port), timeout=10)
                way = 0 if mode == "tcp" else 1            # bin: the upload; bout: the body
                if mode == "tcp":
                    client.sendall(b"raw" + b"u" * (CHUNK - 3))       # an upload, still open
                else:
                    client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                    got = 0
                    while got < CHUNK:                                 # half the body, so far
                        got += len(client.recv(65536))

                def counted():
                    rows = counters(sock)
                    return [rows[("l", name)][way] >= CHUNK for name in ("FRONTEND", "BACKEND", "s")]
                if contstats:
                    # HAProxy's own timer is 5 s
                    wait_until(lambda: all(counted()), timeout=7, message="the counters to grow")
                else:
                    time.sleep(1)
                during = counted()
                server.go.set()
                client.close()
                wait_until(lambda: all(counted()), message="the final counters")
            seen[program] = during
    finally:
        server.close()
    assert seen["fastlb"] == seen["haproxy"] == [contstats] * 3
