"""Global process and poller settings, seen from outside: zero-warning, strict-limits and
fd-hard-limit (compared with haproxy 2.6 where it runs too), set-dumpable, busy-polling,
noreuseport, tune.maxaccept and tune.maxpollevents."""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import textwrap
import threading
import time

import psutil
import pytest

from conftest import FASTLB, HTTP_DEFAULTS, free_port, listening_sockets, wait_until
from test_tcp_rules import HAPROXY


def web_config(port: int, server_port: int, global_: str) -> str:
    return f"global\n{global_}\n" + textwrap.dedent(HTTP_DEFAULTS + f"""
    listen web
        bind 127.0.0.1:{port}
        server s1 127.0.0.1:{server_port}
    """)


def get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def check(cmd, text: str, tmp_path, name: str):
    path = tmp_path / f"{name}.cfg"
    path.write_text(text)
    return subprocess.run([*cmd, "-c", "-f", str(path)], capture_output=True, text=True,
                          timeout=30, cwd=tmp_path)


def messages(stderr: str) -> list[str]:
    """The WARNING/ALERT lines, without the pid and the file's name."""
    out = []
    for line in stderr.splitlines():
        found = re.match(r"\[(WARNING|ALERT)\] +\(\d+\) : (.*)", line)
        if found:
            text = re.sub(r"parsing \[[^:]*:", "parsing [:", found[2])
            out.append(f"{found[1]} {text}")
    return out


@pytest.mark.skipif(HAPROXY is None, reason="haproxy not installed")
def test_zero_warning_turns_warnings_into_a_refusal_as_haproxy(tmp_path, http_backends):
    text = web_config(free_port(), 9, "    zero-warning").replace(
        "listen web", "backend other\n    maxconn 10\nlisten web")
    seen = {}
    for name, cmd in (("haproxy", [HAPROXY]), ("fastlb", FASTLB)):
        run = check(cmd, text, tmp_path, name)
        seen[name] = (run.returncode, messages(run.stderr)[-1])
    assert seen["fastlb"] == seen["haproxy"] == (
        1, "ALERT config : Some warnings were found and 'zero-warning' is set. Aborting.")
    # no warning, no refusal; and a start refuses as -c does
    assert check(FASTLB, text.replace("maxconn 10", "fullconn 10"), tmp_path, "clean").returncode == 0
    path = tmp_path / "start.cfg"
    path.write_text(text)
    run = subprocess.run([*FASTLB, "-d", "-f", str(path)], capture_output=True, text=True,
                         timeout=20, cwd=tmp_path)
    assert run.returncode == 1 and "'zero-warning' is set. Aborting." in run.stderr


@pytest.mark.skipif(shutil.which("setpriv") is None or shutil.which("prlimit") is None
                    or HAPROXY is None, reason="needs util-linux's setpriv and prlimit, haproxy")
def test_no_strict_limits_warns_and_runs_with_what_it_can_have(tmp_path, http_backends):
    """ulimit-n above a hard limit that cannot be raised: the default (strict-limits) stops
    the start; 'no strict-limits' warns as haproxy does and serves with the hard limit."""
    backend = http_backends("A")
    port = free_port()
    text = web_config(port, backend.port, "    ulimit-n 5000\n    no strict-limits")
    path = tmp_path / "haproxy.cfg"
    path.write_text(text)
    lines = {}
    for name, cmd in (("haproxy", [HAPROXY, "-db"]), ("fastlb", [*FASTLB, "-d", "-n", "1"])):
        proc = subprocess.Popen(["prlimit", "--nofile=1024:1024", "setpriv", "--bounding-set",
                                 "-sys_resource", "--", *cmd, "-f", str(path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                cwd=tmp_path)
        try:
            wait_until(lambda: listening_sockets(port) > 0, message=f"{name} serving")
            assert get(port).startswith(b"HTTP/1.1 200")
            if name == "fastlb":
                worker = psutil.Process(proc.pid).children()[0]
                assert worker.rlimit(psutil.RLIMIT_NOFILE) == (1024, 1024)
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=5)
        lines[name] = [re.sub(r"\[[^\]]*\.main\(\)\]", "[main()]", m) for m in messages(err)
                       if "FD limit" in m]
    assert lines["fastlb"] == lines["haproxy"] == [
        "WARNING [main()] Cannot raise FD limit to 5000, limit is 1024."]


def test_fd_hard_limit_caps_the_descriptors_fastlb_takes(fastlb, http_backends):
    """No ulimit-n, no maxconn: fastlb raises the soft limit to the hard one, never above
    fd-hard-limit; the process maxconn follows (half the descriptors, less a margin)."""
    backend = http_backends("A")
    port = free_port()
    lb = fastlb(web_config(port, backend.port, "    fd-hard-limit 2000"), ports=[port])
    (worker,) = lb.worker_pids()
    soft, hard = psutil.Process(worker).rlimit(psutil.RLIMIT_NOFILE)
    assert soft == min(2000, hard), (soft, hard)
    assert get(port).startswith(b"HTTP/1.1 200")


@pytest.mark.skipif(os.geteuid() != 0, reason="changing user needs root")
@pytest.mark.parametrize("dumpable", [False, True])
def test_set_dumpable_keeps_workers_dumpable_after_the_user_change(fastlb, http_backends,
                                                                   tmp_path, dumpable):
    """Linux makes a process that changed its credentials undumpable (no core, its /proc
    entries owned by root); set-dumpable turns that back, and lifts RLIMIT_CORE."""
    backend = http_backends("A")
    port = free_port()
    os.chmod(tmp_path, 0o755)
    lb = fastlb(web_config(port, backend.port,
                           "    user nobody" + ("\n    set-dumpable" if dumpable else "")),
                ports=[port])
    (worker,) = lb.worker_pids()
    assert psutil.Process(worker).uids().real == 65534
    owner = os.stat(f"/proc/{worker}/status").st_uid
    assert owner == (65534 if dumpable else 0)
    if dumpable:
        with open(f"/proc/{worker}/limits") as limits:
            core = next(line for line in limits if line.startswith("Max core file size"))
        assert core.split()[4] == core.split()[5], core     # soft == hard
    assert get(port).startswith(b"HTTP/1.1 200")


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


@pytest.mark.parametrize("busy", [False, True])
def test_busy_polling_keeps_an_idle_worker_on_the_cpu(fastlb, http_backends, busy):
    backend = http_backends("A")
    port = free_port()
    lb = fastlb(web_config(port, backend.port, "    busy-polling" if busy else ""), ports=[port])
    (worker,) = lb.worker_pids()
    assert get(port).startswith(b"HTTP/1.1 200")
    before = cpu_seconds(worker)
    time.sleep(1.0)
    spent = cpu_seconds(worker) - before
    if busy:
        assert spent > 0.4, spent           # it polls without sleeping
    else:
        assert spent < 0.2, spent           # it sleeps in epoll_wait
    assert get(port).startswith(b"HTTP/1.1 200")


@pytest.mark.skipif(os.geteuid() != 0, reason="reading another process's socket needs root")
def test_noreuseport_gives_the_workers_one_shared_listening_socket(fastlb, http_backends):
    from test_bind_options import listening_socket_of
    backend = http_backends("A")
    port, other = free_port(), free_port()
    lb = fastlb(web_config(port, backend.port, "    noreuseport"), workers=2)
    wait_until(lambda: listening_sockets(port) == 1, message="one listening socket")
    sock = listening_socket_of(lb.proc.pid, port)
    try:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
    finally:
        sock.close()
    assert all(get(port).startswith(b"HTTP/1.1 200") for _ in range(20))
    # both workers accept on it
    served = {c.pid for w in lb.worker_pids() for c in [psutil.Process(w)]
              if any(conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN
                     for conn in c.net_connections("tcp"))}
    assert len(served) == 2
    # without it: a socket per worker
    lb2 = fastlb(web_config(other, backend.port, ""), workers=2, ports=[other])
    assert listening_sockets(other) == 2 and lb2


def test_smallest_maxaccept_and_maxpollevents_still_serve_every_client(fastlb, http_backends,
                                                                       tmp_path):
    """tune.maxaccept 1 and tune.maxpollevents 1: the loop takes one connection and one
    event at a time, and 40 clients at once are all answered."""
    backend = http_backends("A")
    port = free_port()
    fastlb(web_config(port, backend.port, "    tune.maxaccept 1\n    tune.maxpollevents 1"),
           ports=[port])
    answers = []

    def client():
        answers.append(get(port).startswith(b"HTTP/1.1 200"))

    threads = [threading.Thread(target=client) for _ in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert answers.count(True) == 40
    bad = check(FASTLB, web_config(port, backend.port, "    tune.maxpollevents 5000"),
                tmp_path, "bad")
    assert bad.returncode == 1 and "at most 1024 events" in bad.stderr


@pytest.mark.skipif(HAPROXY is None, reason="haproxy not installed")
@pytest.mark.parametrize("logurilen", [None, 4000, 40])
def test_logged_request_line_is_cut_at_logurilen_as_haproxy(tmp_path, syslog, logurilen):
    """haproxy logs the first tune.http.logurilen bytes of the request line (1023 by
    default), in %r and in what is read from it (%HU, %HQ)."""
    port = free_port()
    text = f"global\n    log 127.0.0.1:{syslog.port} len 8000 local0\n" + \
        (f"    tune.http.logurilen {logurilen}\n" if logurilen else "") + textwrap.dedent(
            HTTP_DEFAULTS + f"""
    listen web
        bind 127.0.0.1:{port}
        log global
        log-format "%r|%HU|%HQ"
        http-request return status 200
    """)
    path = tmp_path / "haproxy.cfg"
    path.write_text(text)
    lines = {}
    for name, cmd in (("haproxy", [HAPROXY, "-db"]), ("fastlb", [*FASTLB, "-d", "-n", "1"])):
        proc = subprocess.Popen([*cmd, "-f", str(path)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd=tmp_path)
        try:
            wait_until(lambda: listening_sockets(port) > 0, message=f"{name} serving")
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"GET /" + b"a" * 3000 + b"?q=1 HTTP/1.1\r\nHost: x\r\n\r\n")
                assert sock.recv(100).startswith(b"HTTP/1.1 200")
            lines[name] = syslog.recv().rstrip("\n").split(": ", 1)[1]
        finally:
            proc.terminate()
            proc.wait(5)
    assert lines["fastlb"] == lines["haproxy"]
    request = lines["fastlb"].split("|")[0]
    if logurilen == 4000:
        assert request.endswith("?q=1 HTTP/1.1")
    else:
        assert len(request) == (logurilen or 1023)
