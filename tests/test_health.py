"""Active health checks over real sockets: one checker for all workers, DOWN after
``fall`` failures, UP again after ``rise`` successes, HTTP checks with expectations,
HAProxy's log lines."""
from __future__ import annotations

import collections
import re
import shutil
import subprocess
import time

import pytest

from conftest import (FASTLB, HTTP_DEFAULTS, HttpBackend, HttpClient, SyslogReceiver, free_port,
                      http_response, listening_sockets, wait_until)


def next_alert(syslog, timeout=3.0) -> str:
    """The next line above info (traffic "Connect from" lines are info), without its LF."""
    deadline = time.monotonic() + timeout
    while True:
        line = syslog.recv(timeout=max(0.01, deadline - time.monotonic())).rstrip("\n")
        if not line.startswith("<134>"):
            return line


def counting_backend(backends):
    """A TCP server that only counts connections (a TCP check connects and closes)."""
    return backends(lambda conn, backend: conn.recv(1), "counted")


@pytest.mark.parametrize("workers", [1, 4])
def test_checks_hit_each_server_once_per_interval_whatever_the_worker_count(
        fastlb, backends, workers):
    a, b = counting_backend(backends), counting_backend(backends)
    port = free_port()
    lb = fastlb(f"""
    defaults
        timeout connect 1s
        timeout client 5s
        timeout server 5s
    listen app
        bind 127.0.0.1:{port}
        server a 127.0.0.1:{a.port} check inter 100ms
        server b 127.0.0.1:{b.port} check inter 100ms
""", workers=workers, ports=[port])
    assert len(lb.checker_pids()) == 1
    time.sleep(0.3)
    start_a, start_b = a.accepted, b.accepted
    time.sleep(2.0)
    for server, start in ((a, start_a), (b, start_b)):
        checks = server.accepted - start
        assert 17 <= checks <= 22, (workers, checks)      # 20 expected in 2 s


def test_killed_server_goes_down_after_fall_checks_and_comes_back_after_rise(
        fastlb, http_backends, syslog):
    a, b = http_backends("a"), http_backends("b")
    port = free_port()
    lb = fastlb(HTTP_DEFAULTS + f"""
        log 127.0.0.1:{syslog.port} local0
    frontend fe
        bind 127.0.0.1:{port}
        default_backend be
    backend be
        default-server check inter 200ms fall 3 rise 2
        server a 127.0.0.1:{a.port}
        server b 127.0.0.1:{b.port}
""", workers=2, ports=[port])
    time.sleep(0.6)                               # both checked: health at its top
    b_port = b.port
    b.close()
    killed = time.monotonic()
    line = next_alert(syslog)
    down_after = time.monotonic() - killed
    assert re.search(r"\]: Server be/b is DOWN, reason: Layer4 connection problem, info: "
                     r"\"Connection refused\", check duration: \d+ms\. 1 active and 0 backup "
                     r"servers left\. 0 sessions active, 0 requeued, 0 remaining in queue\.$",
                     line), line
    assert line.startswith("<129>")               # local0.alert
    assert 0.4 <= down_after <= 0.85              # 3 failed checks 200 ms apart
    client = HttpClient(port)
    names = collections.Counter(client.get("/")[2].split()[0].decode() for _ in range(50))
    assert names == {"a": 50}                     # nothing is sent to b any more
    # b comes back on the same port: UP after 2 good checks
    b2 = HttpBackend("b", port=b_port)
    back = time.monotonic()
    line = next_alert(syslog)
    assert re.search(r"\]: Server be/b is UP, reason: Layer4 check passed, check duration: "
                     r"\d+ms\. 2 active and 0 backup servers online\. 0 sessions requeued, "
                     r"0 total in queue\.$", line), line
    assert line.startswith("<133>")               # local0.notice
    assert time.monotonic() - back <= 0.65
    names = collections.Counter(client.get("/")[2].split()[0].decode() for _ in range(10))
    assert names == {"a": 5, "b": 5}
    b2.close()
    lb.stop()


def test_last_server_down_logs_emerg_and_answers_503(fastlb, syslog):
    port = free_port()
    fastlb(HTTP_DEFAULTS + f"""
        log 127.0.0.1:{syslog.port} local0
    frontend fe
        bind 127.0.0.1:{port}
        default_backend be
    backend be
        server only 127.0.0.1:{free_port()} check inter 100ms
""", workers=2, ports=[port])
    down = next_alert(syslog)
    assert "Server be/only is DOWN" in down and "0 active and 0 backup servers left" in down
    emerg = next_alert(syslog)
    assert emerg.startswith("<128>") and emerg.endswith("]: backend be has no server available!")
    assert HttpClient(port).get("/")[0] == 503


def test_http_check_expect_marks_a_wrong_answer_down(fastlb, http_backends, syslog):
    healthy = http_backends("healthy", lambda req: http_response(body=b"healthy ok")
                            if req["path"] != "/health" else http_response(body=b"fine"))
    sick = http_backends("sick", lambda req: http_response(500, b"oops", reason="Internal Error")
                         if req["path"] == "/health" else http_response(body=b"sick ok"))
    port = free_port()
    fastlb(HTTP_DEFAULTS + f"""
        log 127.0.0.1:{syslog.port} local0
    frontend fe
        bind 127.0.0.1:{port}
        default_backend be
    backend be
        option httpchk GET /health
        http-check expect status 200
        option log-health-checks
        default-server check inter 100ms rise 1 fall 1
        server healthy 127.0.0.1:{healthy.port}
        server sick 127.0.0.1:{sick.port}
""", workers=2, ports=[port])
    lines = [next_alert(syslog) for _ in range(2)]
    failed = next(line for line in lines if "Health check for server be/sick" in line)
    assert re.search(r"Health check for server be/sick failed, reason: Layer7 wrong status, "
                     r"code: 500, info: \"Internal Error\", check duration: \d+ms, "
                     r"status: 0/1 DOWN\.$", failed), failed
    assert any(line.endswith("]: Server be/sick is DOWN. 1 active and 0 backup servers left. "
                             "0 sessions active, 0 requeued, 0 remaining in queue.")
               for line in lines + [next_alert(syslog)])
    checks = [r for r in healthy.requests if r["path"] == "/health"]
    assert checks and checks[0]["method"] == "GET"
    client = HttpClient(port)
    assert {client.get("/")[2] for _ in range(6)} == {b"healthy ok"}


CHECK_CONFIG = """
global
    log 127.0.0.1:{log} local0
defaults
    mode http
    log global
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    option log-health-checks
    option httpchk GET /health
    default-server check inter 400ms rise 2 fall 2
    server good 127.0.0.1:{good}
    server bad 127.0.0.1:{bad}
    server gone 127.0.0.1:{gone}
"""


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")
def test_check_log_lines_match_haproxy(tmp_path, http_backends):
    good = http_backends("good")
    bad = http_backends("bad", lambda req: http_response(503, b"no", reason="Service Unavailable"))
    logs = {}
    for name in ("haproxy", "fastlb"):
        syslog = SyslogReceiver()
        port = free_port()
        cfg = tmp_path / f"{name}.cfg"
        cfg.write_text(CHECK_CONFIG.format(log=syslog.port, port=port, good=good.port,
                                           bad=bad.port, gone=free_port()))
        cmd = ["haproxy", "-f", str(cfg)] if name == "haproxy" else \
            FASTLB + ["-n", "2", "-f", str(cfg)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: listening_sockets(port) > 0, message=f"{name} listening")
            time.sleep(1.2)           # every server checked (first checks spread over inter)
        finally:
            proc.terminate()
            proc.wait(5)
        lines = syslog.drain(0.3)
        syslog.sock.close()
        logs[name] = sorted(re.sub(r"^<(\d+)>.*?\]: ", r"<\1> ", re.sub(r"\d+ms", "Nms", line))
                            for line in lines)
    assert logs["fastlb"] == logs["haproxy"], "\n".join(logs["fastlb"] + ["---"] + logs["haproxy"])


def test_observe_layer7_marks_a_failing_server_down_at_error_limit(fastlb, http_backends, syslog):
    good = http_backends("good")
    bad = http_backends("bad", lambda req: http_response(500, b"bad", reason="Oops"))
    port = free_port()
    fastlb(HTTP_DEFAULTS + f"""
        log 127.0.0.1:{syslog.port} local0
    frontend fe
        bind 127.0.0.1:{port}
        default_backend be
    backend be
        default-server check inter 30s observe layer7 error-limit 3 on-error mark-down
        server good 127.0.0.1:{good.port}
        server bad 127.0.0.1:{bad.port}
""", workers=2, ports=[port])
    client = HttpClient(port)
    statuses = [client.get("/")[0] for _ in range(6)]
    assert statuses == [200, 500] * 3            # round robin: 3 errors from bad
    line = next_alert(syslog)
    assert line.endswith("]: Server be/bad is DOWN, reason: Health analyze, info: \"Detected 3 "
                         "consecutive errors\". 1 active and 0 backup servers left. 0 sessions "
                         "active, 0 requeued, 0 remaining in queue."), line
    assert [client.get("/")[0] for _ in range(10)] == [200] * 10
    assert len(bad.requests) == 3
