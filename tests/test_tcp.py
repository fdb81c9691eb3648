"""mode tcp end to end: relay, round robin, retries, half-close, timeouts, maxconn, logs."""
from __future__ import annotations

import os
import re
import socket
import threading
import time

import pytest

from conftest import (free_port, listening_sockets, name_handler, recv_exact, recv_until_eof, sha256,
                      wait_until)

TIMEOUTS = """
    timeout connect 1s
    timeout client 10s
    timeout server 10s
"""


def tcp_config(port, servers, extra_backend="", extra_defaults="", extra_frontend="",
               global_="", timeouts=TIMEOUTS):
    lines = "\n".join(f"    server {name} 127.0.0.1:{p}{opts}" for name, p, opts in servers)
    return f"""
global
{global_}
defaults
    mode tcp
{timeouts}
{extra_defaults}
frontend fe
    bind 127.0.0.1:{port}
{extra_frontend}
    default_backend be
backend be
    balance roundrobin
{extra_backend}
{lines}
"""


def connect(port, timeout=10.0):
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    return sock


def first_line(port) -> str:
    with connect(port) as sock:
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(100)
            if not chunk:
                break
            data += chunk
        return data.decode().strip()


# -- relay ---------------------------------------------------------------------------------------
def test_small_echo_and_half_close(fastlb, backends):
    backend = backends()
    port = free_port()
    fastlb(tcp_config(port, [("s1", backend.port, "")]), ports=[port])
    with connect(port) as sock:
        sock.sendall(b"hello fastlb")
        assert recv_exact(sock, 12) == b"hello fastlb"
        # Half-close: our FIN reaches the server, which still answers, then closes.
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)
        assert recv_until_eof(sock) == b"last words"


def test_half_close_from_server_keeps_client_direction_open(fastlb, backends):
    """The server closes its write side first; the client can still send and be heard."""
    received = []

    def handler(conn, backend):
        conn.sendall(b"bye early")
        conn.shutdown(socket.SHUT_WR)
        received.append(recv_until_eof(conn))

    backend = backends(handler)
    port = free_port()
    fastlb(tcp_config(port, [("s1", backend.port, "")]), ports=[port])
    with connect(port) as sock:
        assert recv_until_eof(sock) == b"bye early"   # FIN propagated to the client
        sock.sendall(b"still talking")
        sock.shutdown(socket.SHUT_WR)
        wait_until(lambda: received, message="server to receive the late data")
    assert received == [b"still talking"]


@pytest.mark.parametrize("workers", [1, 4])
def test_100mb_both_directions_checksum(fastlb, backends, workers):
    size = 100 * 1024 * 1024
    payload = os.urandom(1024 * 1024) * 100

    def handler(conn, backend):
        # read the upload, answer with its digest, then stream the download
        import hashlib
        digest = hashlib.sha256()
        got = 0
        while got < size:
            data = conn.recv(1 << 20)
            if not data:
                break
            digest.update(data)
            got += len(data)
        conn.sendall(digest.hexdigest().encode())
        view = memoryview(payload)
        for offset in range(0, size, 1 << 20):
            conn.sendall(view[offset:offset + (1 << 20)])

    backend = backends(handler)
    port = free_port()
    fastlb(tcp_config(port, [("s1", backend.port, "")]), workers=workers, ports=[port])
    with connect(port, timeout=60) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        digest = recv_exact(sock, 64).decode()
        sender.join()
        assert digest == sha256(payload)
        downloaded = recv_exact(sock, size)
    assert len(downloaded) == size
    assert sha256(downloaded) == sha256(payload)


def pipes_of(pid) -> int:
    fd_dir = f"/proc/{pid}/fd"
    count = 0
    for name in os.listdir(fd_dir):
        try:
            count += os.readlink(os.path.join(fd_dir, name)).startswith("pipe:")
        except OSError:
            pass            # closed while listing
    return count


def test_bulk_transfer_is_spliced_and_counted(fastlb, backends, syslog):
    """More than a buffer at once switches a direction to splice(2) through a pipe: the
    bytes arrive intact, the log counts every one, and the pipe goes with the session."""
    size = 20 * 1024 * 1024
    payload = os.urandom(1024 * 1024) * 20
    backend = backends(lambda conn, backend: conn.sendall(payload))
    port = free_port()
    lb = fastlb(tcp_config(port, [("s1", backend.port, "")],
                           global_=f"    log 127.0.0.1:{syslog.port} len 4096 local3 info",
                           extra_defaults="    log global\n    option tcplog"), ports=[port])
    (worker,) = lb.worker_pids()
    idle_pipes = pipes_of(worker)
    with connect(port, timeout=30) as sock:
        head = recv_exact(sock, 1024 * 1024)
        # the client reads no more for now: the transfer waits in the worker, spliced
        wait_until(lambda: pipes_of(worker) > idle_pipes, message="a splice pipe in the worker")
        rest = recv_until_eof(sock)
    assert sha256(head + rest) == sha256(payload)
    line = syslog.recv()
    assert re.search(rf" fe be/s1 0/\d+/\d+ {size} -- ", line), line
    wait_until(lambda: pipes_of(worker) == idle_pipes, message="the pipe closed with the session")


def pipe_sizes_of(pid) -> list[int]:
    """F_GETPIPE_SZ of every pipe the process holds (through duplicates, pidfd_getfd)."""
    import ctypes
    import fcntl
    from test_bind_options import SYS_PIDFD_GETFD, SYS_PIDFD_OPEN
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = libc.syscall(SYS_PIDFD_OPEN, pid, 0)
    assert pidfd >= 0, os.strerror(ctypes.get_errno())
    sizes = []
    try:
        for name in os.listdir(f"/proc/{pid}/fd"):
            try:
                if not os.readlink(f"/proc/{pid}/fd/{name}").startswith("pipe:"):
                    continue
            except OSError:
                continue
            fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(name), 0)
            if fd >= 0:
                sizes.append(fcntl.fcntl(fd, 1032))          # F_GETPIPE_SZ
                os.close(fd)
    finally:
        os.close(pidfd)
    return sizes


@pytest.mark.skipif(os.geteuid() != 0, reason="reading another process's pipes needs root")
@pytest.mark.parametrize("global_, pipes, size", [
    ("    tune.pipesize 65536", 2, 65536),     # a pipe per session, sized as told
    ("    maxpipes 1", 1, None),              # the second session copies through its buffer
    ("    nosplice", 0, None),
    ("", 2, None),                          # unlimited: the reference for the two above
])
def test_splice_pipes_obey_pipesize_maxpipes_and_nosplice(fastlb, backends, global_, pipes,
                                                          size):
    """Two slow readers of a bulk transfer: the worker opens no more pipes than maxpipes lets it
    (none with nosplice), of tune.pipesize bytes, and every byte still arrives."""
    payload = os.urandom(1024 * 1024) * 8
    backend = backends(lambda conn, backend: conn.sendall(payload))
    port = free_port()
    lb = fastlb(tcp_config(port, [("s1", backend.port, "")], global_=global_), ports=[port])
    (worker,) = lb.worker_pids()
    idle_pipes = pipes_of(worker)
    with connect(port, timeout=30) as a, connect(port, timeout=30) as b:
        heads = [recv_exact(a, 1024 * 1024), recv_exact(b, 1024 * 1024)]
        time.sleep(0.5)             # both transfers wait in the worker, stalled on the clients
        held = pipes_of(worker) - idle_pipes
        sizes = pipe_sizes_of(worker)
        rests = [recv_until_eof(a), recv_until_eof(b)]
    assert held == 2 * pipes, held        # a pipe is two descriptors
    if size:
        assert size in sizes, sizes
    for head, rest in zip(heads, rests):
        assert sha256(head + rest) == sha256(payload)


def test_many_concurrent_sessions(fastlb, backends):
    backend = backends()
    port = free_port()
    fastlb(tcp_config(port, [("s1", backend.port, "")]), workers=2, ports=[port])
    results = []

    def client(i):
        with connect(port) as sock:
            message = f"client {i} ".encode() * 100
            sock.sendall(message)
            results.append(recv_exact(sock, len(message)) == message)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results.count(True) == 100


# -- round robin ----------------------------------------------------------------------------------
def test_roundrobin_order_equal_weights(fastlb, backends):
    servers = [backends(name_handler, name=f"s{i}") for i in range(1, 5)]
    port = free_port()
    fastlb(tcp_config(port, [(s.name, s.port, "") for s in servers]), ports=[port])
    assert [first_line(port) for _ in range(5)] == ["s1", "s2", "s3", "s4", "s1"]


def test_roundrobin_weights_follow_haproxy_order(fastlb, backends):
    a, b, c = (backends(name_handler, name=n) for n in "abc")
    port = free_port()
    fastlb(tcp_config(port, [("a", a.port, " weight 5"), ("b", b.port, " weight 3"),
                             ("c", c.port, " weight 1")]), ports=[port])
    # HAProxy 2.6 (lb_fwrr) gives this order for 5:3:1
    assert "".join(first_line(port) for _ in range(18)) == "aabacbaab" * 2


def test_roundrobin_shared_across_four_workers(fastlb, backends):
    """One shared position per backend: 4 workers together still give an exact 3:1 split."""
    a, b = backends(name_handler, name="a"), backends(name_handler, name="b")
    port = free_port()
    fastlb(tcp_config(port, [("a", a.port, " weight 3"), ("b", b.port, " weight 1")]),
           workers=4, ports=[port])
    names = [first_line(port) for _ in range(400)]
    assert names.count("a") == 300 and names.count("b") == 100


def test_disabled_and_backup_servers(fastlb, backends):
    a, b, c = (backends(name_handler, name=n) for n in ("a", "b", "c"))
    port = free_port()
    fastlb(tcp_config(port, [("a", a.port, " disabled"), ("b", b.port, ""), ("c", c.port, " backup")]),
           ports=[port])
    assert {first_line(port) for _ in range(4)} == {"b"}
    port2 = free_port()
    fastlb(tcp_config(port2, [("a", a.port, " disabled"), ("c", c.port, " backup")]), ports=[port2])
    assert {first_line(port2) for _ in range(3)} == {"c"}


def test_dispatch(fastlb, backends):
    backend = backends(name_handler, name="dispatched")
    port = free_port()
    cfg = f"""
    defaults
        mode tcp
        {TIMEOUTS}
    listen li
        bind 127.0.0.1:{port}
        dispatch 127.0.0.1:{backend.port}
    """
    fastlb(cfg, ports=[port])
    assert first_line(port) == "dispatched"


def test_server_without_port_uses_the_port_the_client_reached(fastlb):
    port = free_port()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.2", port))         # same port, other loopback address
    srv.listen(5)
    cfg = f"""
    defaults
        mode tcp
        {TIMEOUTS}
    frontend fe
        bind 127.0.0.1:{port}
        default_backend be
    backend be
        server s 127.0.0.2
    """
    fastlb(cfg, ports=[port])

    def serve():
        conn, _ = srv.accept()
        conn.sendall(b"on 127.0.0.2\n")
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    assert first_line(port) == "on 127.0.0.2"
    srv.close()


# -- connect failures: retries and redispatch -----------------------------------------------------
def test_redispatch_moves_to_next_server_at_once(fastlb, backends):
    good = backends(name_handler, name="good")
    dead = free_port()
    port = free_port()
    fastlb(tcp_config(port, [("dead", dead, ""), ("good", good.port, "")],
                      extra_backend="    option redispatch\n    retries 2"), ports=[port])
    started = time.monotonic()
    assert [first_line(port) for _ in range(4)] == ["good"] * 4
    assert time.monotonic() - started < 1.0   # no turn-around delay when moving on


def test_without_redispatch_retries_same_server_then_gives_up(fastlb, backends, syslog):
    good = backends(name_handler, name="good")
    dead = free_port()
    port = free_port()
    fastlb(tcp_config(port, [("dead", dead, ""), ("good", good.port, "")],
                      extra_backend="    retries 2",
                      global_=f"    log 127.0.0.1:{syslog.port} local0",
                      extra_defaults="    log global\n    option tcplog",
                      timeouts="    timeout connect 200ms\n    timeout client 5s\n    timeout server 5s"),
           ports=[port])
    started = time.monotonic()
    assert first_line(port) == ""          # first pick is the dead server: closed after retries
    elapsed = time.monotonic() - started
    assert 0.35 < elapsed < 2.0             # two turn-arounds of min(timeout connect, 1s)
    line = syslog.recv()
    assert re.search(r" fe be/dead -?\d+/-1/\d+ 0 SC \d+/\d+/0/0/2 0/0\n$", line), line
    assert first_line(port) == "good"


def test_connect_timeout(fastlb):
    # A listening socket that never accepts, with a full backlog, makes SYNs go unanswered.
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(0)
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(blackhole.getsockname())
        fillers.append(s)
    port = free_port()
    fastlb(tcp_config(port, [("bh", blackhole.getsockname()[1], "")], extra_backend="    retries 0",
                      timeouts="    timeout connect 300ms\n    timeout client 5s\n    timeout server 5s"),
           ports=[port])
    started = time.monotonic()
    assert first_line(port) == ""
    assert 0.25 < time.monotonic() - started < 1.5
    blackhole.close()
    for s in fillers:
        s.close()


# -- timeouts -----------------------------------------------------------------------------------
def silent_handler(conn, backend):
    recv_until_eof(conn)


@pytest.mark.parametrize("timeouts, expected", [
    ("timeout connect 1s\n    timeout client 400ms\n    timeout server 5s", 0.4),
    ("timeout connect 1s\n    timeout client 5s\n    timeout server 400ms", 0.4),
    ("timeout connect 1s\n    timeout client 100ms\n    timeout server 100ms\n    timeout tunnel 600ms", 0.6),
])
def test_inactivity_timeouts(fastlb, backends, timeouts, expected):
    backend = backends(silent_handler)
    port = free_port()
    fastlb(tcp_config(port, [("s1", backend.port, "")], timeouts="    " + timeouts), ports=[port])
    with connect(port) as sock:
        started = time.monotonic()
        assert recv_until_eof(sock) == b""
        elapsed = time.monotonic() - started
    assert expected - 0.05 < elapsed < expected + 0.5


def test_activity_keeps_a_session_alive(fastlb, backends):
    backend = backends()
    port = free_port()
    fastlb(tcp_config(port, [("s1", backend.port, "")],
                      timeouts="    timeout connect 1s\n    timeout client 300ms\n    timeout server 300ms"),
           ports=[port])
    with connect(port) as sock:
        for _ in range(6):                 # 6 x 150 ms > 300 ms of client timeout
            sock.sendall(b"ping")
            assert recv_exact(sock, 4) == b"ping"
            time.sleep(0.15)


def test_client_fin_timeout(fastlb, backends):
    """After the client half-closes, 'timeout client-fin' replaces 'timeout client'."""
    backend = backends(lambda conn, b: (recv_until_eof(conn), time.sleep(5)))
    port = free_port()
    fastlb(tcp_config(port, [("s1", backend.port, "")],
                      timeouts="    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n"
                               "    timeout client-fin 300ms\n    timeout server-fin 300ms"),
           ports=[port])
    with connect(port) as sock:
        sock.shutdown(socket.SHUT_WR)
        started = time.monotonic()
        assert recv_until_eof(sock) == b""
        assert 0.25 < time.monotonic() - started < 1.5


# -- maxconn --------------------------------------------------------------------------------------
def test_frontend_maxconn_across_workers_queues_in_backlog(fastlb, backends):
    release = threading.Event()

    def hold(conn, backend):
        conn.sendall(b"in\n")
        release.wait(10)

    backend = backends(hold)
    port = free_port()
    fastlb(tcp_config(port, [("s1", backend.port, "")], extra_frontend="    maxconn 3"),
           workers=2, ports=[port])
    socks = [connect(port) for _ in range(6)]
    wait_until(lambda: backend.accepted >= 3, message="3 sessions")
    time.sleep(0.3)
    assert backend.accepted == 3            # the other 3 wait in the listen backlog

    def finish(sock):
        recv_until_eof(sock)               # the server closed: close our side too
        sock.close()

    closers = [threading.Thread(target=finish, args=(s,)) for s in socks]
    for t in closers:
        t.start()
    release.set()
    wait_until(lambda: backend.accepted == 6, message="queued connections served")
    assert backend.max_active <= 3
    for t in closers:
        t.join(5)


# -- logs -----------------------------------------------------------------------------------------
def test_tcplog_line_format(fastlb, backends, syslog):
    backend = backends(name_handler, name="s1")
    port = free_port()
    fastlb(tcp_config(port, [("s1", backend.port, "")],
                      global_=f"    log 127.0.0.1:{syslog.port} len 4096 local3 info",
                      extra_defaults="    log global\n    option tcplog"), workers=2, ports=[port])
    assert first_line(port) == "s1"
    line = syslog.recv()
    pattern = (r"^<158>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d fastlb\[" + str(fastlb_pid(line)) +
               r"\]: 127\.0\.0\.1:\d+ \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] fe be/s1 "
               r"0/\d+/\d+ 3 -- 1/1/0/0/0 0/0\n$")
    assert re.match(pattern, line), line


def fastlb_pid(line):
    return int(re.search(r"fastlb\[(\d+)\]", line).group(1))


def test_log_pid_is_master_and_connect_line_without_tcplog(fastlb, backends, syslog):
    backend = backends(name_handler, name="s1")
    port = free_port()
    lb = fastlb(tcp_config(port, [("s1", backend.port, "")],
                           global_=f"    log 127.0.0.1:{syslog.port} local0",
                           extra_defaults="    log global"), ports=[port])
    first_line(port)
    line = syslog.recv()
    assert f"fastlb[{lb.pid}]: Connect from 127.0.0.1:" in line
    assert line.endswith(f" to 127.0.0.1:{port} (fe/TCP)\n")


def test_dontlognull_and_stdout_raw_target(fastlb, backends):
    backend = backends()
    port = free_port()
    lb = fastlb(tcp_config(port, [("s1", backend.port, "")],
                           global_="    log stdout format raw local0",
                           extra_defaults="    log global\n    option tcplog\n    option dontlognull"),
                ports=[port])
    connect(port).close()                    # no data: not logged
    with connect(port) as sock:
        sock.sendall(b"data")
        recv_exact(sock, 4)
    wait_until(lambda: " fe be/s1 " in lb.stdout(), message="log line on stdout")
    lines = lb.stdout().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("127.0.0.1:")
    # the concurrent counts are not compared: the first (unlogged) session may still hold
    # its server connection when this one ends, its server not having closed yet
    assert re.search(r" 4 -- \d+/\d+/\d+/\d+/0 0/0$", lines[0])


def test_log_level_filter_and_len(fastlb, backends, syslog):
    backend = backends()
    port = free_port()
    fastlb(tcp_config(port, [("s1", backend.port, "")],
                      global_=(f"    log 127.0.0.1:{syslog.port} local0 notice\n"
                               f"    log 127.0.0.1:{syslog.port} len 80 format rfc5424 local1"),
                      extra_defaults="    log global\n    option tcplog"), ports=[port])
    with connect(port) as sock:
        sock.sendall(b"x")
        recv_exact(sock, 1)
    lines = [syslog.recv()] + syslog.drain()
    assert len(lines) == 1                  # the notice-only target dropped the info line
    assert lines[0].startswith("<142>1 ") and len(lines[0]) == 80 and lines[0].endswith("\n")


def test_server_fin_timeout(fastlb, backends):
    """After the server half-closes, 'timeout server-fin' bounds the wait on the server side."""
    closed_after = []

    def handler(conn, backend):
        conn.sendall(b"bye")
        conn.shutdown(socket.SHUT_WR)
        started = time.monotonic()
        recv_until_eof(conn)             # fastlb closes us when server-fin expires
        closed_after.append(time.monotonic() - started)

    backend = backends(handler)
    port = free_port()
    fastlb(tcp_config(port, [("s1", backend.port, "")],
                      timeouts="    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n"
                               "    timeout server-fin 300ms"), ports=[port])
    with connect(port) as sock:
        assert recv_until_eof(sock) == b"bye"
        wait_until(lambda: closed_after, timeout=3, message="server side closed")
    assert 0.25 < closed_after[0] < 1.5


def test_ipv6_and_env_expanded_bind(fastlb, backends):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    backend = backends()
    port, port6 = free_port(), free_port()
    env = dict(os.environ, FE_PORT=str(port))
    cfg = tcp_config(port, [("s1", backend.port, "")]).replace(
        f"bind 127.0.0.1:{port}", f'bind "127.0.0.1:${{FE_PORT}}"\n    bind [::1]:{port6}')
    fastlb(cfg, env=env, ports=[port, port6])
    for family, host, p in ((socket.AF_INET, "127.0.0.1", port), (socket.AF_INET6, "::1", port6)):
        with socket.socket(family) as sock:
            sock.settimeout(5)
            sock.connect((host, p))
            message = f"hello over {host}".encode()
            sock.sendall(message)
            assert recv_exact(sock, len(message)) == message


def test_unix_datagram_and_stderr_log_targets(fastlb, backends, tmp_path):
    backend = backends()
    path = str(tmp_path / "log.sock")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)
    receiver.settimeout(5)
    port = free_port()
    lb = fastlb(tcp_config(port, [("s1", backend.port, "")],
                           global_=f"    log {path} local2\n    log stderr format short local0",
                           extra_defaults="    log global\n    option tcplog"), ports=[port])
    with connect(port) as sock:
        sock.sendall(b"hi")
        recv_exact(sock, 2)
    line = receiver.recv(4096).decode()
    assert line.startswith("<150>") and " fe be/s1 " in line and line.endswith(" 0/0\n")
    wait_until(lambda: "<6>127.0.0.1:" in lb.stderr(), message="short-format line on stderr")
    receiver.close()


def test_killed_worker_leaks_no_maxconn_slot(fastlb, backends):
    """The master gives back a dead worker's connections; otherwise maxconn would stay full."""
    backend = backends()
    port = free_port()
    lb = fastlb(tcp_config(port, [("s1", backend.port, "")], extra_frontend="    maxconn 2"),
                workers=1, ports=[port])
    held = [connect(port) for _ in range(2)]
    for sock in held:
        sock.sendall(b"x")
        assert recv_exact(sock, 1) == b"x"
    (worker,) = lb.worker_pids()
    os.kill(worker, 9)
    wait_until(lambda: (lambda pids: pids and worker not in pids)(lb.worker_pids()), message="respawn")
    # the new worker has a title before it has bound the listener: wait for the listener
    wait_until(lambda: listening_sockets(port) >= 1, message="the new worker's listener")
    for sock in held:
        sock.close()
    for _ in range(2):
        with connect(port, timeout=5) as sock:
            sock.sendall(b"after")
            assert recv_exact(sock, 5) == b"after"


def test_log_format_in_tcp_mode(fastlb, backends, syslog):
    backend = backends()
    port = free_port()
    fastlb(tcp_config(port, [("s1", backend.port, "")],
                      global_=f"    log 127.0.0.1:{syslog.port} local0",
                      extra_defaults="    log global",
                      extra_frontend='    log-format "%ft->%b/%s %B bytes %ts %{+Q}ci"'), ports=[port])
    with connect(port) as sock:
        sock.sendall(b"12345")
        recv_exact(sock, 5)
    assert syslog.recv().endswith(': fe->be/s1 5 bytes -- "127.0.0.1"\n')
