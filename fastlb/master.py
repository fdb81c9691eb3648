"""The master process: forks the workers, supervises them, turns signals into actions.

One readable state machine (after gunicorn's arbiter): signal handlers only queue
the signal and write a byte to a self-pipe; the main loop wakes up, takes one
signal at a time and calls the method named for it.

    SIGINT, SIGTERM   hard stop: workers get SIGTERM, then SIGKILL; exit 0
    SIGUSR1           soft stop: workers stop accepting, finish their sessions, exit
    SIGCHLD           reap; a worker that died while running is respawned
    SIGHUP, SIGUSR2   reload (not implemented yet: logged, nothing changes)
"""
from __future__ import annotations

import errno
import os
import select
import signal
import time

from setproctitle import setproctitle

from .runtime import shm as shared
from .runtime.shm import FE_MAXCONN, SharedState
from .stats.admin import Admin
from .stats.cli import CliServer
from .stats.sampler import RateSampler
from .runtime.tables import RuntimeTables
from .health import needs_checker, run_checker
from .logsink import console as _stderr
from .runtime.worker import run_worker

STOP_GRACE_S = 1.5          # SIGTERM -> SIGKILL delay on hard stop (VTest waits 2 s)
BOOT_FAILURE_WINDOW_S = 1.0  # a worker that exits non-zero this soon after start failed to boot
MAX_BOOT_FAILURES = 5

RUNNING, SOFT_STOPPING, HARD_STOPPING = "running", "soft-stopping", "hard-stopping"
CHECKER = -1                # the health checker's number among the children
OBSERVE = {"layer4": 4, "layer7": 7}


def alert(message: str) -> None:
    _stderr("ALERT", message)


def describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return f"exited with code {128 + sig} ({signal.strsignal(sig) or sig})"
    return f"exited with code {os.WEXITSTATUS(status)}"


def child_role(number: int) -> str:
    return "health checker" if number == CHECKER else "worker"


def child_name(number: int) -> str:
    return "health checker" if number == CHECKER else f"worker {number + 1}"


def init_shared_state(shm: SharedState, tables: RuntimeTables) -> None:
    """Servers' first states, weights and limits, frontends' maxconn, backends' members."""
    for fe in tables.frontends:
        shm.store(shm.frontend_word(fe.index, FE_MAXCONN), fe.proxy.maxconn or 0)
    for be in tables.backends:
        for i, server in enumerate(be.server_models):
            shm.init_server(be.first_server_shm + i,
                            weight=server.weight if server else 1,
                            maint=bool(server and server.disabled),
                            checked=bool(server and server.check),
                            # HAProxy starts a "disabled" server with health 0: once
                            # enabled it is set to rise
                            health=(0 if server.disabled else server.rise) if server else 1,
                            observe=OBSERVE.get(server.observe if server and
                                                server.check else None, 0),
                            maxconn=(server.maxconn or 0) if server else 0)
        shm.init_backend(be.index, range(be.first_server_shm,
                                         be.first_server_shm + len(be.server_models)))


class Master:
    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGCHLD,
               signal.SIGHUP, signal.SIGUSR2)

    def __init__(self, tables: RuntimeTables, nworkers: int, argv: list[str],
                 program: str = "fastlb", quiet: bool = False):
        self.tables = tables
        self.nworkers = nworkers
        self.argv = argv
        self.program = program
        self.quiet = quiet
        self.state = RUNNING
        self.workers: dict[int, int] = {}        # pid -> worker number
        self.started_at: dict[int, float] = {}   # pid -> start time
        self.boot_failures = 0
        self.signal_queue: list[int] = []
        self.pipe_r = self.pipe_w = -1
        self.stop_deadline = 0.0
        self.pid = os.getpid()
        self.shm = SharedState(len(tables.frontends), len(tables.backends), tables.nservers,
                               nworkers)
        init_shared_state(self.shm, tables)
        tables.state = self.shm              # the stats page and exporter read it in workers
        self.shm.view[shared.G_MASTER_PID] = self.pid
        self.shm.view[shared.G_START_MS] = int(time.time() * 1000)
        self.cli = CliServer(tables, self.shm, Admin(tables, self.shm, self.pid, program, quiet))
        self.sampler = RateSampler(tables, self.shm)

    # -- messages -------------------------------------------------------------------------
    def notice(self, message: str) -> None:
        if not self.quiet:
            _stderr("NOTICE", message)

    def warning(self, message: str) -> None:
        if not self.quiet:
            _stderr("WARNING", message)

    # -- life cycle -----------------------------------------------------------------------
    def run(self) -> int:
        self.setup()
        self.cli.open()
        for number in range(self.nworkers):
            self.spawn_worker(number)
        if needs_checker(self.tables):
            self.spawn_worker(CHECKER)
        self.notice("Loading success.")
        while True:
            if self.state != RUNNING and not self.workers:
                self.cli.close()
                return 0
            if self.state == HARD_STOPPING and time.monotonic() >= self.stop_deadline:
                self.kill_workers(signal.SIGKILL)
            signum = self.signal_queue.pop(0) if self.signal_queue else None
            if signum is None:
                self.sleep()
                continue
            handler = getattr(self, "handle_" + signal.Signals(signum).name[3:].lower())
            handler()

    def setup(self) -> None:
        self.pipe_r, self.pipe_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        for signum in self.SIGNALS:
            signal.signal(signum, self.queue_signal)
        setproctitle(f"{self.program}: master {' '.join(self.argv)}")

    def queue_signal(self, signum, frame) -> None:
        if len(self.signal_queue) < 10:
            self.signal_queue.append(signum)
        self.wakeup()

    def wakeup(self) -> None:
        try:
            os.write(self.pipe_w, b".")
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EINTR):
                raise

    def sleep(self) -> None:
        """Wait for a signal, a stats socket client or the next rate sample."""
        now = time.monotonic()
        timeout = min(1.0, self.cli.timeout(), max(0.0, self.sampler.last_at + 1.0 - now))
        if self.state == HARD_STOPPING:
            timeout = max(0.0, min(timeout, self.stop_deadline - now))
        try:
            ready, _, _ = select.select([self.pipe_r] + self.cli.fds(), [], [], timeout)
            for fd in ready:
                if fd == self.pipe_r:
                    while os.read(self.pipe_r, 64):
                        pass
                else:
                    self.cli.on_ready(fd)
        except BlockingIOError:
            pass
        except InterruptedError:
            pass
        self.cli.expire()
        now = time.monotonic()
        if self.sampler.due(now):
            self.sampler.tick(now, [pid for pid, n in self.workers.items() if n != CHECKER])
        # SIGCHLD may be coalesced or arrive between checks: reap on every wake-up.
        self.reap_workers()

    # -- signal handlers ------------------------------------------------------------------
    def handle_int(self) -> None:
        self.hard_stop()

    def handle_term(self) -> None:
        self.hard_stop()

    def handle_usr1(self) -> None:
        if self.state == RUNNING:
            self.notice("Soft stop: workers finish their sessions, then exit.")
            self.state = SOFT_STOPPING
            self.kill_workers(signal.SIGUSR1)

    def handle_chld(self) -> None:
        self.reap_workers()

    def handle_hup(self) -> None:
        self.warning("Reload requested, but configuration reload is not implemented yet; "
                      "nothing changed.")

    handle_usr2 = handle_hup

    def hard_stop(self) -> None:
        if self.state != HARD_STOPPING:
            self.state = HARD_STOPPING
            self.stop_deadline = time.monotonic() + STOP_GRACE_S
            self.kill_workers(signal.SIGTERM)

    # -- workers --------------------------------------------------------------------------
    def spawn_worker(self, number: int) -> None:
        pid = os.fork()
        if pid:
            self.workers[pid] = number
            self.started_at[pid] = time.monotonic()
            if number == CHECKER:
                self.shm.view[shared.G_CHECKER_PID] = pid
            else:
                self.shm.set_worker_pid(number, pid)
            self.notice(f"New {child_role(number)} ({pid}) forked")
            return
        code = 1
        try:
            for signum in self.SIGNALS:
                signal.signal(signum, signal.SIG_DFL)
            os.close(self.pipe_r)
            os.close(self.pipe_w)
            self.cli.close()                 # the stats sockets are the master's
            if number == CHECKER:
                code = run_checker(self.tables, self.shm, self.pid, self.program)
            else:
                code = run_worker(self.tables, self.shm, number, self.nworkers, self.pid,
                                  self.program)
        except BaseException as exc:  # noqa: BLE001 - a worker must never return into the master loop
            alert(f"{child_name(number)}: {exc.__class__.__name__}: {exc}")
        finally:
            os._exit(code)

    def reap_workers(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            number = self.workers.pop(pid, None)
            started = self.started_at.pop(pid, 0.0)
            if number is None:
                continue
            if number != CHECKER:
                self.shm.release_slot(number)   # its connections are gone: give back their counts
            if self.state != RUNNING:
                continue
            how = describe_exit(status)
            failed_boot = (os.WIFEXITED(status) and os.WEXITSTATUS(status) != 0
                           and time.monotonic() - started < BOOT_FAILURE_WINDOW_S)
            self.boot_failures = self.boot_failures + 1 if failed_boot else 0
            if self.boot_failures >= MAX_BOOT_FAILURES:
                alert(f"Current worker ({pid}) {how}; workers keep failing at start-up, exiting.")
                self.hard_stop()
                continue
            alert(f"Current {child_role(number)} ({pid}) {how}; respawning {child_name(number)}.")
            self.spawn_worker(number)

    def kill_workers(self, signum: int) -> None:
        for pid in list(self.workers):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass
