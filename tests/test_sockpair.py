"""sockpair@<fd> listeners and servers: connections handed over a UNIX socket pair as
descriptors (an SCM_RIGHTS message each), as HAProxy passes them, compared with
haproxy 2.6 on the same config: what the client and the server get, and the log line.

The test holds the other end of each pair: it passes a connected socket in (the bind),
and takes the descriptor each server connection sends out (the server)."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

from conftest import FASTLB, SyslogReceiver, mask_log_line, recv_until_eof, wait_until

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")

CONFIG = """
global
    log 127.0.0.1:{log} local0
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 1s
    timeout client 2s
    timeout server 2s
listen in_pair
    bind sockpair@{bind_fd}
    server s sockpair@{server_fd}
"""


def connected_pair():
    """Two ends of a TCP connection over loopback."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
    return client, accepted


def run(program, tmp_path):
    bind_ours, bind_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    srv_ours, srv_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    syslog = SyslogReceiver()
    cfg = tmp_path / f"{program}.cfg"
    cfg.write_text(CONFIG.format(log=syslog.port, bind_fd=bind_theirs.fileno(),
                                 server_fd=srv_theirs.fileno()))
    keep = [bind_theirs.fileno(), srv_theirs.fileno()]
    cmd = ["haproxy", "-db", "-f", str(cfg)] if program == "haproxy" else \
        FASTLB + ["-d", "-n", "1", "-f", str(cfg)]
    proc = subprocess.Popen(cmd, pass_fds=keep, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    bind_theirs.close()
    srv_theirs.close()
    try:
        time.sleep(1.0)                     # nothing listens on a port to wait for
        assert proc.poll() is None
        syslog.drain(0.1)
        outcomes = []
        for payload in (b"hello", b"second"):
            client, handed = connected_pair()
            socket.send_fds(bind_ours, [b"x"], [handed.fileno()])
            handed.close()
            client.sendall(payload)
            client.shutdown(socket.SHUT_WR)
            # the server side: the descriptor fastlb sends out is a socket pair end
            srv_ours.settimeout(3)
            _, fds, _, _ = socket.recv_fds(srv_ours, 2, 1)   # haproxy sends 2 bytes
            server = socket.socket(fileno=fds[0])
            server.settimeout(3)
            got = recv_until_eof(server)
            server.sendall(b"answer to " + got)
            server.close()
            client.settimeout(3)
            reply = recv_until_eof(client)
            client.close()
            outcomes.append((got, reply))
        time.sleep(0.3)
        lines = [mask_log_line(line) for line in syslog.drain(0.5)]
        # the sending side goes away: the listener stops, the process goes on
        bind_ours.close()
        time.sleep(0.3)
        alive = proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(5)
        syslog.sock.close()
        srv_ours.close()
    return outcomes, [masked_timers(line) for line in lines], alive


def masked_timers(line):
    import re
    return re.sub(r" \d+/\d+/\d+ ", " T ", line)


def test_sockpair_bind_and_server_as_haproxy(tmp_path):
    theirs = run("haproxy", tmp_path)
    ours = run("fastlb", tmp_path)
    assert theirs[0] == [(b"hello", b"answer to hello"), (b"second", b"answer to second")]
    assert ours == theirs


def test_sockpair_refused_forms(tmp_path):
    for line, word in [("bind sockpair@x", "invalid file descriptor"),
                       ("server s sockpair@3 check", "health checks of a sockpair@ server")]:
        cfg = tmp_path / "bad.cfg"
        cfg.write_text("defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 1s\n"
                       f"    timeout server 1s\nlisten l\n    bind 127.0.0.1:1\n    {line}\n")
        run_ = subprocess.run(FASTLB + ["-c", "-f", str(cfg)], capture_output=True, text=True,
                              timeout=30)
        assert run_.returncode != 0 and word in run_.stderr and "bad.cfg:8" in run_.stderr, \
            run_.stderr
