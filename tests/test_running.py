"""Running like HAProxy: systemd notify (-Ws), start-up failures (ALERT and exit 1, daemon
or not), a configuration whose only listener is a stats socket (Debian's stock one),
``show version``, the master CLI on an inherited socket (-S fd@N).  Real processes, real
sockets; haproxy on the same configuration where it can run."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from conftest import FASTLB, free_port, stats_cli, wait_until

HAPROXY = shutil.which("haproxy")
needs_haproxy = pytest.mark.skipif(HAPROXY is None, reason="haproxy not installed")

TCP = """\
global
{global_}
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server s1 127.0.0.1:{backend}
"""


def write_config(tmp_path, global_="    log stderr local0", port=None, backend=9):
    path = tmp_path / "haproxy.cfg"
    path.write_text(TCP.format(global_=global_, port=port or free_port(), backend=backend))
    return path


def alerts(stderr: str) -> list[str]:
    """The ALERT lines without their pid, and without haproxy's own name in them."""
    return [re.sub(r"\[\S*(haproxy|fastlb)\.main\(\)\]", "[MAIN]",
                   re.sub(r"^\[ALERT\]\s+\(\d+\) : ", "", line))
            for line in stderr.splitlines() if line.startswith("[ALERT]")]


# -- systemd notify -----------------------------------------------------------------------
class NotifyListener:
    """What a service manager hears: an AF_UNIX datagram socket, abstract or a path."""

    def __init__(self, tmp_path, abstract: bool):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"fastlb-test-{os.getpid()}-{time.monotonic_ns()}"
            self.sock.bind(b"\0" + name.encode())
            self.env_value = "@" + name
        else:
            path = tmp_path / "notify.sock"
            self.sock.bind(str(path))
            self.env_value = str(path)
        self.messages: list[bytes] = []

    def wait_for(self, message: bytes, timeout=10.0) -> list[bytes]:
        """Receive until ``message`` arrives; every datagram received so far."""
        deadline = time.monotonic() + timeout
        while message not in self.messages:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {message!r} within {timeout}s: {self.messages}")
            self.sock.settimeout(left)
            try:
                self.messages.append(self.sock.recv(4096))
            except socket.timeout:
                pass
        return self.messages

    def take(self, message: bytes, timeout=10.0) -> list[bytes]:
        """The datagrams up to and including ``message``; later ones stay queued."""
        self.wait_for(message, timeout)
        upto = self.messages.index(message) + 1
        taken, self.messages = self.messages[:upto], self.messages[upto:]
        return taken

    def close(self):
        self.sock.close()


def run_notified(cmd, listener, tmp_path):
    env = dict(os.environ, NOTIFY_SOCKET=listener.env_value)
    return subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=open(tmp_path / "stderr", "wb"))


def relays(port, backend: socket.socket, within=2.0) -> bool:
    """A connection to the frontend reaches the backend ``within`` seconds: a worker
    serves (the listening socket alone, bound by the master, would only queue it until
    a worker starts)."""
    try:
        client = socket.create_connection(("127.0.0.1", port), timeout=2)
    except OSError:
        return False
    with client:
        backend.settimeout(within)
        try:
            backend.accept()[0].close()
        except socket.timeout:
            return False
    return True


def listening_backend() -> socket.socket:
    backend = socket.socket()
    backend.bind(("127.0.0.1", 0))
    backend.listen(8)
    return backend


def notify_life(cmd, tmp_path, abstract=True) -> list[list[bytes]]:
    """Start, reload, reload a broken configuration, stop: the datagrams of each step,
    each READY=1 checked to come once the workers serve."""
    port, backend = free_port(), listening_backend()
    config = write_config(tmp_path, port=port, backend=backend.getsockname()[1])
    listener = NotifyListener(tmp_path, abstract)
    proc = run_notified(cmd + ["-f", str(config)], listener, tmp_path)
    ready = f"READY=1\nMAINPID={proc.pid}".encode()
    steps = []
    try:
        steps.append(listener.take(ready))
        assert relays(port, backend, within=0.3), "READY=1 before the workers serve"
        proc.send_signal(signal.SIGUSR2)
        steps.append(listener.take(ready))
        assert relays(port, backend)
        good = config.read_text()
        config.write_text(good + "    bogus-keyword\n")
        proc.send_signal(signal.SIGUSR2)
        steps.append(listener.take(ready))
        config.write_text(good)
        assert relays(port, backend)
        proc.send_signal(signal.SIGTERM)
        steps.append(listener.take(b"STOPPING=1"))
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        listener.close()
        backend.close()
    return steps


def transitions(steps: list[list[bytes]]) -> list[list[bytes]]:
    """Each step's states with repeats dropped.  HAProxy 2.6 re-executes its master at
    start-up and at each reload, and says RELOADING=1 again each time (also once before
    its first READY=1): systemd sees the same states either way."""
    out = []
    for number, step in enumerate(steps):
        states = []
        for message in step:
            if number == 0 and message == b"RELOADING=1":
                continue
            if not states or states[-1] != message:
                states.append(message)
        out.append(states)
    return out


@pytest.mark.parametrize("abstract", [True, False], ids=["abstract", "path"])
def test_ws_notifies_ready_reloading_stopping(tmp_path, abstract):
    steps = notify_life(FASTLB + ["-Ws", "-n", "1"], tmp_path, abstract)
    pid = re.search(rb"MAINPID=(\d+)", steps[0][-1]).group(1).decode()
    ready = f"READY=1\nMAINPID={pid}".encode()
    assert steps == [[ready], [b"RELOADING=1", ready], [b"RELOADING=1", ready],
                     [b"STOPPING=1"]]
    assert "Loading failure!" in (tmp_path / "stderr").read_text()


@needs_haproxy
def test_ws_notifications_match_haproxy(tmp_path):
    (tmp_path / "fastlb").mkdir()
    (tmp_path / "haproxy").mkdir()
    fastlb = notify_life(FASTLB + ["-Ws", "-n", "1"], tmp_path / "fastlb")
    haproxy = notify_life([HAPROXY, "-Ws"], tmp_path / "haproxy")
    mask = [[re.sub(rb"MAINPID=\d+", b"MAINPID=<pid>", m) for m in step]
            for step in transitions(fastlb)]
    assert mask == [[re.sub(rb"MAINPID=\d+", b"MAINPID=<pid>", m) for m in step]
                    for step in transitions(haproxy)]


def test_ws_stays_in_the_foreground_despite_daemon(tmp_path):
    config = write_config(tmp_path, "    daemon")
    listener = NotifyListener(tmp_path, abstract=True)
    proc = run_notified(FASTLB + ["-W", "-Ws", "-n", "1", "-f", str(config)], listener,
                        tmp_path)
    try:
        listener.take(f"READY=1\nMAINPID={proc.pid}".encode())
        assert proc.poll() is None                 # the master is the process started
        proc.send_signal(signal.SIGUSR1)           # soft stop: STOPPING=1 too
        listener.take(b"STOPPING=1")
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        listener.close()


def test_ws_without_notify_socket_runs(tmp_path):
    port, backend = free_port(), listening_backend()
    config = write_config(tmp_path, port=port, backend=backend.getsockname()[1])
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    proc = subprocess.Popen(FASTLB + ["-Ws", "-n", "1", "-f", str(config)], env=env,
                            stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: relays(port, backend), timeout=10, message="a worker relays")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        backend.close()


# -- start-up failures --------------------------------------------------------------------
def failure_cases(tmp_path):
    """(name, global lines, frontend port, extra args) of start-ups that must fail, and
    the socket that keeps a port busy."""
    missing = tmp_path / "missing-dir"
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    port = busy.getsockname()[1]
    log = "    log stderr local0"
    return busy, [
        ("stats socket dir", f"    stats socket {missing}/admin.sock mode 600 level admin",
         None, []),
        ("stats socket port", f"    stats socket 127.0.0.1:{port}", None, []),
        ("master CLI dir", log, None, ["-S", f"{missing}/master.sock"]),
        ("pid-file dir", f"    pidfile {missing}/fastlb.pid", None, []),
        ("busy port", log, port, []),
    ]


def run_start(cmd, cwd, timeout=10, user=None):
    if user:
        # root without the capabilities that bypass file permissions: a mode-000 file is
        # unreadable to it, while the interpreter and the installed package (root's,
        # perhaps under /root) stay readable
        cmd = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
               "--bounding-set=-dac_override,-dac_read_search"] + cmd
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                cwd=cwd, env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{cmd} did not exit: it started")
    return result.returncode, result.stderr


@pytest.mark.parametrize("mode", ["-db", "-D"])
def test_start_up_failures_alert_and_exit_1(tmp_path, mode):
    busy, cases = failure_cases(tmp_path)
    with busy:
        for name, global_, port, args in cases:
            write_config(tmp_path, global_, port)
            code, err = run_start(FASTLB + [mode, "-n", "1", "-f", "haproxy.cfg", *args],
                                  tmp_path)
            assert code == 1, (name, err)
            assert "Traceback" not in err and alerts(err), (name, err)


@needs_haproxy
@pytest.mark.parametrize("mode", ["-db", "-D"])
def test_start_up_failures_match_haproxy(tmp_path, mode):
    """The same ALERT lines and exit status (haproxy -W: fastlb is always master-worker,
    and HAProxy writes a pid file only as a daemon or a master)."""
    busy, cases = failure_cases(tmp_path)
    with busy:
        for name, global_, port, args in cases:
            write_config(tmp_path, global_, port)
            ours = run_start(FASTLB + [mode, "-n", "1", "-f", "haproxy.cfg", *args], tmp_path)
            theirs = run_start([HAPROXY, "-W", mode, "-f", "haproxy.cfg", *args], tmp_path)
            assert ours[0] == theirs[0] == 1, (name, ours, theirs)
            assert alerts(ours[1]) == alerts(theirs[1]) and alerts(ours[1]), name


@needs_haproxy
@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to make a file unreadable to the process")
@pytest.mark.parametrize("mode", ["-db", "-D"])
def test_unreadable_and_missing_config_match_haproxy(tmp_path, mode):
    tmp_path.chmod(0o755)
    config = write_config(tmp_path)
    config.chmod(0o000)                           # unreadable without CAP_DAC_OVERRIDE
    python = [sys.executable, "-P", "-m", "fastlb"]
    for path, user in ((config, True), (tmp_path / "nope.cfg", False)):
        ours = run_start(python + [mode, "-f", str(path)], tmp_path, user=user)
        theirs = run_start([HAPROXY, mode, "-f", str(path)], tmp_path, user=user)
        assert ours[0] == theirs[0] == 1, (path, ours, theirs)
        ours_alerts = [a.replace("fastlb", "haproxy") for a in alerts(ours[1])]
        assert ours_alerts == alerts(theirs[1]) and ours_alerts, (ours, theirs)


# -- a stats socket as the only listener --------------------------------------------------
def debian_config(tmp_path) -> Path:
    """Debian's /etc/haproxy/haproxy.cfg with its paths in ``tmp_path``; user, group and
    chroot kept when we are root."""
    stock = Path("/etc/haproxy/haproxy.cfg")
    if not stock.exists():
        pytest.skip("no Debian haproxy.cfg installed")
    text = stock.read_text()
    assert "frontend" not in text and "listen" not in text   # the point of this test
    text = text.replace("/run/haproxy/admin.sock", str(tmp_path / "admin.sock"))
    text = text.replace("/dev/log", str(tmp_path / "log"))
    (tmp_path / "chroot").mkdir()
    text = text.replace("/var/lib/haproxy", str(tmp_path / "chroot"))
    if os.geteuid() != 0:
        text = re.sub(r"(?m)^\s*(user|group|chroot)\s.*$", "", text)
    out = tmp_path / "haproxy.cfg"
    out.write_text(text)
    return out


def test_debian_stock_config_serves_its_stats_socket(tmp_path):
    config = debian_config(tmp_path)
    assert re.search(r"(?m)^\s*daemon\s*$", config.read_text())
    pidfile = tmp_path / "fastlb.pid"
    code, err = run_start(FASTLB + ["-f", str(config), "-n", "1", "-p", str(pidfile)],
                          tmp_path)
    assert code == 0, err                      # the daemon's parent leaves
    pid = int(wait_until(lambda: pidfile.exists() and pidfile.read_text().strip(),
                         message="pid file"))
    try:
        info = wait_until(lambda: (tmp_path / "admin.sock").exists()
                          and stats_cli(tmp_path / "admin.sock", "show info"),
                          message="show info")
        assert f"Pid: {pid}" in info.splitlines()
        assert "Name: fastlb" in info
        assert oct((tmp_path / "admin.sock").stat().st_mode & 0o777) == "0o660"
    finally:
        os.kill(pid, signal.SIGTERM)
    wait_until(lambda: not psutil.pid_exists(pid), message="daemon exit")


def test_stats_socket_only_config_checks_valid(tmp_path):
    config = debian_config(tmp_path)
    result = subprocess.run(FASTLB + ["-c", "-f", str(config)], capture_output=True,
                            text=True, timeout=30)
    assert (result.returncode, result.stdout) == (0, "Configuration file is valid\n")


# -- show version, -S fd@N ----------------------------------------------------------------
def test_show_version_on_stats_socket_and_master_cli(fastlb, tmp_path):
    from fastlb import __version__
    lb = fastlb(TCP.format(global_=f"    stats socket {tmp_path}/admin.sock level user",
                           port=free_port(), backend=9),
                args=["-S", str(tmp_path / "master.sock")])
    expected = f"{__version__}\n\n"
    assert stats_cli(tmp_path / "admin.sock", "show version") == expected
    assert stats_cli(tmp_path / "master.sock", "show version") == expected
    assert stats_cli(tmp_path / "master.sock", "@1 show version") == expected
    help_text = stats_cli(tmp_path / "admin.sock", "help")
    assert "  show version                            : show version of the current process\n" \
        in help_text
    assert lb.stop() == 0


@needs_haproxy
def test_show_version_shape_matches_haproxy(tmp_path):
    """HAProxy answers its bare version and an empty line, on both CLIs."""
    config = write_config(tmp_path, f"    stats socket {tmp_path}/admin.sock level user")
    proc = subprocess.Popen([HAPROXY, "-W", "-db", "-S", str(tmp_path / "master.sock"),
                             "-f", str(config)], stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: (tmp_path / "admin.sock").exists()
                   and (tmp_path / "master.sock").exists(), message="haproxy sockets")
        version = subprocess.run([HAPROXY, "-v"], capture_output=True, text=True).stdout
        number = re.search(r"version (\S+)", version).group(1)
        def answer(path, command):
            try:
                return stats_cli(tmp_path / path, command)
            except OSError:              # the worker haproxy's master relays to is starting
                return None
        for path, command in (("admin.sock", "show version"), ("master.sock", "show version"),
                              ("master.sock", "@1 show version")):
            assert wait_until(lambda: answer(path, command)) == f"{number}\n\n"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_master_cli_on_an_inherited_socket(fastlb, tmp_path):
    listening = socket.socket(socket.AF_UNIX)
    listening.bind(str(tmp_path / "inherited.sock"))
    listening.listen(4)
    fd = listening.fileno()
    lb = fastlb(TCP.format(global_="    log stderr local0", port=free_port(), backend=9),
                args=["-S", f"fd@{fd}"], pass_fds=(fd,))
    listening.close()                          # the master's copy serves now
    proc = stats_cli(tmp_path / "inherited.sock", "show proc")
    assert proc.startswith("#<PID>") and f"{lb.pid}" in proc
    assert lb.stop() == 0


def test_master_cli_on_a_bad_fd_is_an_alert(tmp_path):
    config = write_config(tmp_path)
    code, err = run_start(FASTLB + ["-db", "-n", "1", "-S", "fd@99", "-f", str(config)],
                          tmp_path)
    assert code == 1
    assert "Traceback" not in err
    # HAProxy refuses it while parsing -S, in other words; fastlb when binding it
    assert alerts(err) == ["Binding [master-socket:0] for proxy MASTER: cannot bind "
                           "inherited fd@99 (Bad file descriptor) for [fd@99]",
                           "[MAIN] Some protocols failed to start their listeners! Exiting."]


def test_unit_file_reload_check_command(tmp_path):
    """contrib/fastlb.service's ExecReload check: silent, exit 0, binds nothing."""
    config = write_config(tmp_path)
    unit = (Path(__file__).resolve().parent.parent / "contrib" / "fastlb.service").read_text()
    assert "ExecReload=/usr/local/bin/fastlb -Ws -f $CONFIG -c -q $EXTRAOPTS" in unit
    assert "Type=notify" in unit
    result = subprocess.run(FASTLB + ["-Ws", "-f", str(config), "-c", "-q", "-S",
                                      str(tmp_path / "master.sock")],
                            capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert not (tmp_path / "master.sock").exists()
