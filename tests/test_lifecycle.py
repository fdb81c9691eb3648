"""Life cycle: hitless reload under load, failed reloads, state carried over, the master
CLI, -sf/-x hand-over between processes, daemon mode, privilege drop, chroot, fd limits,
cpu-map and "monitor fail"."""
from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import random
import socket
import subprocess
import time

import psutil
import pytest

from conftest import (FASTLB, HttpClient, free_port, listening_sockets, stats_cli, wait_until)

WRK = shutil.which("wrk")


def reload_config(port, servers, sock, extra_global="", keep_idle=True):
    """keep_idle: option idle-close-on-response, so that an old worker answers a kept-alive
    connection's next request (with a close) rather than closing it idle at the reload."""
    lines = "\n".join(f"    server {name} 127.0.0.1:{backend.port}" for name, backend in servers)
    return f"""
global
    stats socket {sock} level admin expose-fd listeners
    hard-stop-after 10s
{extra_global}
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    {"option idle-close-on-response" if keep_idle else ""}
    default_backend be
backend be
{lines}
"""


def run_wrk(port, seconds, connections, close=False):
    """wrk in the background; returns the Popen (its stdout has the summary)."""
    cmd = [WRK, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "4s",
           f"http://127.0.0.1:{port}/"]
    if close:
        cmd[1:1] = ["-H", "Connection: close"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wrk_failures(output: str) -> dict:
    """Socket errors and non-2xx/3xx answers from wrk's summary; requests done."""
    done = re.search(r"(\d+) requests in", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       output)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    out = {"requests": int(done.group(1)) if done else 0,
           "non_2xx": int(non2xx.group(1)) if non2xx else 0}
    for i, name in enumerate(("connect", "read", "write", "timeout")):
        out[name] = int(errors.group(i + 1)) if errors else 0
    return out


@pytest.mark.skipif(WRK is None, reason="wrk is not installed")
def test_twenty_reloads_under_load_lose_no_request(fastlb, http_backends, tmp_path):
    """Two wrk runs (keep-alive, and a new connection per request) while the test sends 20
    reloads alternating two configurations that change the backend's servers."""
    a, b = http_backends("A"), http_backends("B")
    port = free_port()
    sock = tmp_path / "stats.sock"
    configs = [reload_config(port, [("a", a)], sock), reload_config(port, [("b", b)], sock)]
    lb = fastlb(configs[0], workers=2, ports=[port], args=["-S", str(tmp_path / "master.sock")])
    first_workers = set(lb.worker_pids())
    keep_alive = run_wrk(port, 14, 16)
    closing = run_wrk(port, 14, 4, close=True)
    time.sleep(1.0)
    served = []                                 # per reload: (requests to A, requests to B)
    for i in range(1, 21):
        lb.path.write_text(configs[i % 2])
        lb.proc.send_signal(signal.SIGUSR2)
        # each reload is done when its "Loading success." is logged
        wait_until(lambda: lb.stderr().count("Loading success.") >= i + 1, timeout=10,
                   message=f"reload {i}")
        time.sleep(0.5)
        served.append((len(a.requests), len(b.requests)))
    results = [wrk_failures(p.communicate(timeout=30)[0]) for p in (keep_alive, closing)]
    print("wrk keep-alive, close:", results)            # shown with pytest -rP
    for result in results:
        assert result["requests"] > 500, results
        assert (result["connect"], result["read"], result["write"], result["timeout"],
                result["non_2xx"]) == (0, 0, 0, 0, 0), results
    # both configurations served: each server got traffic after being (re)configured
    growth_a = [later[0] - earlier[0] for earlier, later in zip(served, served[1:])]
    growth_b = [later[1] - earlier[1] for earlier, later in zip(served, served[1:])]
    assert sum(1 for g in growth_a if g > 0) >= 5 and sum(1 for g in growth_b if g > 0) >= 5
    # the old workers are gone once their last session ended; two current workers remain
    wait_until(lambda: len(lb.worker_pids()) == 2, timeout=15, message="old workers gone")
    assert not set(lb.worker_pids()) & first_workers
    proc = stats_cli(tmp_path / "master.sock", "show proc")
    assert "20 [failed: 0]" in proc and "# old workers" not in proc
    assert lb.stderr().count("Former worker") == 40


def test_invalid_config_on_reload_changes_nothing(fastlb, http_backends, tmp_path):
    a = http_backends("A")
    port = free_port()
    sock = tmp_path / "stats.sock"
    good = reload_config(port, [("a", a)], sock)
    lb = fastlb(good, workers=2, ports=[port], args=["-S", str(tmp_path / "master.sock")])
    workers = sorted(lb.worker_pids())
    lb.path.write_text(good.replace("\nbackend be\n", "\nbackend be\n    balance nosuchalgo\n"))
    lb.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "Loading failure!" in lb.stderr(), message="the failed reload")
    log = lb.stderr()
    assert re.search(r"\[ALERT\] +\(\d+\) : config : parsing \[.*haproxy.cfg:16\] : balance only "
                     r"supports 'roundrobin'", log), log
    assert "Fatal errors found in configuration." in log
    time.sleep(0.3)
    assert sorted(lb.worker_pids()) == workers            # nobody was started or stopped
    client = HttpClient(port)
    status, _, body = client.get("/")
    assert (status, body) == (200, b"A GET /")
    assert "2 [failed: 1]" not in stats_cli(tmp_path / "master.sock", "show proc")
    assert "1 [failed: 1]" in stats_cli(tmp_path / "master.sock", "show proc")
    # a bind that cannot be had also changes nothing
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    lb.path.write_text(good + f"frontend other\n    bind 127.0.0.1:{busy.getsockname()[1]}\n"
                              "    default_backend be\n")
    lb.proc.send_signal(signal.SIGUSR2)
    wait_until(lambda: lb.stderr().count("Loading failure!") == 2, message="second failure")
    assert "cannot bind socket (Address already in use)" in lb.stderr()
    assert sorted(lb.worker_pids()) == workers
    assert client.get("/")[2] == b"A GET /"
    busy.close()


def test_server_states_are_carried_over_by_name(fastlb, http_backends, tmp_path):
    a, b = http_backends("A"), http_backends("B")
    port = free_port()
    sock = tmp_path / "stats.sock"
    both = reload_config(port, [("a", a), ("b", b)], sock)
    lb = fastlb(both, workers=2, ports=[port])
    assert stats_cli(sock, "set server be/a state maint") == "\n"
    assert stats_cli(sock, "set server be/b weight 7") == "\n"
    lb.path.write_text(both + "    # reloaded\n")
    lb.proc.send_signal(signal.SIGUSR2)
    wait_until(lambda: lb.stderr().count("Loading success.") == 2, message="reload")
    state = stats_cli(sock, "show servers state be").splitlines()
    fields = {line.split()[3]: line.split() for line in state[2:] if line.strip()}
    assert fields["a"][6] == "1"                  # srv_admin_state: forced maintenance
    assert fields["b"][7] == "7"                  # srv_uweight carried
    before = len(a.requests)
    for _ in range(10):
        assert HttpClient(port).get("/")[2] == b"B GET /"
    assert len(a.requests) == before
    # a weight the new configuration changes is the configuration's
    lb.path.write_text(both.replace(f"server b 127.0.0.1:{b.port}",
                                    f"server b 127.0.0.1:{b.port} weight 3"))
    lb.proc.send_signal(signal.SIGUSR2)
    wait_until(lambda: lb.stderr().count("Loading success.") == 3, message="reload")
    assert stats_cli(sock, "get weight be/b") == "3 (initial 3)\n\n"


def test_master_cli_show_proc_reload_and_forward(fastlb, http_backends, tmp_path):
    a = http_backends("A")
    port = free_port()
    msock = tmp_path / "master.sock"
    lb = fastlb(reload_config(port, [("a", a)], tmp_path / "stats.sock"), workers=2,
                ports=[port], args=["-S", f"{msock},mode,600"])
    assert oct(os.stat(msock).st_mode & 0o777) == "0o600"
    proc = stats_cli(msock, "show proc")
    lines = proc.splitlines()
    assert lines[0].split() == ["#<PID>", "<type>", "<reloads>", "<uptime>", "<version>"]
    assert lines[1].split()[:5] == [str(lb.pid), "master", "0", "[failed:", "0]"]
    assert lines[2] == "# workers"
    assert sorted(int(line.split()[0]) for line in lines[3:5]) == sorted(lb.worker_pids())
    assert lines[5] == "# programs"
    # a session open on an old worker keeps it listed under "# old workers"
    client = HttpClient(port)
    assert client.get("/")[0] == 200
    old = set(lb.worker_pids())
    assert stats_cli(msock, "reload") == ""        # HAProxy 2.6 closes without a word
    wait_until(lambda: lb.stderr().count("Loading success.") == 2, message="reload")

    def old_rows():
        listing = stats_cli(msock, "show proc")
        assert "1 [failed: 0]" in listing and "# old workers" in listing
        return listing.split("# old workers\n")[1].split("# programs")[0].splitlines()
    # the old worker without a session leaves on its own, within moments of the reload
    rows = wait_until(lambda: (lambda r: r if len(r) == 1 else None)(old_rows()),
                      message="one old worker left")
    assert [int(r.split()[0]) in old and r.split()[2] == "1" for r in rows] == [True]
    # the old worker answers on that connection, says it closes, and leaves
    status, headers, body = client.get("/")
    assert (status, headers.get("connection")) == (200, "close")
    assert client.closed()
    wait_until(lambda: "# old workers" not in stats_cli(msock, "show proc"), timeout=10,
               message="the old worker to leave")
    info = stats_cli(msock, "@1 show info")
    assert "Pid: " in info and "CurrConns:" in info
    assert stats_cli(msock, "@!999999 show info").startswith("Can't find the target PID")
    assert stats_cli(msock, "show version").strip()


@pytest.mark.skipif(WRK is None, reason="wrk is not installed")
def test_sf_handover_with_x_loses_no_request(http_backends, tmp_path):
    """A new process started with -x <old stats socket> -sf <old pid> takes the listening
    sockets themselves; the old process finishes its sessions and exits."""
    a, b = http_backends("A"), http_backends("B")
    port = free_port()
    sock = tmp_path / "stats.sock"
    paths, procs = [], []
    for name, backend in (("old", a), ("new", b)):
        path = tmp_path / f"{name}.cfg"
        path.write_text(reload_config(port, [(name, backend)], sock))
        paths.append(path)
    logs = [open(tmp_path / f"{n}.log", "wb") for n in ("old", "new")]
    try:
        procs.append(subprocess.Popen(FASTLB + ["-d", "-n", "2", "-f", str(paths[0])],
                                      stderr=logs[0], cwd=tmp_path))
        wait_until(lambda: listening_sockets(port) == 2 and sock.exists(), message="old up")
        wait_until(lambda: HttpClient(port).get("/")[2] == b"A GET /", message="old serving")
        keep_alive, closing = run_wrk(port, 6, 8), run_wrk(port, 6, 4, close=True)
        time.sleep(1.5)
        procs.append(subprocess.Popen(FASTLB + ["-d", "-n", "2", "-f", str(paths[1]),
                                                "-x", str(sock), "-sf", str(procs[0].pid)],
                                      stderr=logs[1], cwd=tmp_path))
        assert procs[0].wait(timeout=15) == 0
        results = [wrk_failures(p.communicate(timeout=30)[0]) for p in (keep_alive, closing)]
        for result in results:
            assert result["requests"] > 200, results
            assert (result["connect"], result["read"], result["write"], result["timeout"],
                    result["non_2xx"]) == (0, 0, 0, 0, 0), results
        assert len(a.requests) > 0 and len(b.requests) > 0
        assert HttpClient(port).get("/")[2] == b"B GET /"
        assert listening_sockets(port) == 2            # the same two sockets, now the new one's
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=10)
        for log in logs:
            log.close()


def test_daemon_writes_its_pid_and_removes_it(http_backends, tmp_path):
    a = http_backends("A")
    port = free_port()
    pidfile = tmp_path / "fastlb.pid"
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(reload_config(port, [("a", a)], tmp_path / "stats.sock",
                                 extra_global=f"    daemon\n    pidfile {pidfile}\n    nbthread 2"))
    # the launcher returns at once: the daemon is the grandchild
    assert subprocess.run(FASTLB + ["-f", str(cfg)], timeout=10, cwd=tmp_path).returncode == 0
    pid = int(wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(),
                         message="pid file"))
    master = psutil.Process(pid)
    try:
        assert "fastlb: master" in " ".join(master.cmdline())
        assert master.ppid() != os.getpid() and os.getsid(pid) != os.getsid(0)   # detached
        wait_until(lambda: len(master.children()) == 2, message="nbthread 2 workers")
        assert HttpClient(port).get("/")[2] == b"A GET /"
        os.kill(pid, signal.SIGUSR2)                    # reload keeps the pid file right
        time.sleep(1.0)
        assert pidfile.read_text().strip() == str(pid)
    finally:
        os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not psutil.pid_exists(pid) or
               psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, message="exit")
    wait_until(lambda: not pidfile.exists(), message="pid file removed")


def free_privileged_port() -> int:
    """A port below 1024 nothing binds or answers on (tried in random order: a fixed first
    choice collides with anything else on the machine that picked it the same way)."""
    for port in random.sample(range(600, 1024), 424):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    pytest.skip("no free port below 1024")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to bind below 1024 and drop rights")
def test_privileges_dropped_after_binding_a_privileged_port_in_a_chroot(fastlb, http_backends,
                                                                        tmp_path):
    a = http_backends("A")
    port = free_privileged_port()
    jail = tmp_path / "jail"
    jail.mkdir()
    lb = fastlb(reload_config(port, [("a", a)], tmp_path / "stats.sock",
                              extra_global="    user nobody\n    group nogroup\n"
                                           f"    chroot {jail}"),
                workers=2, ports=[port])
    nobody = psutil.Process(lb.worker_pids()[0]).uids()
    for pid in lb.worker_pids():
        ps = subprocess.run(["ps", "-o", "user=,group=", "-p", str(pid)], capture_output=True,
                            text=True).stdout.split()
        assert ps == ["nobody", "nogroup"]
        assert os.readlink(f"/proc/{pid}/root") == str(jail)
    assert nobody.real == nobody.effective == nobody.saved == 65534
    assert psutil.Process(lb.pid).uids().effective == 0     # the master keeps root to reload
    assert HttpClient(port).get("/")[2] == b"A GET /"
    # a reload still binds as root, and its workers drop again
    lb.proc.send_signal(signal.SIGUSR2)
    wait_until(lambda: lb.stderr().count("Loading success.") == 2, message="reload")
    wait_until(lambda: len(lb.worker_pids()) == 2, message="old workers gone", timeout=10)
    assert {psutil.Process(p).uids().effective for p in lb.worker_pids()} == {65534}
    assert HttpClient(port).get("/")[2] == b"A GET /"
    # workers that dropped privileges still die with their master (Linux forgets the
    # parent-death signal at setuid)
    workers = lb.worker_pids()
    os.kill(lb.pid, signal.SIGKILL)
    lb.proc.wait()
    def alive(pid):
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False
    wait_until(lambda: not any(alive(p) for p in workers), timeout=5,
               message="workers gone with the master")


def test_maxconn_raises_the_fd_limit_and_ulimit_n_sets_it(fastlb, http_backends, tmp_path):
    a = http_backends("A")
    port = free_port()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 6000:
        pytest.skip("the hard descriptor limit is below 6000")
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))   # fastlb inherits a low soft limit
    try:
        lb = fastlb(reload_config(port, [("a", a)], tmp_path / "stats.sock",
                                  extra_global="    maxconn 2500"), workers=1, ports=[port])
        worker_soft, _ = psutil.Process(lb.worker_pids()[0]).rlimit(psutil.RLIMIT_NOFILE)
        assert worker_soft >= 5000          # a client and a server descriptor per connection
        lb.stop()
        lb = fastlb(reload_config(port, [("a", a)], tmp_path / "stats.sock",
                                  extra_global="    ulimit-n 3000"), workers=1, ports=[port])
        assert psutil.Process(lb.worker_pids()[0]).rlimit(psutil.RLIMIT_NOFILE)[0] == 3000
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.skipif(shutil.which("setpriv") is None or shutil.which("prlimit") is None,
                    reason="needs util-linux's setpriv and prlimit")
def test_fd_limit_that_cannot_be_raised_is_haproxys_alert(http_backends, tmp_path):
    port = free_port()
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(reload_config(port, [("a", http_backends("A"))], tmp_path / "stats.sock",
                                 extra_global="    ulimit-n 5000"))
    # without CAP_SYS_RESOURCE even root cannot raise a hard limit of 1024
    run = subprocess.run(["prlimit", "--nofile=1024:1024", "setpriv", "--bounding-set",
                          "-sys_resource", "--", *FASTLB, "-d", "-f", str(cfg)],
                         capture_output=True, text=True, timeout=20, cwd=tmp_path)
    assert run.returncode == 1
    assert re.search(r"\[ALERT\] +\(\d+\) : \[fastlb.main\(\)\] Cannot raise FD limit to 5000, "
                     r"limit is 1024\.", run.stderr), run.stderr


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two CPUs")
def test_cpu_map_pins_each_worker(fastlb, http_backends, tmp_path):
    port = free_port()
    lb = fastlb(reload_config(port, [("a", http_backends("A"))], tmp_path / "stats.sock",
                              extra_global="    cpu-map 1/1 1\n    cpu-map 1/2 0"),
                workers=2, ports=[port])
    wait_until(lambda: len(lb.worker_pids()) == 2, message="workers")
    by_title = {" ".join(psutil.Process(p).cmdline()).strip(): p for p in lb.worker_pids()}
    assert os.sched_getaffinity(by_title["fastlb: worker 1/2"]) == {1}
    assert os.sched_getaffinity(by_title["fastlb: worker 2/2"]) == {0}
    assert os.sched_getaffinity(lb.pid) == os.sched_getaffinity(0)      # the master is free


def test_monitor_fail_reports_the_node_down(fastlb, http_backends, tmp_path):
    a = http_backends("A")
    port = free_port()
    sock = tmp_path / "stats.sock"
    fastlb(reload_config(port, [("a", a)], sock).replace(
        "    default_backend be\n",
        "    default_backend be\n    monitor-uri /health\n"
        "    acl be_dead nbsrv(be) lt 1\n    monitor fail if be_dead\n"), workers=2,
        ports=[port])
    assert HttpClient(port).get("/health")[0] == 200
    stats_cli(sock, "disable server be/a")
    for _ in range(4):                      # every worker sees it
        assert HttpClient(port).get("/health")[0] == 503
    stats_cli(sock, "enable server be/a")
    assert HttpClient(port).get("/health")[0] == 200
    assert len(a.requests) == 0             # monitor requests never reach the backend


def test_mworker_max_reloads_stops_an_old_worker_past_the_limit(fastlb, http_backends, tmp_path):
    a = http_backends("A")
    port = free_port()
    msock = tmp_path / "master.sock"
    # the kept-alive connection would stay open 30 s: only the limit ends it sooner
    cfg = reload_config(port, [("a", a)], tmp_path / "stats.sock", "    mworker-max-reloads 1")
    lb = fastlb(cfg.replace("hard-stop-after 10s", "hard-stop-after 60s")
                .replace("timeout client 5s", "timeout client 30s"),
                workers=1, ports=[port], args=["-S", f"{msock},mode,600"])
    client = HttpClient(port)                     # a kept-alive connection holds its worker
    assert client.get("/")[0] == 200
    first = lb.worker_pids()
    for reloads in (1, 2):
        lb.proc.send_signal(signal.SIGUSR2)
        wait_until(lambda: lb.stderr().count("Loading success.") == reloads + 1,
                   message=f"reload {reloads}")
        if reloads == 1:
            # one reload survived: still there, listed as an old worker
            time.sleep(0.5)
            assert psutil.pid_exists(first[0])
            listing = stats_cli(msock, "show proc")
            old = listing.split("# old workers\n")[1].split("# programs")[0].split()
            assert old[:3] == [str(first[0]), "worker", "1"]
    # the second reload is one more than allowed: the master ends it
    def gone(pid):
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
    wait_until(lambda: gone(first[0]), timeout=5, message="the old worker to be stopped")
    assert client.closed()
    assert "# old workers" not in stats_cli(msock, "show proc")


def test_mworker_max_reloads_arguments(tmp_path):
    # HAProxy 2.6 only warns about a bad value (and keeps no limit)
    for value, warning in (("0", ""), ("3x", ""),
                           ("-1", "'mworker-max-reloads' : invalid value -1, must be >= 0"),
                           ("", "'mworker-max-reloads' expects an integer argument."),
                           ("1 2", "cannot handle unexpected argument '2'")):
        cfg = tmp_path / "m.cfg"
        cfg.write_text(f"global\n    mworker-max-reloads {value}\n"
                       f"listen l\n    mode http\n    bind 127.0.0.1:{free_port()}\n"
                       "    timeout client 1s\n    timeout server 1s\n    timeout connect 1s\n"
                       "    server s 127.0.0.1:1\n")
        result = subprocess.run(FASTLB + ["-c", "-f", str(cfg)], capture_output=True, text=True)
        assert result.returncode == 0, (value, result.stderr)
        assert ("[WARNING]" in result.stderr) == bool(warning), value
        assert warning in result.stderr
        if shutil.which("haproxy"):            # the same verdict as HAProxy's
            theirs = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True,
                                    text=True)
            assert theirs.returncode == 0 and warning in theirs.stderr, value


@pytest.mark.parametrize("program", ["haproxy", "fastlb"])
@pytest.mark.parametrize("keep_idle", [False, True])
def test_idle_connections_at_a_reload_as_haproxy(tmp_path, http_backends, program, keep_idle):
    """A reload closes the old workers' idle keep-alive connections, as HAProxy 2.6 does;
    with option idle-close-on-response they stay, and their next request is answered with
    Connection: close."""
    if program == "haproxy" and shutil.which("haproxy") is None:
        pytest.skip("haproxy not installed")
    a = http_backends("A")
    port = free_port()
    path = tmp_path / "idle.cfg"
    path.write_text(reload_config(port, [("a", a)], tmp_path / "stats.sock",
                                  keep_idle=keep_idle).replace("timeout client 5s",
                                                               "timeout client 30s"))
    cmd = ["haproxy", "-W", "-f", str(path)] if program == "haproxy" else \
        FASTLB + ["-n", "1", "-f", str(path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: listening_sockets(port) > 0, message="listening")
        time.sleep(0.3)
        client = HttpClient(port)
        assert client.get("/")[0] == 200
        proc.send_signal(signal.SIGUSR2)
        time.sleep(1.5)
        if keep_idle:
            assert not client.closed(0.5)
            status, headers, _ = client.get("/")
            assert (status, headers.get("connection")) == (200, "close")
        else:
            assert client.closed(1.0)
    finally:
        proc.terminate()
        proc.wait(5)
