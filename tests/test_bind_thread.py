"""bind ... thread <set> (and the deprecated process 1/<set>): only the workers named accept
on that address, fastlb's workers playing HAProxy's threads (numbered from 1; the `thread`
fetch from 0).  Compared with haproxy 2.6 at nbthread 2: which thread answers each
address, and the verdicts of bad sets; then a reload that moves an address to the other
worker."""
from __future__ import annotations

import collections
import shutil
import signal
import socket
import subprocess

import pytest

from conftest import FASTLB, free_port, listening_sockets, serving, wait_until

CONFIG = """
global
    nbthread 2
defaults
    mode http
    timeout client 2s
    timeout server 2s
    timeout connect 1s
frontend f
    bind 127.0.0.1:{first} {one}
    bind 127.0.0.1:{second} thread 2
    bind 127.0.0.1:{both}
    bind 127.0.0.1:{old} process 1/2
    bind 127.0.0.1:{odd} thread odd
    http-request return status 200 content-type text/plain lf-string "%[thread]"
"""


def threads_answering(port: int, count: int = 30) -> collections.Counter:
    seen = collections.Counter()
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := client.recv(4096):
                data += chunk
        seen[data.partition(b"\r\n\r\n")[2].decode()] += 1
    return seen


def ports() -> dict:
    return {name: free_port() for name in ("first", "second", "both", "old", "odd")}


@pytest.mark.parametrize("program", ["haproxy", "fastlb"])
def test_each_address_is_served_by_the_workers_it_names(tmp_path, program):
    if program == "haproxy" and not shutil.which("haproxy"):
        pytest.skip("haproxy not installed")
    numbers = ports()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(CONFIG.format(one="thread 1", **numbers))
    with serving(program, cfg, numbers.values()):
        seen = {name: set(threads_answering(port)) for name, port in numbers.items()}
    assert seen["first"] == {"0"} and seen["odd"] == {"0"}
    assert seen["second"] == {"1"} and seen["old"] == {"1"}
    assert seen["both"] <= {"0", "1"}


def test_a_reload_moves_an_address_to_the_workers_now_named(fastlb):
    numbers = ports()
    lb = fastlb(CONFIG.format(one="thread 1", **numbers), workers=2)
    for port in numbers.values():
        wait_until(lambda: listening_sockets(port) >= 1, message="listening")
    assert set(threads_answering(numbers["first"])) == {"0"}
    lb.path.write_text(CONFIG.format(one="thread 2", **numbers))
    lb.proc.send_signal(signal.SIGUSR2)
    wait_until(lambda: lb.stderr().count("Loading success.") == 2, message="reload")
    # the old worker 1 leaves; then only worker 2 takes connections on that address, and
    # no connection waits on a socket nobody accepts on
    wait_until(lambda: set(threads_answering(numbers["first"], 10)) == {"1"},
               message="the address served by worker 2 alone")
    assert set(threads_answering(numbers["first"])) == {"1"}
    assert set(threads_answering(numbers["both"])) <= {"0", "1"}


@pytest.mark.parametrize("option, code, message", [
    ("thread 3", 1, "Proxy 'f': 'thread' directive contains threads that belong to no group "
                    "in 'bind 127.0.0.1:{first}' at ["),
    ("thread 1-3", 0, None),                       # cut to the threads there are
    ("thread 0", 1, "'0' : '0' is not a valid number/range. It supports numbers from 1 to 64."),
    ("thread", 1, "'' : '' is not a valid number/range. It supports numbers from 1 to 64."),
    ("thread 2/1", 1, "'2/1' thread-group number must be between 1 and 1 (was 2)"),
    ("thread 1/1 thread 2", 1, "'2' multiple thread-groups are not supported"),
    ("thread 1/1-2", 0, None),
])
def test_thread_sets_are_checked_as_haproxy(tmp_path, option, code, message):
    numbers = ports()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(CONFIG.format(one=option, **numbers))
    programs = [FASTLB] + ([["haproxy"]] if shutil.which("haproxy") else [])
    for program in programs:
        run = subprocess.run([*program, "-c", "-f", str(cfg)], capture_output=True, text=True,
                             timeout=30)
        assert run.returncode == code, (program, run.stderr)
        if message:
            assert message.format(**numbers) in run.stderr, (program, run.stderr)


def test_more_workers_make_a_higher_thread_valid(tmp_path):
    """-n sets the workers, so it decides which thread numbers exist."""
    numbers = ports()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(CONFIG.format(one="thread 3", **numbers))
    run = subprocess.run([*FASTLB, "-c", "-n", "3", "-f", str(cfg)], capture_output=True,
                         text=True, timeout=30)
    assert run.returncode == 0, run.stderr
