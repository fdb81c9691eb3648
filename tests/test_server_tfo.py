"""server ... tfo and the bind/server ``proto`` keyword.

tfo: counted by the kernel of a network namespace of the test's own (TCP Fast Open on,
client and server side): the SYNs that carried data to a backend listening with
TCP_FASTOPEN. proto: HAProxy 2.6's multiplexer names, checked against the proxy's mode
as haproxy checks them, and a ``proto none`` listener whose session should become HTTP
ends as haproxy ends it."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time

import pytest

from conftest import (FASTLB, SyslogReceiver, free_port, mask_log_line, recv_until_eof,
                      serving)

# Runs inside the namespace: a TFO backend, the program on the config, some requests; prints
# the TcpExt counters' growth and what the clients got.
SCENARIO = r"""
import json, socket, subprocess, sys, threading, time
mode, program, cfg, port, back, count = sys.argv[1:7]
port, back, count = int(port), int(back), int(count)

def counters():
    lines = open("/proc/net/netstat").read().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            return dict(zip(names.split()[1:], map(int, values.split()[1:])))

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 16)
srv.bind(("127.0.0.1", back)); srv.listen(64)
def serve():
    while True:
        conn, _ = srv.accept()
        conn.settimeout(2)
        data = b""
        try:
            while (b"\r\n\r\n" not in data) if mode == "http" else (b"ping" not in data):
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            if mode == "http":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            else:
                conn.sendall(b"pong")
        except OSError:
            pass
        conn.close()
threading.Thread(target=serve, daemon=True).start()

cmd = ["haproxy", "-db", "-f", cfg] if program == "haproxy" else \
    [sys.executable, "-m", "fastlb", "-d", "-n", "1", "-f", cfg]
proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
answers = []
try:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        probe = socket.socket()
        if probe.connect_ex(("127.0.0.1", back)) == 0 and \
                subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                               text=True).stdout.strip():
            probe.close()
            break
        probe.close()
        time.sleep(0.05)
    before = counters()
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=3) as c:
            c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                      if mode == "http" else b"ping")
            got = b""
            while True:
                chunk = c.recv(4096)
                if not chunk:
                    break
                got += chunk
            answers.append(got.split(b"\r\n")[0] if mode == "http" else got)
    time.sleep(0.2)
    after = counters()
finally:
    proc.terminate()
    proc.wait(5)
names = ("TCPFastOpenActive", "TCPFastOpenPassive")
print(json.dumps({"answers": [a.decode() for a in answers],
                  **{n: after.get(n, 0) - before.get(n, 0) for n in names}}))
"""

CONFIG = """
defaults
    mode {mode}
    timeout connect 1s
    timeout client 3s
    timeout server 3s
    option httpclose
listen l
    bind 127.0.0.1:{port}
{inspect}    server s 127.0.0.1:{back} {tfo}
"""
# TCP: the client's bytes must be there when the server connection is made
INSPECT = "    tcp-request inspect-delay 2s\n    tcp-request content accept if { req.len gt 0 }\n"


def fast_open(netns, tmp_path, program, mode, tfo, count=8):
    subprocess.run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w",
                    "net.ipv4.tcp_fastopen=3"], check=True)
    port, back = free_port(), free_port()
    cfg = tmp_path / f"{program}-{mode}-{tfo}.cfg"
    cfg.write_text(CONFIG.format(mode=mode, port=port, back=back, tfo=tfo,
                                 inspect=INSPECT if mode == "tcp" else ""))
    script = tmp_path / "scenario.py"
    script.write_text(SCENARIO)
    run = subprocess.run(["ip", "netns", "exec", netns, sys.executable, str(script), mode,
                          program, str(cfg), str(port), str(back), str(count)],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.mark.parametrize("mode", ["http", "tcp"])
def test_server_tfo_sends_the_first_bytes_on_the_syn(netns, tmp_path, mode):
    """With a cookie from the first connection, each later server connection's request
    rides on its SYN (the backend's kernel counts them passive TFO); without tfo, or with
    no-tfo after a default-server tfo, none does. haproxy 2.6 accepts tfo but decides on
    the response channel's data, so in practice never sends SYN data (README)."""
    expected = ["HTTP/1.1 200 OK"] * 8 if mode == "http" else ["pong"] * 8
    on = fast_open(netns, tmp_path, "fastlb", mode, "tfo")
    assert on["answers"] == expected
    assert on["TCPFastOpenActive"] >= 7 and on["TCPFastOpenPassive"] >= 7, on
    off = fast_open(netns, tmp_path, "fastlb", mode, "")
    assert off["answers"] == expected
    assert off["TCPFastOpenActive"] == off["TCPFastOpenPassive"] == 0, off
    if shutil.which("haproxy"):
        theirs = fast_open(netns, tmp_path, "haproxy", mode, "tfo")
        assert theirs["answers"] == expected
        assert theirs["TCPFastOpenActive"] == 0, theirs


def test_server_no_tfo_resets_default_server(netns, tmp_path):
    cfg_off = fast_open(netns, tmp_path, "fastlb", "http", "no-tfo")
    assert cfg_off["TCPFastOpenActive"] == 0


PROTO_CONFIG = """
defaults
    mode {mode}
    timeout connect 1s
    timeout client 1s
    timeout server 1s
listen l
    bind 127.0.0.1:{port} proto {proto}
    server s 127.0.0.1:1 proto {proto}
"""


@pytest.mark.parametrize("mode, proto", [("http", "h1"), ("tcp", "h1"), ("http", "none"),
                                         ("tcp", "none"), ("http", "bogus")])
def test_proto_checked_against_the_mode_as_haproxy(tmp_path, mode, proto):
    cfg = tmp_path / "p.cfg"
    cfg.write_text(PROTO_CONFIG.format(mode=mode, proto=proto, port=free_port()))
    ours = subprocess.run(FASTLB + ["-c", "-f", str(cfg)], capture_output=True, text=True,
                          timeout=30)
    if shutil.which("haproxy") is None:
        pytest.skip("haproxy not installed")
    theirs = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert ours.returncode == theirs.returncode, (ours.stderr, theirs.stderr)

    def alerts(text):
        return sorted(line.split(" : ", 1)[1] for line in text.splitlines()
                      if line.startswith("[ALERT]") and "Fatal errors" not in line
                      and "Error(s) found" not in line)
    assert alerts(ours.stderr) == alerts(theirs.stderr)


@pytest.mark.parametrize("proto", ["h2", "fcgi"])
def test_proto_h2_and_fcgi_refused_by_name(tmp_path, proto):
    cfg = tmp_path / "p.cfg"
    cfg.write_text(PROTO_CONFIG.format(mode="http", proto=proto, port=free_port()))
    run = subprocess.run(FASTLB + ["-c", "-f", str(cfg)], capture_output=True, text=True,
                         timeout=30)
    assert run.returncode != 0
    assert f"'{proto}' is not supported by fastlb yet" in run.stderr and "p.cfg:" in run.stderr


NO_UPGRADE = """
global
    log 127.0.0.1:{log} local0
defaults
    log global
    timeout connect 1s
    timeout client 2s
    timeout server 2s
frontend f
    mode tcp
    option tcplog
    bind 127.0.0.1:{p0} proto none
    bind 127.0.0.1:{p1}
    default_backend b
backend b
    mode http
    server s 127.0.0.1:{back}
"""


def test_proto_none_listener_does_not_become_http(tmp_path, http_backends):
    """A tcp frontend sends its sessions to an http backend: through a ``proto none``
    listener the session cannot become HTTP; haproxy closes it, logged RR at the backend
    (the other listener's client is served)."""
    backend = http_backends("web")
    outcomes = {}
    for program in ("haproxy", "fastlb"):
        if program == "haproxy" and shutil.which("haproxy") is None:
            pytest.skip("haproxy not installed")
        syslog = SyslogReceiver()
        p0, p1 = free_port(), free_port()
        cfg = tmp_path / f"{program}.cfg"
        cfg.write_text(NO_UPGRADE.format(log=syslog.port, p0=p0, p1=p1, back=backend.port))
        with serving(program, cfg, [p0, p1]):
            syslog.drain(0.2)
            got = []
            for port in (p0, p1):
                with socket.create_connection(("127.0.0.1", port), timeout=3) as c:
                    c.sendall(b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
                    data = recv_until_eof(c)
                    got.append(data.split(b"\r\n")[0])
                time.sleep(0.2)
            lines = [mask_log_line(line) for line in syslog.drain(0.5)]
        syslog.sock.close()
        outcomes[program] = got, lines
    assert outcomes["fastlb"][0] == outcomes["haproxy"][0] == [b"", b"HTTP/1.1 200 OK"]
    theirs = [line for line in outcomes["haproxy"][1] if " RR " in line]
    ours = [line for line in outcomes["fastlb"][1] if " RR " in line]
    assert len(ours) == len(theirs) == 1, (outcomes["fastlb"][1], outcomes["haproxy"][1])
    # haproxy still counts the session in the backend (beconn 1) when it logs the line: its
    # upgrade fails before the stream holds the backend; fastlb has let it go (0)
    assert ours[0].replace(" 1/1/0/0/0 ", " 1/1/1/0/0 ") == theirs[0]
