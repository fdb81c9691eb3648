"""tune.buffers.limit: the I/O buffers all workers may hold together.  Clients that do
not read (and small client socket buffers, tune.sndbuf.client) make fastlb hold a buffer
each for their responses; past the limit the other
sessions wait for a buffer (show pools counts the failed allocations) and are all served,
whole, once buffers come back.  Compared with haproxy 2.6 at a limit it can serve; at a
tight one haproxy stalls streams until their timeouts (README, "Differences")."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import (FASTLB, Backend, FastLB, free_port, read_head, recv_until_eof,
                      serving, stats_cli, wait_until)

BODY = bytes(range(256)) * 8192           # 2 MiB: far more than the sockets' buffers
DIGEST = hashlib.sha256(BODY).hexdigest()

CONFIG = """
global
    stats socket {sock} level admin
    tune.sndbuf.client 16384
    {limit}
    {extra}
defaults
    mode {mode}
    timeout connect 2s
    timeout client 20s
    timeout server 20s
frontend f
    bind 127.0.0.1:{port}
    bind 127.0.0.1:{proxied} accept-proxy
    default_backend b
backend b
    server s 127.0.0.1:{back}
"""


def large_answer(conn, backend):
    """One request head (HTTP) or line (TCP), then BODY: as an HTTP response or raw."""
    head, _ = read_head(conn)
    if head is None:
        return
    if head.startswith(b"GET"):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                     % len(BODY))
    conn.sendall(BODY)


@pytest.fixture
def large_backend():
    backend = Backend(large_answer, "large")
    yield backend
    backend.close()


def pool(sock) -> dict:
    """The buffer pool's line of show pools, as numbers."""
    line = next(x for x in stats_cli(sock, "show pools").splitlines() if "Pool buffer" in x)
    found = re.search(r"\((\d+) bytes\) : (\d+) allocated \(\d+ bytes\), (\d+) used .*, "
                      r"(\d+) failures", line)
    return dict(zip(("size", "allocated", "used", "failures"), map(int, found.groups())))


class SlowReaders:
    """Clients that send their request and read nothing until released: the proxy holds
    their responses' next bytes in its buffers meanwhile."""

    def __init__(self, port: int, count: int, request: bytes, proxy_header=False):
        self.socks = []
        for i in range(count):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            sock.settimeout(20)
            sock.connect(("127.0.0.1", port))
            if proxy_header:
                sock.sendall(b"PROXY TCP4 192.0.2.%d 127.0.0.1 4000 80\r\n" % (i + 1))
            sock.sendall(request)
            self.socks.append(sock)
        self.replies = [None] * count

    def read_all(self) -> list:
        def read(i):
            try:
                self.replies[i] = recv_until_eof(self.socks[i])
            except OSError as exc:
                self.replies[i] = repr(exc).encode()
        threads = [threading.Thread(target=read, args=(i,)) for i in range(len(self.socks))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        for sock in self.socks:
            sock.close()
        return self.replies


def whole(reply: bytes, http=True) -> bool:
    if http:
        head, _, body = reply.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            return False
    else:
        body = reply
    return hashlib.sha256(body).hexdigest() == DIGEST


GET = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def start(fastlb, tmp_path, backend, limit="", mode="http", extra="", workers=2):
    port, proxied = free_port(), free_port()
    sock = tmp_path / "stats.sock"
    lb = fastlb(CONFIG.format(sock=sock, limit=limit, extra=extra, mode=mode, port=port,
                              proxied=proxied, back=backend.port),
                workers=workers, ports=(port, proxied))
    return lb, port, proxied, sock


def test_limit_holds_across_workers_and_every_waiting_client_is_served(fastlb, tmp_path,
                                                                       large_backend):
    _, port, proxied, sock = start(fastlb, tmp_path, large_backend, "tune.buffers.limit 5")
    readers = SlowReaders(port, 12, GET)
    wait_until(lambda: pool(sock)["failures"] > 0, message="sessions waiting for a buffer")
    # clients that come through the PROXY protocol wait for a buffer to read the header
    late = SlowReaders(proxied, 3, GET, proxy_header=True)
    time.sleep(0.5)
    held = pool(sock)
    assert held["allocated"] <= 5 and held["used"] <= 5, held
    assert held["allocated"] >= 3, held         # the limit, not the traffic, held it back
    replies = readers.read_all() + late.read_all()
    assert [whole(r) for r in replies] == [True] * 15
    after = pool(sock)
    assert after["allocated"] == after["used"] == 0, after  # a limited pool caches nothing
    assert after["failures"] >= held["failures"]


def test_without_a_limit_the_same_clients_take_a_buffer_each(fastlb, tmp_path, large_backend):
    _, port, _, sock = start(fastlb, tmp_path, large_backend)
    readers = SlowReaders(port, 12, GET)
    wait_until(lambda: pool(sock)["used"] >= 12, message="a buffer per slow reader")
    assert pool(sock)["failures"] == 0
    assert [whole(r) for r in readers.read_all()] == [True] * 12
    assert pool(sock)["allocated"] >= 12           # kept in the workers' caches


def test_tcp_sessions_wait_for_buffers_as_http_ones(fastlb, tmp_path, large_backend):
    # nosplice: every byte crosses a buffer (otherwise bulk transfers go through pipes)
    _, port, _, sock = start(fastlb, tmp_path, large_backend, "tune.buffers.limit 3",
                             mode="tcp", extra="nosplice")
    readers = SlowReaders(port, 8, b"SEND\r\n\r\n")
    wait_until(lambda: pool(sock)["failures"] > 0, message="sessions waiting for a buffer")
    assert pool(sock)["allocated"] <= 3
    assert [whole(r, http=False) for r in readers.read_all()] == [True] * 8
    info = stats_cli(sock, "show info")
    assert int(re.search(r"^PoolFailed: (\d+)$", info, re.M)[1]) > 0


def test_buffers_of_a_killed_worker_are_given_back(fastlb, tmp_path, large_backend):
    lb, port, _, sock = start(fastlb, tmp_path, large_backend, "tune.buffers.limit 4",
                              workers=1)
    readers = SlowReaders(port, 6, GET)
    wait_until(lambda: pool(sock)["allocated"] == 4, message="the limit reached")
    old = lb.worker_pids()
    os.kill(old[0], signal.SIGKILL)
    wait_until(lambda: lb.worker_pids() and lb.worker_pids() != old, message="a new worker")
    wait_until(lambda: pool(sock)["allocated"] == 0, message="the dead worker's buffers back")
    readers.read_all()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
        client.sendall(GET)
        assert whole(recv_until_eof(client))


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")
def test_same_clients_same_bytes_as_haproxy_at_a_limit_it_can_serve(tmp_path, large_backend):
    """haproxy needs several buffers per stream (its muxes' too): 64 serves these."""
    results = {}
    for program in ("haproxy", "fastlb"):
        port, proxied = free_port(), free_port()
        sock = tmp_path / f"{program}.sock"
        cfg = tmp_path / f"{program}.cfg"
        cfg.write_text(CONFIG.format(sock=sock, limit="tune.buffers.limit 64",
                                     extra="nbthread 2", mode="http", port=port,
                                     proxied=proxied, back=large_backend.port))
        with serving(program, cfg, (port, proxied)):
            readers = SlowReaders(port, 10, GET)
            time.sleep(0.5)
            held = pool(sock)
            results[program] = [whole(r) for r in readers.read_all()]
        assert held["allocated"] <= 64 and held["failures"] == 0, (program, held)
    assert results["fastlb"] == results["haproxy"] == [True] * 10


@pytest.mark.parametrize("line, message", [
    ("tune.buffers.limit", "'tune.buffers.limit' expects an integer argument."),
    ("tune.buffers.limit 10 20", "'tune.buffers.limit' cannot handle unexpected argument '20'."),
    ("tune.buffers.reserve", "'tune.buffers.reserve' expects an integer argument."),
])
def test_bad_arguments_are_refused_in_haproxys_words(tmp_path, line, message):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text(f"global\n    {line}\ndefaults\n    mode http\n")
    programs = [FASTLB] + ([["haproxy"]] if shutil.which("haproxy") else [])
    for program in programs:
        run = subprocess.run([*program, "-c", "-f", str(cfg)], capture_output=True, text=True,
                             timeout=30)
        assert run.returncode == 1, (program, run.stderr)
        assert f"parsing [{cfg}:2] : {message}" in run.stderr, (program, run.stderr)


@pytest.mark.parametrize("lines, limit", [
    (["tune.buffers.limit 1"], 3),                                 # at least 3
    (["tune.buffers.reserve 6", "tune.buffers.limit 4"], 7),       # past the reserve
    (["tune.buffers.limit 4", "tune.buffers.reserve 6"], 7),       # whichever comes first
    (["tune.buffers.limit x"], 0),                                 # atol(): no limit
])
def test_limit_is_raised_as_haproxy_raises_it(fastlb, tmp_path, large_backend, lines, limit):
    _, port, _, sock = start(fastlb, tmp_path, large_backend, "\n    ".join(lines),
                             workers=1)
    readers = SlowReaders(port, 10, GET)
    if limit:
        wait_until(lambda: pool(sock)["failures"] > 0, message="the limit reached")
        assert pool(sock)["allocated"] == limit
    else:
        wait_until(lambda: pool(sock)["used"] == 10, message="a buffer per slow reader")
    assert [whole(r) for r in readers.read_all()] == [True] * 10


def test_idle_keep_alive_connections_hold_no_buffer(fastlb, tmp_path, http_backends):
    """A buffer is held only while bytes wait in it: after keep-alive traffic (kept client
    and server connections, the server ones shared through the idle pool) none is in use,
    so none leaks out of a limited pool."""
    backend = http_backends("ka")
    _, port, _, sock = start(fastlb, tmp_path, backend, "tune.buffers.limit 3", workers=1)
    clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(4)]
    for round_ in range(25):
        for client in clients:
            client.sendall(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % round_)
        for client in clients:
            head, rest = read_head(client)
            assert head.startswith(b"HTTP/1.1 200"), head
            length = int(re.search(rb"content-length: *(\d+)", head, re.I)[1])
            while len(rest) < length:
                rest += client.recv(65536)
    assert pool(sock)["used"] == pool(sock)["allocated"] == 0
    for client in clients:
        client.close()
