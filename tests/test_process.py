"""The master and its workers: titles, respawn, signals, daemon mode, inherited fd@ listeners."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time

import psutil

from conftest import FASTLB, listening_sockets
from conftest import free_port, recv_exact, recv_until_eof, wait_until

TCP_CONFIG = """
defaults
    mode tcp
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server s1 127.0.0.1:{backend}
"""


def titles(pids):
    return sorted(" ".join(psutil.Process(pid).cmdline()).strip() for pid in pids)


def test_master_and_four_workers_with_titles(fastlb, backends):
    port = free_port()
    lb = fastlb(TCP_CONFIG.format(port=port, backend=backends().port), workers=4, ports=[port])
    master_title = " ".join(psutil.Process(lb.pid).cmdline()).strip()
    assert master_title.startswith("fastlb: master -d -f ")
    assert titles(lb.worker_pids()) == [f"fastlb: worker {i}/4" for i in range(1, 5)]


def test_killed_worker_is_respawned_within_one_second(fastlb, backends):
    backend = backends()
    port = free_port()
    lb = fastlb(TCP_CONFIG.format(port=port, backend=backend.port), workers=4, ports=[port])
    before = set(lb.worker_pids())
    victim = lb.worker_pids()[1]
    killed_at = time.time()
    os.kill(victim, signal.SIGKILL)
    def replaced():
        pids = set(lb.worker_pids())          # one snapshot: the master reaps between calls
        return len(pids) == 4 and victim not in pids and pids - before

    (new,) = wait_until(replaced, timeout=3.0, message="a new worker")
    # measured by the kernel's start time of the new process, not by this test's polling
    assert psutil.Process(new).create_time() - killed_at < 1.0
    assert f"Current worker ({victim}) exited with code 137 (Killed); respawning worker 2." in lb.stderr()
    assert titles(lb.worker_pids()) == [f"fastlb: worker {i}/4" for i in range(1, 5)]
    wait_until(lambda: listening_sockets(port) == 4, message="4 listeners")
    # and traffic still flows
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"ping")
        assert recv_exact(sock, 4) == b"ping"


def test_sigint_and_sigterm_stop_everything_within_two_seconds(fastlb, backends):
    for sig in (signal.SIGINT, signal.SIGTERM):
        backend = backends()
        port = free_port()
        lb = fastlb(TCP_CONFIG.format(port=port, backend=backend.port), workers=4, ports=[port])
        workers = lb.worker_pids()
        # an established session must not delay the stop
        held = socket.create_connection(("127.0.0.1", port))
        held.sendall(b"x")
        assert recv_exact(held, 1) == b"x"
        started = time.monotonic()
        assert lb.stop(sig, timeout=2.0) == 0
        assert time.monotonic() - started < 2.0
        assert not [pid for pid in workers if psutil.pid_exists(pid)
                    and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
        held.close()


def test_sigusr1_soft_stop_finishes_sessions_in_flight(fastlb, backends):
    backend = backends()
    port = free_port()
    lb = fastlb(TCP_CONFIG.format(port=port, backend=backend.port), workers=2, ports=[port])
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"before")
    assert recv_exact(sock, 6) == b"before"
    os.kill(lb.pid, signal.SIGUSR1)
    wait_until(lambda: listening_sockets(port) == 0,
               message="listeners closed")
    # no new connection is accepted
    probe = socket.socket()
    assert probe.connect_ex(("127.0.0.1", port)) != 0
    probe.close()
    # the session in flight still works, then everything exits once it ends
    sock.sendall(b"after")
    assert recv_exact(sock, 5) == b"after"
    assert lb.proc.poll() is None
    sock.shutdown(socket.SHUT_WR)
    assert recv_until_eof(sock) == b""
    sock.close()
    assert lb.proc.wait(timeout=5) == 0


def test_workers_die_with_the_master(fastlb, backends):
    port = free_port()
    lb = fastlb(TCP_CONFIG.format(port=port, backend=backends().port), workers=2, ports=[port])
    workers = lb.worker_pids()
    lb.proc.kill()
    lb.proc.wait()
    wait_until(lambda: not any(psutil.pid_exists(p) for p in workers), timeout=3,
               message="orphaned workers to exit")


def test_inherited_fd_listener(fastlb, backends):
    backend = backends()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(100)
    port = listener.getsockname()[1]
    # a client may connect before fastlb is ready: it waits in the backlog (VTest's contract)
    early = socket.create_connection(("127.0.0.1", port))
    env = dict(os.environ, fe_1=str(listener.fileno()))
    cfg = TCP_CONFIG.format(port=port, backend=backend.port).replace(
        f"bind 127.0.0.1:{port}", 'bind "fd@${fe_1}"')
    lb = fastlb(cfg, workers=2, env=env, pass_fds=[listener.fileno()])
    listener.close()   # fastlb holds its own copy
    early.settimeout(5)
    early.sendall(b"early")
    assert recv_exact(early, 5) == b"early"
    early.close()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"late")
        assert recv_exact(sock, 4) == b"late"
    assert lb.stop() == 0


def test_daemon_mode_and_pidfile(tmp_path, backends):
    port = free_port()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(TCP_CONFIG.format(port=port, backend=backends().port))
    pidfile = tmp_path / "fastlb.pid"
    result = subprocess.run(FASTLB + ["-D", "-f", str(cfg), "-n", "2", "-p", str(pidfile)],
                            timeout=10)
    assert result.returncode == 0
    pid = int(wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(),
                         message="pid file"))
    try:
        master = psutil.Process(pid)
        assert master.cmdline()[0].startswith("fastlb: master")
        wait_until(lambda: len(master.children()) == 2, message="workers of the daemon")
        assert master.ppid() != os.getpid()           # detached
        wait_until(lambda: listening_sockets(port) == 2, message="listeners")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"daemon")
            assert recv_exact(sock, 6) == b"daemon"
    finally:
        os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not psutil.pid_exists(pid), message="daemon exit")


def test_busy_port_is_an_error_at_start_up(tmp_path, backends):
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(TCP_CONFIG.format(port=port, backend=backends().port))
    result = subprocess.run(FASTLB + ["-d", "-f", "haproxy.cfg"], capture_output=True, text=True,
                            timeout=10, cwd=tmp_path)
    assert result.returncode == 1
    assert (f"Binding [haproxy.cfg:8] for frontend fe: cannot bind socket (Address already in use) "
            f"for [127.0.0.1:{port}]") in result.stderr
    busy.close()


def test_worker_count_defaults_to_nbthread(tmp_path, fastlb, backends):
    port = free_port()
    cfg = "global\n    nbthread 3\n" + TCP_CONFIG.format(port=port, backend=backends().port)
    path = tmp_path / "nb.cfg"
    path.write_text(cfg)
    proc = subprocess.Popen(FASTLB + ["-f", str(path)], stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: len(psutil.Process(proc.pid).children()) == 3, message="3 workers")
        time.sleep(0.2)
        assert len(psutil.Process(proc.pid).children()) == 3
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(5) == 0


def test_ctrl_c_stops_the_group_without_respawning(tmp_path, backends):
    """Ctrl-C in a terminal sends SIGINT to the whole foreground group: the workers stop
    with HAProxy's status 130 and the master stops with them, without forking new ones
    on its way out."""
    port = free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(TCP_CONFIG.format(port=port, backend=backends().port))
    proc = subprocess.Popen(FASTLB + ["-f", str(config), "-n", "2"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    wait_until(lambda: listening_sockets(port) == 2, message="2 listeners")
    workers = psutil.Process(proc.pid).children()
    wait_until(lambda: all(" ".join(w.cmdline()).startswith("fastlb: worker") for w in workers),
               message="the workers' titles")
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    err = err.decode()
    assert proc.returncode == 0
    assert "respawning" not in err
    assert err.count("New worker") == 2
    # a worker's exit seen before the master's own SIGINT is named as HAProxy names it
    for worker in workers:
        if f"Current worker ({worker.pid})" in err:
            assert f"Current worker ({worker.pid}) exited with code 130 (Interrupt)" in err


def test_worker_stopped_alone_by_sigterm_is_respawned(fastlb, backends):
    """A worker stopped by its own SIGTERM (not the master's) exits 143 and is replaced
    once the master has seen that no stop of its own follows."""
    port = free_port()
    lb = fastlb(TCP_CONFIG.format(port=port, backend=backends().port), workers=2, ports=[port])
    victim = lb.worker_pids()[0]
    os.kill(victim, signal.SIGTERM)
    wait_until(lambda: len(set(lb.worker_pids()) - {victim}) == 2, timeout=5.0,
               message="a new worker")
    assert f"Current worker ({victim}) exited with code 143 (Terminated)" in lb.stderr()
    wait_until(lambda: listening_sockets(port) == 2, message="2 listeners")
