"""http-request / tcp-request content set-priority-class and set-priority-offset: the
order in which queued requests reach a full server, and the prio_class / prio_offset
fetches, compared with haproxy 2.6 (fastlb with two workers: the order holds across
them)."""
from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import FASTLB, HoldingServer, free_port, recv_until_eof, serving, wait_until

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")

HTTP_CONFIG = """
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    timeout queue 10s
frontend f
    bind 127.0.0.1:{port}
    http-request set-priority-class req.hdr(x-class) if {{ req.hdr(x-class) -m found }}
    http-request set-priority-offset req.hdr(x-offset),mul(1) if {{ req.hdr(x-offset) -m found }}
    http-response set-header x-prio %[prio_class]/%[prio_offset]
    default_backend b
backend b
    server s 127.0.0.1:{back} maxconn 1
"""

TCP_CONFIG = """
defaults
    mode tcp
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    timeout queue 10s
listen l
    bind 127.0.0.1:{port}
    tcp-request inspect-delay 2s
    tcp-request content set-priority-class req.payload(6,1),lower if {{ req.len ge 7 }}
    tcp-request content accept if {{ req.len ge 7 }}
    server s 127.0.0.1:{back} maxconn 1
"""

# (path, headers): arrival order; the queue should serve -3, then class 0 by date plus
# offset (/c's -2000 ms before /d, /f's +900000 clamped to 524287 last of them), then 1,
# then 5, then 9999 clamped to 2047
REQUESTS = [("/a", {"x-class": "5"}), ("/b", {"x-class": "-3"}), ("/d", {}),
            ("/c", {"x-offset": "-2000"}), ("/e", {"x-class": "1"}),
            ("/f", {"x-offset": "900000"}), ("/g", {"x-class": "9999"})]


def http_get(port, path, headers, out):
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n"
                     .encode())
        data = recv_until_eof(sock)
    prio = [line for line in data.split(b"\r\n") if line.lower().startswith(b"x-prio:")]
    out[path] = (data.split(b"\r\n")[0], prio)


def tcp_send(port, payload, out):
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(payload)
        data = recv_until_eof(sock)
    out[payload] = data


def served_order(program, tmp_path, config, send, items):
    arrivals = []
    server = HoldingServer("s", arrivals)
    port = free_port()
    cfg = tmp_path / f"{program}.cfg"
    cfg.write_text(config.format(port=port, back=server.port))
    answers = {}
    threads = []
    try:
        with serving(program, cfg, [port]):
            first = threading.Thread(target=send, args=(port, *items[0], answers))
            first.start()
            wait_until(lambda: len(arrivals) == 1, message="first request held")
            for item in items[1:]:
                thread = threading.Thread(target=send, args=(port, *item, answers))
                thread.start()
                threads.append(thread)
                time.sleep(0.1)               # each queued in turn (dates 100 ms apart)
            for count in range(2, len(items) + 1):
                server.release_one()
                wait_until(lambda: len(arrivals) == count, message=f"request {count}")
            server.release()
            for thread in [first] + threads:
                thread.join(15)
    finally:
        server.close()
    return server.request_lines, answers


def test_http_priority_orders_the_queue_as_haproxy(tmp_path):
    items = [("/first", {})] + REQUESTS
    theirs = served_order("haproxy", tmp_path, HTTP_CONFIG, http_get, items)
    ours = served_order("fastlb", tmp_path, HTTP_CONFIG, http_get, items)
    assert [line.split()[1] for line in theirs[0]] == \
        [b"/first", b"/b", b"/c", b"/d", b"/f", b"/e", b"/a", b"/g"]
    assert ours == theirs


def test_tcp_content_priority_orders_the_queue_as_haproxy(tmp_path):
    """The class read from the client's first bytes (a digit at offset 6)."""
    items = [(b"GET /first HTTP/1.0\r\n\r\n",)] + [
        (f"GET /{name}{digit} HTTP/1.0\r\n\r\n".encode(),) for name, digit in
        [("p", 7), ("q", 2), ("r", 5), ("s", 2), ("t", 0)]]
    theirs = served_order("haproxy", tmp_path, TCP_CONFIG, tcp_send, items)
    ours = served_order("fastlb", tmp_path, TCP_CONFIG, tcp_send, items)
    assert [line.split()[1] for line in theirs[0]] == \
        [b"/first", b"/t0", b"/q2", b"/s2", b"/r5", b"/p7"]
    assert ours == theirs


def test_priority_rules_checked_as_haproxy(tmp_path):
    for line in ("http-request set-priority-class", "http-request set-priority-class 1 2",
                 "http-request set-priority-offset nosuchfetch",
                 "http-request set-priority-class int(3) if TRUE"):
        cfg = tmp_path / "p.cfg"
        cfg.write_text("defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n"
                       f"    timeout server 1s\nfrontend f\n    bind 127.0.0.1:{free_port()}\n"
                       f"    {line}\n")
        ours = subprocess.run(FASTLB + ["-c", "-f", str(cfg)], capture_output=True, text=True,
                              timeout=30)
        theirs = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True,
                                text=True)
        assert ours.returncode == theirs.returncode, (line, ours.stderr, theirs.stderr)
        if ours.returncode:
            assert "p.cfg:8" in ours.stderr
