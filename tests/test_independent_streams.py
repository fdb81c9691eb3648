"""option independent-streams: writes to a socket no longer refresh its read timeout.

A telnet-like session keeps sending to a server that never answers: by default each
write refreshes the server's timeout and the session lives on; with the option in the
backend, the server times out. The same on the client side with the option in the
frontend, and for an HTTP request body sent slowly. Each outcome (what the client saw,
how long the session lasted, the log's termination state) compared with haproxy 2.6's."""
from __future__ import annotations

import re
import shutil
import socket
import time

import pytest

from conftest import Backend, SyslogReceiver, free_port, read_head, serving

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")

CONFIG = """
global
    log 127.0.0.1:{log} local0
defaults
    mode {mode}
    log global
    option {logopt}
    timeout connect 1s
    timeout client {tcli}
    timeout server {tsrv}
{tunnel}frontend f
    bind 127.0.0.1:{port}
{fe_option}    default_backend b
backend b
{be_option}    server s 127.0.0.1:{back}
"""

TICKS, TICK = 12, 0.2          # the steady side sends a byte every 0.2 s for 2.4 s


def silent_reader(conn, backend):
    """Reads until EOF, never answers."""
    conn.settimeout(10)
    try:
        while conn.recv(4096):
            pass
    except OSError:
        pass


def ticking_writer(conn, backend):
    """Sends a byte per tick, then closes; notes whether a FIN came before the end."""
    backend.fin_early = False
    try:
        for _ in range(TICKS):
            conn.sendall(b"y")
            time.sleep(TICK)
            if fin_arrived(conn):
                backend.fin_early = True
    except OSError:
        pass


def fin_arrived(sock) -> bool:
    sock.setblocking(False)
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        sock.setblocking(True)


def slow_body_server(conn, backend):
    """Reads a request, then sends a 12-byte body a byte per tick."""
    conn.settimeout(10)
    try:
        if read_head(conn)[0] is None:
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % TICKS)
        for _ in range(TICKS):
            conn.sendall(b"y")
            time.sleep(TICK)
    except OSError:
        pass


def slow_post_server(conn, backend):
    """Reads a request and its 12-byte body, then answers 200."""
    conn.settimeout(10)
    data = b""
    try:
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < TICKS:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    except OSError:
        pass


def talk(port, scenario):
    """What the client saw: (bytes received, ended early), with the session's length."""
    start = time.monotonic()
    received = b""
    early = False
    with socket.create_connection(("127.0.0.1", port), timeout=8) as sock:
        try:
            if scenario == "client-sends":
                for _ in range(TICKS):
                    sock.sendall(b"x")
                    time.sleep(TICK)
                    early = early or fin_arrived(sock)     # a FIN while still sending
                sock.shutdown(socket.SHUT_WR)
            elif scenario == "slow-get":
                sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            elif scenario == "slow-post":
                sock.sendall(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % TICKS)
                for _ in range(TICKS):
                    sock.sendall(b"x")
                    time.sleep(TICK)
        except OSError:
            early = True
        try:
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                received += chunk
        except OSError:
            pass
    elapsed = time.monotonic() - start
    first_line = received.split(b"\r\n")[0] if scenario.startswith("slow") else len(received)
    return first_line, early, "short" if elapsed < 1.9 else "long"


def termination(line):
    match = re.search(r" \d+ (\S\S)(?:\S\S)? (?:- - )?(?:\d+/){4}", line) or \
        re.search(r" (\S\S)\S\S \d+/\d+/\d+/\d+/", line)
    return match.group(1) if match else line


def run(program, tmp_path, mode, scenario, handler, tcli, tsrv, where, tunnel=""):
    backend = Backend(handler)
    syslog = SyslogReceiver()
    port = free_port()
    cfg = tmp_path / f"{program}-{scenario}-{where}.cfg"
    option = "    option independent-streams\n"
    cfg.write_text(CONFIG.format(
        log=syslog.port, mode=mode, logopt="httplog" if mode == "http" else "tcplog",
        tcli=tcli, tsrv=tsrv, port=port, back=backend.port,
        tunnel=f"    timeout tunnel {tunnel}\n" if tunnel else "",
        fe_option=option if where == "frontend" else "",
        be_option=option if where == "backend" else ""))
    try:
        with serving(program, cfg, [port]):
            syslog.drain(0.1)
            outcome = talk(port, scenario)
            lines = syslog.drain(0.5)
        return outcome, getattr(backend, "fin_early", None), [termination(line) for line in lines]
    finally:
        syslog.sock.close()
        backend.close()


@pytest.mark.parametrize("mode, scenario, handler, tcli, tsrv", [
    ("tcp", "client-sends", silent_reader, "5s", "1s"),
    ("tcp", "server-sends", ticking_writer, "1s", "5s"),
    ("http", "slow-post", slow_post_server, "5s", "1s"),
    ("http", "slow-get", slow_body_server, "1s", "5s"),
])
@pytest.mark.parametrize("where", ["none", "frontend", "backend"])
def test_independent_streams_as_haproxy(tmp_path, mode, scenario, handler, tcli, tsrv, where):
    theirs = run("haproxy", tmp_path, mode, scenario, handler, tcli, tsrv, where)
    ours = run("fastlb", tmp_path, mode, scenario, handler, tcli, tsrv, where)
    assert ours == theirs


@pytest.mark.parametrize("scenario, handler", [("client-sends", silent_reader),
                                               ("server-sends", ticking_writer)])
@pytest.mark.parametrize("where", ["none", "backend"])
def test_independent_streams_under_timeout_tunnel(tmp_path, scenario, handler, where):
    """timeout tunnel stands for both sides' timeouts; the option still says which
    writes keep a side alive."""
    theirs = run("haproxy", tmp_path, "tcp", scenario, handler, "5s", "5s", where, "1s")
    ours = run("fastlb", tmp_path, "tcp", scenario, handler, "5s", "5s", where, "1s")
    assert ours == theirs
