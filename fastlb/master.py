"""The master process: forks the workers, supervises them, turns signals into actions.

One readable state machine (after gunicorn's arbiter): signal handlers only queue
the signal and write a byte to a self-pipe; the main loop wakes up, takes one
signal at a time and calls the method named for it.

    SIGINT, SIGTERM   hard stop: workers get SIGTERM, then SIGKILL; exit 0
    SIGUSR1           soft stop: workers stop accepting, finish their sessions, exit
    SIGCHLD           reap; a worker of the current generation that died is respawned
    SIGHUP, SIGUSR2   reload: re-read the configuration; if it loads, start a new
                      generation of workers on the same listening sockets, and once they
                      all serve, ask the old ones to finish their sessions and leave
                      (bounded by hard-stop-after).  If it does not, nothing changes.

The listening sockets belong to the master (``ListenerPool``) and outlive every
generation, so a reload never closes a socket a client may be connecting to.
"""
from __future__ import annotations

import errno
import os
import select
import signal
import time

from setproctitle import setproctitle

from . import __version__
from . import boot
from .boot import worker_count
from .health import needs_checker, run_checker
from .logsink import console as _stderr
from . import shm as shared
from .runtime.generation import Generation, carry_server_states
from .runtime.listeners import ListenerPool
from .runtime.server_state import apply_server_state
from .runtime.process import confine
from .runtime.worker import run_worker
from .control.admin import Admin
from .control.cli import Commands
from .control.master_cli import MasterCli
from .control.server import CliServer
from .stats.sampler import RateSampler

STOP_GRACE_S = 1.5          # SIGTERM -> SIGKILL delay on hard stop (VTest waits 2 s)
BOOT_FAILURE_WINDOW_S = 1.0  # a worker that exits non-zero this soon after start failed to boot
MAX_BOOT_FAILURES = 5        # workers that die before serving, in a row: the master gives up
CRASH_WINDOW_S = 10.0        # a serving worker that died this many times in this window ...
INTERRUPT_GRACE_S = 0.5      # a worker stopped by SIGINT/SIGTERM: the master's own stop may follow
CRASH_BACKOFF_S = (0.0, 0.0, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)   # ... waits this long to respawn
LOAD_TIMEOUT_S = 10.0       # a new generation's workers must all serve within this time

RUNNING, SOFT_STOPPING, HARD_STOPPING = "running", "soft-stopping", "hard-stopping"
CHECKER = -1                # the health checker's number among the children


def alert(message: str) -> None:
    _stderr("ALERT", message)


def warning(message: str) -> None:
    _stderr("WARNING", message)


def describe_exit(status: int) -> str:
    """HAProxy's wording: "exited with code 0 (Exit)", "... 137 (Killed)", and for a
    process that exited 128 + N after signal N, "... 130 (Interrupt)"."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return f"exited with code {128 + sig} ({signal.strsignal(sig) or sig})"
    code = os.WEXITSTATUS(status)
    if 128 < code < 128 + signal.NSIG and signal.strsignal(code - 128):
        return f"exited with code {code} ({signal.strsignal(code - 128)})"
    return f"exited with code {code} (Exit)"


def child_role(number: int) -> str:
    return "health checker" if number == CHECKER else "worker"


def child_name(number: int) -> str:
    return "health checker" if number == CHECKER else f"worker {number + 1}"


class Child:
    __slots__ = ("number", "generation", "started", "started_wall")

    def __init__(self, number: int, generation: Generation):
        self.number = number
        self.generation = generation
        self.started = time.monotonic()
        self.started_wall = time.time()


class Master:
    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGCHLD,
               signal.SIGHUP, signal.SIGUSR2)

    def __init__(self, tables, files: list, requested_workers: int | None, argv: list[str],
                 pool: ListenerPool, program: str = "fastlb", quiet: bool = False,
                 handover: tuple | None = None, master_cli: list | None = None,
                 notifier=None, bound: tuple = (None, None)):
        self.files = files
        self.requested_workers = requested_workers
        self.argv = argv
        self.pool = pool
        self.program = program
        self.quiet = quiet
        self.handover = handover             # (signal, pids) for -sf / -st, once we serve
        self.notifier = notifier             # -Ws: systemd hears READY/RELOADING/STOPPING
        self.announced = False               # READY=1 sent for the current generation
        self.bound = bound                   # (stats, master CLI) listeners bound at start-up
        self.state = RUNNING
        self.children: dict[int, Child] = {}
        self.boot_failures = 0
        self.crashes: dict[int, list] = {}   # worker number -> monotonic times it died serving
        self.respawns: dict[int, tuple] = {}  # worker number -> (generation, when), backed off
        self.signal_queue: list[int] = []
        self.pipe_r = self.pipe_w = -1
        self.stop_deadline = 0.0
        self.pid = os.getpid()
        self.started = time.time()
        self.reloads = 0
        self.failed_reloads = 0
        self.reload_wanted = False
        self.old_deadlines: dict[int, float] = {}   # old worker pid -> hard-stop-after
        self.current = Generation(0, tables, worker_count(requested_workers, tables.config),
                                  self.pid, int(self.started * 1000))
        # the servers start from the states a server-state-file holds (a reload carries
        # them in memory instead)
        apply_server_state(tables, self.current.shm, warning)
        self.pending: Generation | None = None
        self.pending_deadline = 0.0
        self.cli = CliServer(tables.config, self.commands_for(self.current), pool)
        self.master_cli = MasterCli(self, master_cli or [])
        self.sampler = RateSampler(tables, self.current.shm)

    # -- messages -------------------------------------------------------------------------
    def notice(self, message: str) -> None:
        if not self.quiet:
            _stderr("NOTICE", message)

    def warning(self, message: str) -> None:
        if not self.quiet:
            _stderr("WARNING", message)

    def commands_for(self, generation: Generation) -> Commands:
        return Commands(generation.tables, generation.shm,
                        Admin(generation.tables, generation.shm, self.pid, self.program,
                              self.quiet))

    @property
    def tables(self):
        return self.current.tables

    # -- life cycle -----------------------------------------------------------------------
    def run(self) -> int:
        self.setup()
        self.cli.open(self.bound[0])
        self.master_cli.open(self.bound[1])
        self.spawn_generation(self.current)
        self.notice("Loading success.")
        while True:
            if self.state != RUNNING and not self.children:
                self.cli.close()
                self.master_cli.close()
                return 0
            if self.state == HARD_STOPPING and time.monotonic() >= self.stop_deadline:
                self.kill_children(signal.SIGKILL)
            self.advance_generations()
            self.run_respawns()
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
        """Wait for a signal, a CLI client, the next rate sample or a generation's news."""
        now = time.monotonic()
        timeout = min(1.0, self.cli.timeout(), self.master_cli.timeout(),
                      max(0.0, self.sampler.last_at + 1.0 - now))
        if self.state == HARD_STOPPING:
            timeout = max(0.0, min(timeout, self.stop_deadline - now))
        if self.pending is not None or (self.state == RUNNING and (
                self.handover or (self.notifier and not self.announced))):
            timeout = min(timeout, 0.02)     # waiting for new workers to serve
        if self.old_deadlines:
            timeout = max(0.0, min(timeout, min(self.old_deadlines.values()) - now))
        if self.respawns:
            timeout = max(0.0, min(timeout, min(at for _, at in self.respawns.values()) - now))
        try:
            ready, _, _ = select.select([self.pipe_r] + self.cli.fds() + self.master_cli.fds(),
                                        [], [], timeout)
            for fd in ready:
                if fd == self.pipe_r:
                    while os.read(self.pipe_r, 64):
                        pass
                elif self.master_cli.owns(fd):
                    self.master_cli.on_ready(fd)
                else:
                    self.cli.on_ready(fd)
        except (BlockingIOError, InterruptedError):
            pass
        self.cli.expire()
        self.master_cli.expire()
        now = time.monotonic()
        if self.sampler.due(now):
            self.sampler.tick(now, [pid for pid, c in self.children.items()
                                    if c.number != CHECKER and c.generation is self.current])
        for pid, deadline in list(self.old_deadlines.items()):
            if now >= deadline:          # hard-stop-after: the old worker's time is up
                self.old_deadlines.pop(pid)
                self.signal_pid(pid, signal.SIGKILL)
        # SIGCHLD may be coalesced or arrive between checks: reap on every wake-up.
        self.reap_children()

    # -- signal handlers ------------------------------------------------------------------
    def handle_int(self) -> None:
        self.hard_stop()

    def handle_term(self) -> None:
        self.hard_stop()

    def handle_usr1(self) -> None:
        if self.state == RUNNING:
            self.notice("Soft stop: workers finish their sessions, then exit.")
            self.notify("stopping")
            self.state = SOFT_STOPPING
            self.stop_listening()
            self.kill_children(signal.SIGUSR1)

    def handle_chld(self) -> None:
        self.reap_children()

    def handle_hup(self) -> None:
        self.request_reload()

    handle_usr2 = handle_hup

    def hard_stop(self) -> None:
        if self.state != HARD_STOPPING:
            if self.state == RUNNING:
                self.notify("stopping")
            self.state = HARD_STOPPING
            self.stop_deadline = time.monotonic() + STOP_GRACE_S
            self.stop_listening()
            self.kill_children(signal.SIGTERM)

    def stop_listening(self) -> None:
        """A stopping master closes its copies of the listeners: once the workers close
        theirs, the kernel sends no more connections here (a process started with -sf,
        or given the sockets with -x, keeps serving them)."""
        self.pending = None
        self.pool.close_all()

    # -- reload ---------------------------------------------------------------------------
    def request_reload(self) -> None:
        if self.state != RUNNING:
            return
        if self.pending is not None:
            self.reload_wanted = True        # after the generation being started
            return
        self.reload()

    def reload(self) -> None:
        """Load the configuration again and start its generation; on any error, log why
        and keep serving with the current one."""
        self.notice(f"Reloading {self.program}")
        self.notify("reloading")
        self.announced = False
        self.reloads += 1
        loaded = boot.load(self.files, self.quiet, workers=self.requested_workers)
        tables = boot.compile_config(loaded[0], self.program) if loaded else None
        if tables is None:
            self.reload_failed()
            return
        nworkers = worker_count(self.requested_workers, tables.config)
        if not boot.prepare_listeners(tables, self.pool, nworkers):
            self.reload_failed()
            return
        generation = Generation(self.current.number + 1, tables, nworkers, self.pid,
                                int(self.started * 1000))
        carry_server_states(self.current, generation)
        self.pending = generation
        self.pending_deadline = time.monotonic() + LOAD_TIMEOUT_S
        self.spawn_generation(generation)

    def reload_failed(self) -> None:
        self.failed_reloads += 1
        self.warning("Loading failure!")
        # the current workers still serve: say so, or systemd would wait in "reloading"
        # (HAProxy 2.6's master, back in its loop after a failed reload, says READY=1 too)
        self.announce()

    def advance_generations(self) -> None:
        """Promote the pending generation once all its workers serve; give up on it if one
        died or it takes too long.  Also run the -sf/-st hand-over once we serve."""
        if self.pending is not None:
            if self.pending.ready():
                self.promote(self.pending)
            elif time.monotonic() >= self.pending_deadline:
                alert(f"The new workers did not start within {LOAD_TIMEOUT_S:.0f} s.")
                self.abandon_pending()
        if not self.announced and self.pending is None and self.state == RUNNING and \
                self.current.ready():
            self.announce()         # the first generation serves, or a promoted one
        if self.handover and self.state == RUNNING and self.current.ready():
            signum, pids = self.handover
            self.handover = None
            for pid in pids:
                self.signal_pid(pid, signum)
        if self.reload_wanted and self.pending is None and self.state == RUNNING:
            self.reload_wanted = False
            self.reload()

    def promote(self, generation: Generation) -> None:
        old = self.current
        self.current, self.pending = generation, None
        self.cli.switch(generation.tables.config, self.commands_for(generation))
        self.sampler = RateSampler(generation.tables, generation.shm)
        hard_stop_after = generation.tables.config.global_.hard_stop_after
        for pid, child in list(self.children.items()):
            if child.generation is not old:
                continue
            self.signal_pid(pid, signal.SIGUSR1)      # workers drain; the checker stops
            if hard_stop_after:
                self.old_deadlines[pid] = time.monotonic() + hard_stop_after / 1000 + 0.5
        self.pool.keep_only(generation.tables, generation.nworkers)
        self.end_overstayers(generation.tables.config.global_.mworker_max_reloads)
        self.notice("Loading success.")

    def end_overstayers(self, max_reloads: int) -> None:
        """mworker-max-reloads: an old worker still draining after more reloads than that
        is stopped (SIGTERM), as HAProxy's master does at each reload."""
        if max_reloads < 0:
            return
        for pid, child in list(self.children.items()):
            if child.number != CHECKER and \
                    self.current.number - child.generation.number > max_reloads:
                self.signal_pid(pid, signal.SIGTERM)

    def announce(self) -> None:
        """READY=1 with our pid, once per generation that serves."""
        self.announced = True
        self.notify("ready", self.pid)

    def notify(self, event: str, *args) -> None:
        if self.notifier is not None:
            getattr(self.notifier, event)(*args)

    def abandon_pending(self) -> None:
        generation, self.pending = self.pending, None
        for pid, child in list(self.children.items()):
            if child.generation is generation:
                self.signal_pid(pid, signal.SIGKILL)
        self.pool.keep_only(self.current.tables, self.current.nworkers)
        self.reload_failed()

    # -- children -------------------------------------------------------------------------
    def spawn_generation(self, generation: Generation) -> None:
        for number in range(generation.nworkers):
            self.spawn(generation, number)
        if needs_checker(generation.tables):
            self.spawn(generation, CHECKER)

    def spawn(self, generation: Generation, number: int) -> None:
        pid = os.fork()
        if pid:
            self.children[pid] = Child(number, generation)
            generation.pids[pid] = number
            if number == CHECKER:
                generation.shm.view[shared.G_CHECKER_PID] = pid
            self.notice(f"New {child_role(number)} ({pid}) forked")
            return
        code = 1
        try:
            for signum in self.SIGNALS:
                signal.signal(signum, signal.SIG_DFL)
            os.close(self.pipe_r)
            os.close(self.pipe_w)
            self.cli.close()                 # the CLI sockets are the master's
            self.master_cli.close()
            tables = generation.tables
            if number == CHECKER:
                self.pool.close_all()
                confine(tables.config)
                code = run_checker(tables, generation.shm, self.pid, self.program)
            else:
                own = self.pool.slot(tables, number)
                self.pool.close_all(keep=own.values())
                code = run_worker(tables, generation.shm, number, generation.nworkers,
                                  self.pid, self.program, own)
        except BaseException as exc:  # noqa: BLE001 - a child must never return into the master loop
            alert(f"{child_name(number)}: {exc.__class__.__name__}: {exc}")
        finally:
            os._exit(code)

    def reap_children(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            self.old_deadlines.pop(pid, None)
            if child is None:
                continue
            self.child_exited(pid, child, status)

    def child_exited(self, pid: int, child: Child, status: int) -> None:
        generation, number = child.generation, child.number
        generation.pids.pop(pid, None)
        if number != CHECKER:
            generation.shm.release_slot(number)   # its connections are gone: give back counts
        how = describe_exit(status)
        if generation is self.pending:
            alert(f"New {child_role(number)} ({pid}) {how} while starting; keeping the "
                  "current workers.")
            self.abandon_pending()
            return
        if generation is not self.current:
            self.warning(f"Former {child_role(number)} ({pid}) {how}")
            return
        if self.state != RUNNING:
            return
        # A worker that never published its pid died while booting (a bad certificate, a
        # file it cannot read): five in a row and the master gives up.  One that served and
        # then died (a crash, an OOM kill) is always respawned, later if it keeps dying.
        served = number == CHECKER or generation.shm.worker_pids()[number] == pid
        failed_boot = not served and (not os.WIFEXITED(status) or os.WEXITSTATUS(status) != 0) \
            and time.monotonic() - child.started < BOOT_FAILURE_WINDOW_S
        self.boot_failures = self.boot_failures + 1 if failed_boot else 0
        if self.boot_failures >= MAX_BOOT_FAILURES:
            alert(f"Current worker ({pid}) {how}; workers keep failing at start-up, exiting.")
            self.hard_stop()
            return
        if served and os.WIFEXITED(status) and \
                os.WEXITSTATUS(status) in (128 + signal.SIGINT, 128 + signal.SIGTERM):
            # Stopped by SIGINT/SIGTERM: most often sent to the whole process group (Ctrl-C
            # in a terminal), so the master's own stop is on its way and must not race a
            # respawn.  Only a worker stopped alone is respawned, once the grace is over.
            alert(f"Current {child_role(number)} ({pid}) {how}")
            self.respawns[number] = (generation, time.monotonic() + INTERRUPT_GRACE_S)
            return
        delay = 0.0
        if served:
            now = time.monotonic()
            recent = [t for t in self.crashes.get(number, []) if now - t < CRASH_WINDOW_S]
            recent.append(now)
            self.crashes[number] = recent
            delay = CRASH_BACKOFF_S[min(len(recent), len(CRASH_BACKOFF_S)) - 1]
        if delay:
            alert(f"Current {child_role(number)} ({pid}) {how}; it died {len(recent)} times "
                  f"in {CRASH_WINDOW_S:.0f} s, respawning {child_name(number)} in {delay:g} s.")
            self.respawns[number] = (generation, time.monotonic() + delay)
            return
        alert(f"Current {child_role(number)} ({pid}) {how}; respawning {child_name(number)}.")
        self.spawn(generation, number)

    def run_respawns(self) -> None:
        """Spawn the backed-off respawns that are due (dropped if a reload replaced them)."""
        now = time.monotonic()
        for number, (generation, at) in list(self.respawns.items()):
            if at > now:
                continue
            del self.respawns[number]
            if generation is self.current and self.state == RUNNING:
                self.spawn(generation, number)

    def signal_pid(self, pid: int, signum: int) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    def kill_children(self, signum: int) -> None:
        for pid in list(self.children):
            self.signal_pid(pid, signum)

    # -- what the master CLI shows ------------------------------------------------------------
    def processes(self) -> list:
        """[(pid, kind, reloads survived, start time, current?)] for "show proc"."""
        out = []
        for pid, child in sorted(self.children.items(), key=lambda item: item[1].started):
            if child.number == CHECKER:
                continue
            out.append((pid, "worker", self.current.number - child.generation.number
                        if child.generation is not self.pending else 0,
                        child.started_wall, child.generation is not self.current
                        and child.generation is not self.pending))
        return out

    def version(self) -> str:
        return __version__
