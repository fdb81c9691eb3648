"""Connection limits at the door, run through haproxy 2.6 and fastlb on the same
configuration: global maxconnrate and maxsessrate, a frontend's rate-limit sessions (the
listener waits, clients stay in the kernel's backlog: every connection is served, later),
bind maxconn (at most N connections of that address at a time) and bind id (so_id).
fastlb runs two workers, so each limit is seen to hold for the process, not per worker."""
from __future__ import annotations

import socket
import subprocess
import threading
import time

import pytest

from conftest import FASTLB, Backend, free_port, listening_sockets, stats_cli, wait_until
from test_tcp_rules import HAPROXY, needs_haproxy

DEFAULTS = """
defaults
    mode tcp
    timeout connect 1s
    timeout client 10s
    timeout server 10s
"""
NAMES = ["haproxy", "fastlb"]


def run(name, text, tmp_path, ports):
    """haproxy (two threads) or fastlb (two workers) on ``text``, listening on ``ports``."""
    path = tmp_path / f"{name}.cfg"
    path.write_text(text)
    cmd = [HAPROXY, "-db", "-f", str(path)] if name == "haproxy" else \
        FASTLB + ["-d", "-f", str(path), "-n", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / f"{name}.err", "wb"), cwd=tmp_path)
    try:
        for port in ports:
            wait_until(lambda: listening_sockets(port) >= (2 if name == "fastlb" else 1),
                       message=f"{name} on {port}")
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc


def stop(proc):
    proc.terminate()
    proc.wait(5)


def answer_name(conn, backend):
    conn.sendall(backend.name.encode())


def served_in(port, count, timeout=8.0) -> float:
    """Seconds for ``count`` connections, one after the other, to be answered."""
    start = time.monotonic()
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            assert sock.recv(16) == b"srv"
    return time.monotonic() - start


def global_section(extra=""):
    return f"global\n    nbthread 2\n{extra}\n"


@needs_haproxy
@pytest.mark.parametrize("limit", ["maxconnrate 20", "maxsessrate 20"])
def test_a_process_rate_limit_spreads_connections_over_time(tmp_path, limit):
    server = Backend(answer_name, "srv")
    limited = free_port()
    text = global_section(f"    {limit}") + DEFAULTS + f"""
listen limited
    bind 127.0.0.1:{limited}
    server s 127.0.0.1:{server.port}
"""
    try:
        for name in NAMES:
            proc = run(name, text, tmp_path, [limited])
            try:
                # 60 connections at 20 a second: the first second's 20 at once, then the
                # last second's count fades as the new one fills: about two seconds
                took = served_in(limited, 60)
            finally:
                stop(proc)
            assert 1.4 < took < 4.5, (name, took)
    finally:
        server.close()


@needs_haproxy
@pytest.mark.parametrize("name", NAMES)
def test_rate_limit_sessions_holds_one_frontend_not_the_others(tmp_path, name):
    server = Backend(answer_name, "srv")
    limited, free = free_port(), free_port()
    text = global_section() + DEFAULTS + f"""
listen limited
    bind 127.0.0.1:{limited}
    rate-limit sessions 20
    server s 127.0.0.1:{server.port}
listen free
    bind 127.0.0.1:{free}
    server s 127.0.0.1:{server.port}
"""
    try:
        proc = run(name, text, tmp_path, [limited, free])
        try:
            assert served_in(free, 60) < 1.0
            took = served_in(limited, 60)
        finally:
            stop(proc)
        assert 1.4 < took < 4.5, took
    finally:
        server.close()


@needs_haproxy
@pytest.mark.parametrize("name", NAMES)
def test_rate_limits_are_shown_by_show_info_and_the_csv(tmp_path, name):
    port = free_port()
    sock = tmp_path / f"{name}.sock"
    text = global_section(f"    maxconnrate 300\n    maxsessrate 200\n"
                          f"    stats socket {sock} level admin") + DEFAULTS + f"""
frontend fe
    bind 127.0.0.1:{port}
    rate-limit sessions 50
    default_backend be
backend be
    server s 127.0.0.1:9
"""
    proc = run(name, text, tmp_path, [port])
    try:
        wait_until(sock.exists, message="stats socket")
        info = dict(line.split(": ", 1) for line in stats_cli(sock, "show info").splitlines()
                    if ": " in line)
        csv = stats_cli(sock, "show stat").splitlines()
    finally:
        stop(proc)
    assert (info["ConnRateLimit"], info["SessRateLimit"]) == ("300", "200")
    header = csv[0].lstrip("# ").split(",")
    row = next(line.split(",") for line in csv[1:] if line.startswith("fe,FRONTEND"))
    assert row[header.index("rate_lim")] == "50"


class HoldingBackend(Backend):
    """Counts the connections it holds open; each is closed when its client closes."""

    def __init__(self):
        self.open = 0
        self.lock = threading.Lock()
        super().__init__(self._hold, "srv")

    def _hold(self, conn, backend):
        with self.lock:
            self.open += 1
        try:
            conn.sendall(b"srv")
            while conn.recv(4096):
                pass
        except OSError:
            pass
        finally:
            with self.lock:
                self.open -= 1


@needs_haproxy
@pytest.mark.parametrize("name", NAMES)
def test_bind_maxconn_holds_the_rest_in_the_backlog(tmp_path, name):
    server = HoldingBackend()
    port, other = free_port(), free_port()
    text = global_section() + DEFAULTS + f"""
listen l
    bind 127.0.0.1:{port} maxconn 2
    bind 127.0.0.1:{other}
    server s 127.0.0.1:{server.port}
"""
    clients = []
    try:
        proc = run(name, text, tmp_path, [port, other])
        try:
            for _ in range(4):
                clients.append(socket.create_connection(("127.0.0.1", port), timeout=3))
            time.sleep(0.5)
            assert server.open == 2          # the other two wait, connected but unaccepted
            with socket.create_connection(("127.0.0.1", other), timeout=3) as sock:
                assert sock.recv(3) == b"srv"   # the other address has no such limit
            answered = [c for c in clients if readable(c)]
            assert len(answered) == 2
            for c in answered:
                c.recv(3)
                c.close()
            waiting = [c for c in clients if c not in answered]
            for c in waiting:
                c.settimeout(3)
                assert c.recv(3) == b"srv"       # served once the first two left
            wait_until(lambda: server.open == 2, message="two connections")
        finally:
            stop(proc)
    finally:
        for c in clients:
            c.close()
        server.close()


def readable(sock) -> bool:
    sock.settimeout(0.2)
    try:
        return sock.recv(3, socket.MSG_PEEK) == b"srv"
    except socket.timeout:
        return False


@needs_haproxy
@pytest.mark.parametrize("name", NAMES)
def test_bind_id_fixes_so_id_and_the_others_take_the_lowest_free(tmp_path, name):
    ports = [free_port() for _ in range(3)]
    text = global_section() + """
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
""" + f"""
frontend fe
    bind 127.0.0.1:{ports[0]}
    bind 127.0.0.1:{ports[1]} id 1
    bind 127.0.0.1:{ports[2]} id 7 name seven
    http-request return status 200 content-type text/plain lf-string "%[so_id] %[so_name]"
"""
    proc = run(name, text, tmp_path, ports)
    try:
        answers = []
        for port in ports:
            with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
                sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
                data = b""
                while chunk := sock.recv(4096):
                    data += chunk
            answers.append(data.split(b"\r\n\r\n", 1)[1])
    finally:
        stop(proc)
    assert answers == [b"2 ", b"1 ", b"7 seven"]


@needs_haproxy
@pytest.mark.parametrize("line, message", [
    ("bind 127.0.0.1:{p},127.0.0.1:{q} id 3", "'id' can only be used with a single socket"),
    ("bind 127.0.0.1:{p} id 0", "custom id has to be > 0"),
    ("bind 127.0.0.1:{p} maxconn -1", "invalid value -1, must be >= 0"),
    ("rate-limit connections 3", "'rate-limit' only supports 'sessions'"),
    ("hash-balance-factor 50", "'hash-balance-factor' must be 0 or greater than 100."),
])
def test_bad_limits_are_refused_as_haproxy_refuses_them(tmp_path, line, message):
    path = tmp_path / "bad.cfg"
    path.write_text(DEFAULTS + "frontend fe\n    " +
                    line.format(p=free_port(), q=free_port()) + "\n")
    for cmd in ([HAPROXY, "-c", "-f", str(path)], FASTLB + ["-c", "-f", str(path)]):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        assert done.returncode == 1, (cmd, done.stdout, done.stderr)
        assert message in done.stdout + done.stderr, (cmd, done.stdout + done.stderr)
