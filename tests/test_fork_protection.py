"""Workers start no process and gain no privilege, as HAProxy's: RLIMIT_NPROC 0 (binding
on every user but root) unless ``insecure-fork-wanted``, no_new_privs unless
``insecure-setuid-wanted``; the master keeps its limits (it forks the workers). Read
from /proc for fastlb's workers and for haproxy -W's, on the same configs."""
from __future__ import annotations

import shutil
import socket
import subprocess

import psutil
import pytest

from conftest import FASTLB, free_port, listening_sockets, wait_until

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")

CONFIG = """
global
{globals}
defaults
    mode tcp
    timeout connect 1s
    timeout client 1s
    timeout server 1s
listen l
    bind 127.0.0.1:{port}
    server s 127.0.0.1:1
"""


def protections(pid: int) -> tuple:
    """(max processes soft, hard, no_new_privs) of a process."""
    with open(f"/proc/{pid}/limits") as handle:
        line = next(l for l in handle if l.startswith("Max processes"))
    soft, hard = line.split()[2:4]
    with open(f"/proc/{pid}/status") as handle:
        nnp = next(l for l in handle if l.startswith("NoNewPrivs")).split()[1]
    return soft == "0", hard == "0", nnp == "1"


def observed(program, tmp_path, globals_):
    port = free_port()
    cfg = tmp_path / f"{program}.cfg"
    cfg.write_text(CONFIG.format(globals=globals_ or "    maxconn 100", port=port))
    cmd = ["haproxy", "-W", "-db", "-f", str(cfg)] if program == "haproxy" else \
        FASTLB + ["-n", "1", "-f", str(cfg)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: listening_sockets(port) > 0, message=f"{program} listening")
        master = psutil.Process(proc.pid)
        workers = wait_until(lambda: master.children(), message="a worker")
        # the protections are set as the worker starts serving: one session served (its
        # server refuses, so the proxy closes it) says it is there
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.settimeout(5)
            try:
                while sock.recv(100):
                    pass
            except OSError:
                pass
        return protections(master.pid), sorted({protections(w.pid) for w in workers})
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.mark.parametrize("globals_", [
    "",
    "    insecure-fork-wanted",
    "    insecure-setuid-wanted",
    "    insecure-fork-wanted\n    insecure-setuid-wanted\n    no insecure-fork-wanted",
])
def test_workers_protected_as_haproxy_workers(tmp_path, globals_):
    theirs = observed("haproxy", tmp_path, globals_)
    ours = observed("fastlb", tmp_path, globals_)
    assert ours == theirs
    if not globals_:
        assert ours == ((False, False, False), [(True, True, True)])


def test_insecure_flags_take_no_argument(tmp_path):
    cfg = tmp_path / "f.cfg"
    cfg.write_text(CONFIG.format(globals="    insecure-fork-wanted yes", port=free_port()))
    for cmd in (FASTLB, ["haproxy"]):
        run = subprocess.run(cmd + ["-c", "-f", str(cfg)], capture_output=True, text=True,
                             timeout=30)
        assert run.returncode != 0 and "f.cfg:3" in run.stderr, (cmd, run.stderr)
