"""Differential tests: Debian's haproxy and fastlb on the same config must behave the same.

Compared: what each client receives, and the log line for each session, with the
parts that legitimately differ (program tag, pid, ports, dates, timer values)
masked out.
"""
from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time

import pytest

from conftest import (FASTLB, SyslogReceiver, free_port, listening_sockets, mask_log_line,
                      name_handler, recv_until_eof, wait_until)

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
    retries 1
frontend f_ok
    bind 127.0.0.1:{p0}
    default_backend b_ok
frontend f_disp
    bind 127.0.0.1:{p1}
    default_backend b_disp
frontend f_none
    bind 127.0.0.1:{p2}
    default_backend b_none
frontend f_refused
    bind 127.0.0.1:{p3}
    default_backend b_refused
frontend f_nobe
    bind 127.0.0.1:{p4}
frontend f_weights
    bind 127.0.0.1:{p5}
    default_backend b_weights
frontend f_weights2
    bind 127.0.0.1:{p7}
    default_backend b_weights2
backend b_ok
    server s1 127.0.0.1:{s1}
backend b_disp
    dispatch 127.0.0.1:{s1}
backend b_none
backend b_refused
    option redispatch
    server dead 127.0.0.1:{dead}
    server s1 127.0.0.1:{s1}
backend b_weights
    server a 127.0.0.1:{s1} weight 2
    server b 127.0.0.1:{s2} weight 1
    server c 127.0.0.1:{s3} disabled
backend b_weights2
    server a 127.0.0.1:{s1} weight 7
    server b 127.0.0.1:{s2} weight 5
    server c 127.0.0.1:{s3} weight 2
    server d 127.0.0.1:{s4} weight 1
defaults
    mode tcp
    log global
    timeout connect 1s
    timeout client 2s
    timeout server 2s
frontend f_connect_log
    bind 127.0.0.1:{p6}
    default_backend b_ok
"""


def exchange(port: int) -> bytes:
    """Send "ping", half-close, read to the end: deterministic whatever the packet timing."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(b"ping")
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # closed by the proxy already: what was received still tells
        try:
            return recv_until_eof(sock)
        except ConnectionResetError:
            return b"<reset>"


def normalize(line: str) -> str:
    line = mask_log_line(line)
    # timers: keep -1 (phase not reached) apart from measured values
    line = re.sub(r" (-1|\d+)/(-1|\d+)/(\d+) ",
                  lambda m: " " + "/".join("-1" if g == "-1" else "N" for g in m.groups()) + " ", line)
    return line


def drive(cmd, ports, tmp_path, syslog, name):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"{name}.err", "wb"),
                            cwd=tmp_path)
    try:
        for port in ports:
            wait_until(lambda: _accepting(port), message=f"{name} on {port}")
        syslog.drain(0.2)
        results = []
        for port in ports[:5]:  # ok, dispatch, no server, refused+redispatch, no backend
            results.append(exchange(port))
            time.sleep(0.1)
        weighted = [exchange(ports[5]) for _ in range(6)] + [exchange(ports[7]) for _ in range(30)]
        results.append(exchange(ports[6]))
        time.sleep(0.3)
        logs = sorted(normalize(line) for line in syslog.drain(0.5))
        return results, weighted, logs
    finally:
        proc.terminate()
        proc.wait(5)


def _accepting(port):
    # a bare TCP probe would be logged; check the listen table instead
    return listening_sockets(port) > 0


def test_tcp_mode_matches_haproxy(tmp_path, backends):
    s1 = backends(name_handler, name="s1")
    s2 = backends(name_handler, name="s2")
    s3 = backends(name_handler, name="s3")
    s4 = backends(name_handler, name="s4")
    outcomes = {}
    for name in ("haproxy", "fastlb"):
        syslog = SyslogReceiver()
        ports = [free_port() for _ in range(8)]
        text = CONFIG.format(log=syslog.port, s1=s1.port, s2=s2.port, s3=s3.port, s4=s4.port,
                             dead=free_port(), **{f"p{i}": p for i, p in enumerate(ports)})
        cfg = tmp_path / f"{name}.cfg"
        cfg.write_text(text)
        cmd = ["haproxy", "-d", "-f", str(cfg)] if name == "haproxy" else \
            FASTLB + ["-d", "-n", "1", "-f", str(cfg)]  # one worker: counters in logs race otherwise
        outcomes[name] = drive(cmd, ports, tmp_path, syslog, name)
        syslog.sock.close()
    haproxy, fastlb = outcomes["haproxy"], outcomes["fastlb"]
    assert fastlb[0] == haproxy[0]          # what each client received
    assert fastlb[1] == haproxy[1], (fastlb[1], haproxy[1])  # weighted round robin order, disabled server skipped
    assert fastlb[2] == haproxy[2], "\n".join(fastlb[2]) + "\n--- haproxy ---\n" + "\n".join(haproxy[2])
    assert len(fastlb[2]) == 42


@pytest.mark.parametrize("nolinger", [True, False])
def test_option_nolinger_resets_when_the_client_leaves_as_haproxy(tmp_path, backends,
                                                                   nolinger):
    """option nolinger: a client that closes while its server is still busy ends the
    session at once with TCP resets on both sides, so nothing stays in the system's
    tables; without it the half-close is passed on and both connections wait in
    FIN-WAIT-2 / CLOSE-WAIT for the server."""
    def slow(conn, backend):
        conn.recv(100)
        time.sleep(1.5)

    def states(port):
        out = subprocess.run(["ss", "-Htan", f"( sport = :{port} or dport = :{port} )"],
                             capture_output=True, text=True).stdout
        return sorted({line.split()[0] for line in out.splitlines()} - {"LISTEN"})

    def outcome(port, server):
        with socket.create_connection(("127.0.0.1", port), timeout=3) as conn:
            conn.sendall(b"hi")
            time.sleep(0.2)
        time.sleep(0.3)
        return states(port), states(server.port)
    seen = {}
    for name in ("haproxy", "fastlb"):
        server = backends(slow)             # each its own: no TIME-WAIT left from the other
        port = free_port()
        path = tmp_path / f"{name}.cfg"
        path.write_text(f"""
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
listen app
    bind 127.0.0.1:{port}
    {"option nolinger" if nolinger else ""}
    server s 127.0.0.1:{server.port}
""")
        cmd = ["haproxy", "-db", "-f", str(path)] if name == "haproxy" else \
            FASTLB + ["-d", "-f", str(path), "-n", "1"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: listening_sockets(port) > 0, message=f"{name} listening")
            seen[name] = outcome(port, server)
        finally:
            proc.terminate()
            proc.wait(5)
    waiting = ["CLOSE-WAIT", "FIN-WAIT-2"]
    expected = ([], []) if nolinger else (waiting, waiting)
    assert seen == {"haproxy": expected, "fastlb": expected}
