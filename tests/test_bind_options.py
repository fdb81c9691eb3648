"""bind socket options (defer-accept, tfo, mss, interface, transparent, proto h1): read back
from the listening socket fastlb's master holds, through a duplicate of its descriptor
(pidfd_getfd), and refused where fastlb cannot honour them."""
from __future__ import annotations

import ctypes
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest

from conftest import FASTLB, HTTP_DEFAULTS, Backend, free_port, listening_sockets, wait_until

SYS_PIDFD_OPEN, SYS_PIDFD_GETFD = 434, 438
TCP_DEFER_ACCEPT, TCP_FASTOPEN, TCP_MAXSEG, TCP_USER_TIMEOUT = 9, 23, 2, 18
IP_TRANSPARENT = 19


def listening_socket_of(pid: int, port: int) -> socket.socket:
    """A duplicate of the process's listening socket on ``port``."""
    return socket_of(pid, lambda state, local, remote: state == "0A" and local == port,
                     f"no listening socket on port {port}")


def connection_of(pid: int, remote_port: int) -> socket.socket:
    """A duplicate of the process's established connection to ``remote_port``."""
    return socket_of(pid, lambda state, local, remote: state == "01" and remote == remote_port,
                     f"no connection to port {remote_port}")


def socket_of(pid: int, wanted, missing: str) -> socket.socket:
    """A duplicate of the process's TCP socket that ``wanted(state, local port, remote
    port)`` picks in /proc/net/tcp*."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                local, remote = (int(f.rsplit(":", 1)[1], 16) for f in fields[1:3])
                if wanted(fields[3], local, remote):
                    inodes.add(fields[9])
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = libc.syscall(SYS_PIDFD_OPEN, pid, 0)
    assert pidfd >= 0, os.strerror(ctypes.get_errno())
    try:
        for name in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{name}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(name), 0)
                assert fd >= 0, os.strerror(ctypes.get_errno())
                return socket.socket(fileno=fd)
    finally:
        os.close(pidfd)
    raise AssertionError(f"{missing} in process {pid}")


@pytest.mark.skipif(os.geteuid() != 0, reason="reading another process's socket needs root")
def test_bind_options_reach_the_listening_socket(fastlb):
    port, plain = free_port(), free_port()
    lb = fastlb(HTTP_DEFAULTS + f"""
    frontend fe
        bind 127.0.0.1:{port} defer-accept tfo mss 1200 interface lo transparent proto h1 backlog 77
        bind 127.0.0.1:{plain}
        http-request return status 200
    """, ports=[port, plain])
    sock = listening_socket_of(lb.proc.pid, port)
    other = listening_socket_of(lb.proc.pid, plain)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, TCP_DEFER_ACCEPT) > 0
        assert sock.getsockopt(socket.IPPROTO_TCP, TCP_FASTOPEN) == 77
        assert sock.getsockopt(socket.IPPROTO_TCP, TCP_MAXSEG) == 1200
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, 16).rstrip(b"\0") == b"lo"
        assert sock.getsockopt(socket.IPPROTO_IP, IP_TRANSPARENT) == 1
        assert other.getsockopt(socket.IPPROTO_TCP, TCP_DEFER_ACCEPT) == 0
        assert other.getsockopt(socket.IPPROTO_IP, IP_TRANSPARENT) == 0
    finally:
        sock.close()
        other.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="reading another process's socket needs root")
def test_tcp_ut_reaches_the_listener_its_connections_and_the_servers(fastlb):
    """bind ... tcp-ut: TCP_USER_TIMEOUT on the listening socket, which the accepted
    connections inherit; server ... tcp-ut: on each connection to that server."""
    port, plain = free_port(), free_port()
    held = threading.Event()
    backend = Backend(lambda conn, _: (conn.recv(65536), held.wait(10)))
    lb = fastlb(HTTP_DEFAULTS + f"""
    frontend fe
        bind 127.0.0.1:{port} tcp-ut 7s
        bind 127.0.0.1:{plain}
        default_backend be
    backend be
        server s1 127.0.0.1:{backend.port} tcp-ut 1500
    """, ports=[port, plain])
    listening = listening_socket_of(lb.proc.pid, port)
    other = listening_socket_of(lb.proc.pid, plain)
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: backend.active == 1, message="the request at the server")
        worker = lb.worker_pids()[0]
        accepted = connection_of(worker, client.getsockname()[1])
        upstream = connection_of(worker, backend.port)
        assert listening.getsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT) == 7000
        assert accepted.getsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT) == 7000
        assert upstream.getsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT) == 1500
        assert other.getsockopt(socket.IPPROTO_TCP, TCP_USER_TIMEOUT) == 0
        for sock in (accepted, upstream):
            sock.close()
    finally:
        held.set()
        client.close()
        listening.close()
        other.close()
        backend.close()


@pytest.mark.parametrize("option, message", [
    ("proto h2", "'proto' : 'h2' is not supported by fastlb yet"),
    ("mss -100", "'mss' expects a positive number"),
    ("strict-sni", "option 'strict-sni' is not supported by fastlb yet"),     # TLS (#11)
])
def test_bind_options_refused(tmp_path, option, message):
    path = tmp_path / "bad.cfg"
    path.write_text(f"frontend fe\n    mode http\n    bind 127.0.0.1:{free_port()} {option}\n")
    result = subprocess.run(FASTLB + ["-c", "-f", str(path)], capture_output=True, text=True)
    assert result.returncode == 1 and "bad.cfg:3]" in result.stderr and message in result.stderr


def test_bind_namespace_listens_in_that_namespace_only(fastlb, http_backends, netns):
    """bind ... namespace <name>: the listener is in that network namespace (a client
    there reaches the backend, which fastlb still connects to from its own), not in
    fastlb's; a second bind of the same address without it is another socket."""
    backend = http_backends("inside")
    port, other = free_port(), free_port()
    fastlb(HTTP_DEFAULTS + f"""
    frontend fe
        bind 127.0.0.1:{port} namespace {netns}
        bind 127.0.0.1:{other}
        default_backend be
    backend be
        server s 127.0.0.1:{backend.port}
""", ports=[other])
    curl = ["curl", "-s", "-m", "3", "-o", "-", "-w", " %{http_code}"]
    inside = subprocess.run(["ip", "netns", "exec", netns] + curl + [f"http://127.0.0.1:{port}/in"],
                            capture_output=True, text=True)
    assert inside.stdout == "inside GET /in 200"
    with socket.socket() as probe:                  # nothing listens on it here
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    outside = subprocess.run(curl + [f"http://127.0.0.1:{other}/out"], capture_output=True,
                             text=True)
    assert outside.stdout == "inside GET /out 200"


def test_bind_namespace_that_does_not_exist_is_an_alert(tmp_path):
    path = tmp_path / "haproxy.cfg"
    port = free_port()
    path.write_text(HTTP_DEFAULTS + f"""
    frontend fe
        bind 127.0.0.1:{port} namespace fastlb-no-such-ns
        default_backend be
    backend be
        server s 127.0.0.1:1
""")
    run = subprocess.run(FASTLB + ["-f", str(path), "-n", "1"], capture_output=True, text=True,
                         timeout=20)
    assert run.returncode == 1
    assert f"cannot bind socket (No such file or directory) for [127.0.0.1:{port}]" in run.stderr


def connected_socket_of(pids, local_port: int = 0, remote_port: int = 0) -> socket.socket:
    """A duplicate of the established TCP socket (one of the processes') with that local
    or remote port."""
    inodes = set()
    with open("/proc/net/tcp") as handle:
        for line in handle.readlines()[1:]:
            fields = line.split()
            local, remote = (int(f.rsplit(":", 1)[1], 16) for f in fields[1:3])
            if fields[3] == "01" and (local == local_port or remote == remote_port):
                inodes.add(fields[9])
    libc = ctypes.CDLL(None, use_errno=True)
    for pid in pids:
        pidfd = libc.syscall(SYS_PIDFD_OPEN, pid, 0)
        if pidfd < 0:
            continue
        try:
            for name in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{name}")
                except OSError:
                    continue
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(name), 0)
                    assert fd >= 0, os.strerror(ctypes.get_errno())
                    return socket.socket(fileno=fd)
        finally:
            os.close(pidfd)
    raise AssertionError(f"no connected socket (local {local_port}, remote {remote_port})")


@pytest.mark.skipif(os.geteuid() != 0, reason="reading another process's socket needs root")
def test_keepalive_probes_and_buffer_sizes_reach_both_connections(fastlb):
    """clitcpka-* on the client connection, srvtcpka-* on the server one (idle and interval
    in seconds, as HAProxy parses them), only where clitcpka / srvtcpka enable keep-alive;
    tune.rcvbuf.client / tune.sndbuf.server likewise (the kernel reports twice the size
    asked for)."""
    release = threading.Event()

    def hold(conn, backend):
        conn.recv(65536)
        release.wait(5)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    backend = Backend(hold)
    port = free_port()
    lb = fastlb("global\n    tune.rcvbuf.client 65536\n    tune.sndbuf.server 98304\n"
                + HTTP_DEFAULTS + f"""
    frontend fe
        bind 127.0.0.1:{port}
        option clitcpka
        clitcpka-cnt 3
        clitcpka-idle 7
        clitcpka-intvl 2000ms
        default_backend be
    backend be
        option srvtcpka
        srvtcpka-cnt 4
        srvtcpka-idle 1m
        srvtcpka-intvl 5s
        server s1 127.0.0.1:{backend.port}
    """, ports=[port])
    pids = [p.pid for p in psutil.Process(lb.proc.pid).children(recursive=True)]
    client = socket.create_connection(("127.0.0.1", port))
    try:
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 5
        while backend.accepted == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        front = connected_socket_of(pids, local_port=port)
        back = connected_socket_of(pids, remote_port=backend.port)
        try:
            def probes(sock):
                return (sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
                        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL))
            assert probes(front) == (1, 3, 7, 2)
            assert probes(back) == (1, 4, 60, 5)
            assert front.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) == 2 * 65536
            assert back.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 2 * 98304
        finally:
            front.close()
            back.close()
        release.set()
        assert client.recv(100).startswith(b"HTTP/1.1 200")
    finally:
        release.set()
        client.close()
        backend.close()


@pytest.mark.parametrize("program", ["haproxy", "fastlb"])
def test_server_namespace_connects_and_checks_inside_it(tmp_path, netns, program):
    """server ... namespace <name>: traffic and health checks reach the server in that
    network namespace (its own loopback), not the same address in fastlb's."""
    if program == "haproxy" and shutil.which("haproxy") is None:
        pytest.skip("haproxy not installed")
    port, inner = free_port(), free_port()
    script = ("import socket\ns = socket.socket(); s.setsockopt(socket.SOL_SOCKET, "
              "socket.SO_REUSEADDR, 1)\n"
              f"s.bind(('127.0.0.1', {inner})); s.listen(16)\n"
              "while True:\n    c, _ = s.accept(); c.settimeout(2)\n"
              "    try:\n        d = c.recv(100)\n        c.sendall(b'inside:' + d)\n"
              "    except OSError:\n        pass\n    c.close()\n")
    server = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-c", script])
    try:
        path = tmp_path / "ns.cfg"
        path.write_text(f"""
defaults
    mode tcp
    timeout connect 1s
    timeout client 3s
    timeout server 3s
listen l
    bind 127.0.0.1:{port}
    server s 127.0.0.1:{inner} namespace {netns} check inter 200
""")
        cmd = ["haproxy", "-f", str(path)] if program == "haproxy" else \
            FASTLB + ["-f", str(path), "-n", "1"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: listening_sockets(port) > 0, message="listening")
            time.sleep(1.2)              # checks pass (three failed ones would mark it down)
            replies = []
            for _ in range(3):
                with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
                    sock.sendall(b"hello")
                    replies.append(sock.recv(100))
            assert replies == [b"inside:hello"] * 3
        finally:
            proc.terminate()
            proc.wait(5)
    finally:
        server.kill()
        server.wait()
