"""TCP tuning of both connections, read back from the sockets of fastlb and of haproxy 2.6 on
the same configuration (through duplicates of their descriptors, pidfd_getfd): option
tcp-smart-accept and tcp-smart-connect (TCP_QUICKACK), and the backend's source address."""
from __future__ import annotations

import os
import socket
import subprocess
import threading
import time

import psutil
import pytest

from conftest import FASTLB, Backend, free_port, listening_sockets, wait_until
from test_bind_options import connected_socket_of, listening_socket_of
from test_tcp_rules import HAPROXY

TCP_QUICKACK = socket.TCP_QUICKACK

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="reading another process's sockets needs root"),
    pytest.mark.skipif(HAPROXY is None, reason="haproxy not installed"),
]

DEFAULTS = """
defaults
    timeout connect 1s
    timeout client 5s
    timeout server 5s
"""


def run(name, text, tmp_path, ports):
    """haproxy or fastlb on ``text``, once it listens on every port; the process."""
    path = tmp_path / f"{name}.cfg"
    path.write_text(text)
    cmd = [HAPROXY, "-db", "-f", str(path)] if name == "haproxy" else \
        FASTLB + ["-d", "-f", str(path), "-n", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / f"{name}.err", "wb"), cwd=tmp_path)
    try:
        for port in ports:
            wait_until(lambda: listening_sockets(port) > 0, message=f"{name} on {port}")
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc


def family(proc) -> list[int]:
    return [proc.pid] + [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]


@pytest.mark.parametrize("name", ["haproxy", "fastlb"])
def test_smart_accept_is_on_in_http_mode_unless_turned_off(tmp_path, name):
    ports = [free_port() for _ in range(4)]
    text = DEFAULTS + "".join(f"""
listen l{i}
    mode {mode}
    bind 127.0.0.1:{port}
    {option}
    server s1 127.0.0.1:9
""" for i, (port, mode, option) in enumerate(zip(ports, ["http", "http", "tcp", "tcp"], [
        "", "no option tcp-smart-accept", "", "option tcp-smart-accept"])))
    proc = run(name, text, tmp_path, ports)
    try:
        quickacks = []
        for port in ports:
            sock = listening_socket_of(proc.pid, port)
            quickacks.append(sock.getsockopt(socket.IPPROTO_TCP, TCP_QUICKACK))
            sock.close()
    finally:
        proc.terminate()
        proc.wait(5)
    assert quickacks == [0, 1, 1, 0]


@pytest.mark.parametrize("name", ["haproxy", "fastlb"])
def test_smart_connect_and_source_shape_the_server_connection(tmp_path, name):
    """option tcp-smart-connect: no quick ACK on a server socket with bytes to send at once
    (a PROXY header here; an HTTP request too in fastlb, as the manual says, where haproxy
    2.6 looks at the wrong channel), a quick one with nothing to send yet; with source
    127.0.0.2 the server sees the connection come from there (a fixed port too)."""
    release = threading.Event()
    peers = []

    def hold(conn, backend):
        peers.append(conn.getpeername())
        release.wait(5)

    backend = Backend(hold)
    ports = [free_port() for _ in range(4)]
    source_port = free_port()
    text = DEFAULTS + f"""
    mode tcp
    option tcp-smart-connect
listen proxied
    bind 127.0.0.1:{ports[0]}
    source 127.0.0.2
    server s1 127.0.0.1:{backend.port} send-proxy
listen idle
    bind 127.0.0.1:{ports[1]}
    server s1 127.0.0.1:{backend.port}
listen fixed
    bind 127.0.0.1:{ports[2]}
    no option tcp-smart-connect
    source 127.0.0.3:{source_port}
    server s1 127.0.0.1:{backend.port} send-proxy
listen web
    mode http
    bind 127.0.0.1:{ports[3]}
    server s1 127.0.0.1:{backend.port}
"""
    proc = run(name, text, tmp_path, ports)
    clients = []
    try:
        seen = []
        for port in ports:
            client = socket.create_connection(("127.0.0.1", port))
            clients.append(client)
            if port == ports[3]:
                client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            wait_until(lambda: len(peers) == len(clients), message="the server connection")
            peer = peers[-1]
            sock = connected_socket_of(family(proc), local_port=peer[1], remote_port=-1)
            seen.append((peer[0], sock.getsockopt(socket.IPPROTO_TCP, TCP_QUICKACK)))
            sock.close()
        assert peers[2][1] == source_port
    finally:
        release.set()
        for client in clients:
            client.close()
        proc.terminate()
        proc.wait(5)
        backend.close()
    web = 0 if name == "fastlb" else 1
    assert seen == [("127.0.0.2", 0), ("127.0.0.1", 1), ("127.0.0.3", 1), ("127.0.0.1", web)]


@pytest.mark.parametrize("name", ["haproxy", "fastlb"])
def test_server_source_overrides_the_backend_one_for_traffic_and_checks(tmp_path, name):
    """server ... source: the server's connections, health checks included, come from its
    own address; a server without one uses the backend's, default-server's is inherited."""
    peers = {}
    lock = threading.Lock()

    def note(conn, backend):
        with lock:
            peers.setdefault(backend.name, set()).add(conn.getpeername()[0])
        try:
            conn.recv(100)
        except OSError:
            pass

    servers = {letter: Backend(note, letter) for letter in "abc"}
    ports = [free_port(), free_port()]
    text = DEFAULTS + f"""
    mode tcp
listen own
    bind 127.0.0.1:{ports[0]}
    balance roundrobin
    source 127.0.0.2
    server a 127.0.0.1:{servers['a'].port} source 127.0.0.4 check inter 300
    server b 127.0.0.1:{servers['b'].port} check inter 300
listen defaults_
    bind 127.0.0.1:{ports[1]}
    default-server source 127.0.0.5
    server c 127.0.0.1:{servers['c'].port} check inter 300
"""
    proc = run(name, text, tmp_path, ports)
    try:
        for port in (ports[0], ports[0], ports[1]):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
                client.sendall(b"x")
                time.sleep(0.05)
        wait_until(lambda: len(peers) == 3 and all(len(v) >= 1 for v in peers.values()),
                   message="connections to every server")
        time.sleep(0.7)                  # a few checks too
    finally:
        proc.terminate()
        proc.wait(5)
        for backend in servers.values():
            backend.close()
    assert peers == {"a": {"127.0.0.4"}, "b": {"127.0.0.2"}, "c": {"127.0.0.5"}}
