"""Active health checks: one checker process for all workers.

The master forks it next to the workers (``fastlb: checker``) and respawns it if it
dies.  It checks every server that has ``check`` once per interval, whatever the
number of workers, and publishes the results in shared memory (state bits, health
counter, check status, duration); workers see a state change at their next pick.

Rules (HAProxy 2.6, ../shared/spec/haproxy-compat.md §7):
- every server starts UP with health = rise, so the first failure takes it down;
- success: health + 1, and once >= rise it jumps to rise + fall - 1;
  failure: health - 1, and once < rise it drops to 0; UP while health >= rise;
- the first checks are spread over the first ``inter``; then every ``inter`` while UP
  and steady, ``fastinter`` while changing, ``downinter`` while fully DOWN;
- a check is a TCP connect, or with ``option httpchk`` an HTTP request whose answer
  must match ``http-check expect`` (default: a 2xx or 3xx status);
- the connect is bounded by ``timeout connect`` and the answer by ``timeout check``
  (each falls back to ``inter``).
"""
from __future__ import annotations

import errno
import os
import re
import selectors
import signal
import socket
import struct
import time
from dataclasses import dataclass
from typing import Optional

from setproctitle import setproctitle

from .config.model import HttpCheck, Proxy, Server
from .logsink import ALERT, EMERG, LogSink, NOTICE, console as _stderr
from .mailers import Delivery, deliveries, wanted
from . import shm as shared
from .runtime.listeners import network_namespace
from .runtime.tables import RuntimeTables

OBSERVE_POLL_S = 0.05       # how often the traffic error counts are looked at
READ_LIMIT = 16384



PP2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_header(version: int, src: tuple, dst: tuple, family: int,
                 never_local: bool = False) -> bytes:
    """check-send-proxy: v1 (send-proxy) carries the check connection's own addresses; v2
    (send-proxy-v2) says LOCAL, as HAProxy 2.2 and later do for a connection they open
    themselves, unless ``pp2-never-send-local`` asks for the addresses (the old way)."""
    if family not in (socket.AF_INET, socket.AF_INET6) or (version == 2 and not never_local):
        return PP2_SIGNATURE + b"\x20\x00\x00\x00" if version == 2 else b"PROXY UNKNOWN\r\n"
    if version == 2:
        packed = socket.inet_pton(family, src[0]) + socket.inet_pton(family, dst[0])
        body = packed + struct.pack("!HH", src[1], dst[1])
        fam = 0x11 if family == socket.AF_INET else 0x21
        return PP2_SIGNATURE + bytes((0x21, fam)) + struct.pack("!H", len(body)) + body
    proto = "TCP4" if family == socket.AF_INET else "TCP6"
    return f"PROXY {proto} {src[0]} {dst[0]} {src[1]} {dst[1]}\r\n".encode()


@dataclass
class Result:
    status: str
    code: Optional[int] = None
    info: str = ""

    @property
    def passed(self) -> bool:
        return self.status in ("L4OK", "L7OK")


class ServerCheck:
    """One checked server: its schedule, its health counter and the check in flight."""

    def __init__(self, backend: Proxy, backend_index: int, server: Server, shm_index: int,
                 state: shared.SharedState):
        self.backend = backend
        self.backend_index = backend_index
        self.server = server
        self.k = shm_index
        self.state = state
        self.rise, self.fall = server.rise, server.fall
        self.inter = server.inter
        self.fastinter = server.fastinter or server.inter
        self.downinter = server.downinter or server.inter
        t = backend.timeouts
        self.t_connect = t.connect or server.inter
        self.t_check = t.check or server.inter
        self.address = (server.check_addr or server.address.ip,
                        server.check_port or server.address.port)
        if server.address.family == socket.AF_UNIX:
            self.address = server.address.ip
        self.family = server.address.family
        self.http: Optional[HttpCheck] = backend.httpchk if (
            backend.httpchk is not None and backend.httpchk.enabled) else None
        self.health = state.load(state.server_word(shm_index, shared.SRV_HEALTH))
        self.sock: Optional[socket.socket] = None
        self.phase = "idle"
        self.started = 0.0
        self.deadline = 0.0
        self.next_at = 0.0
        self.out = b""
        self.received = b""

    # -- health counter ---------------------------------------------------------------------
    @property
    def up(self) -> bool:
        return self.health >= self.rise

    def interval(self) -> float:
        if self.health == 0:
            return self.downinter / 1000
        if self.health == self.rise + self.fall - 1:
            return self.inter / 1000
        return self.fastinter / 1000

    def apply(self, passed: bool) -> bool:
        """Move the health counter; True when it moved."""
        before = self.health
        if passed:
            if self.health < self.rise + self.fall - 1:
                self.health += 1
                if self.health >= self.rise:
                    self.health = self.rise + self.fall - 1
        elif self.health > 0:
            self.health -= 1
            if self.health < self.rise:
                self.health = 0
        return self.health != before

    def status_text(self) -> str:
        """"a/b UP|DOWN" as HAProxy prints it."""
        if self.health >= self.rise:
            return f"{self.health - self.rise + 1}/{self.fall} UP"
        return f"{self.health}/{self.rise} DOWN"

    # -- the check itself -------------------------------------------------------------------
    def request(self) -> bytes:
        check = self.http
        lines = [f"{check.method} {check.uri} {check.version}"]
        names = {name.lower() for name, _ in check.headers}
        lines += [f"{name}: {value}" for name, value in check.headers]
        if check.body:
            lines.append(f"content-length: {len(check.body.encode())}")
        if check.version.upper() == "HTTP/1.1" and "connection" not in names:
            lines.append("connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n" + check.body).encode("latin-1")

    def evaluate_http(self, data: bytes, complete: bool) -> Optional[Result]:
        """A verdict from what was read so far, or None to read more."""
        head, sep, body = data.partition(b"\r\n\r\n")
        if not sep and not complete:
            return None
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        match = re.match(r"HTTP/\d\.\d (\d{3})(?: (.*))?$", status_line)
        if not match:
            return Result("L7RSP", info="")
        code, reason = int(match.group(1)), (match.group(2) or "")
        expect = self.http.expect
        if expect is None:
            ok = 200 <= code < 400
            return Result("L7OK" if ok else "L7STS", code, "" if ok else reason)
        kind, negate, pattern = expect
        if kind in ("status", "rstatus"):
            hit = (str(code) in pattern.split(",")) if kind == "status" else \
                bool(re.search(pattern, str(code)))
            return Result("L7OK" if hit != negate else "L7STS", code,
                          "" if hit != negate else reason)
        if not complete:
            length = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
            if not length or len(body) < int(length.group(1)):
                return None
        text = body.decode("latin-1")
        hit = (pattern in text) if kind == "string" else bool(re.search(pattern, text))
        return Result("L7OK" if hit != negate else "L7RSP", code, reason)


class Checker:
    def __init__(self, tables: RuntimeTables, state: shared.SharedState, log_pid: int,
                 program: str):
        self.tables = tables
        self.state = state
        self.selector = selectors.DefaultSelector()
        self.checks: list[ServerCheck] = []
        self.by_backend: dict[int, list[int]] = {}
        g = tables.config.global_
        self.sinks = {}
        for be in tables.backends:
            self.sinks[be.index] = LogSink(be.proxy.logs, be.proxy.log_tag or g.log_tag or program,
                                           log_pid, g.log_send_hostname)
            for i, server in enumerate(be.server_models):
                if server is not None and server.check:
                    self.checks.append(ServerCheck(be.proxy, be.index, server,
                                                   be.first_server_shm + i, state))
        self.observed = [c for c in self.checks if c.server.observe]
        self.mails: list = []           # email alerts being delivered (fastlb/mailers.py)
        now = time.monotonic()
        for position, check in enumerate(self.checks):
            # spread the first checks over the first interval, as HAProxy does
            check.next_at = now + check.inter / 1000 * position / max(len(self.checks), 1)
        self.running = True

    # -- loop -------------------------------------------------------------------------------
    def run(self) -> None:
        while self.running:
            now = time.monotonic()
            for check in self.checks:
                if check.phase == "idle" and check.next_at <= now:
                    self.start(check, now)
                elif check.phase != "idle" and check.deadline <= now:
                    self.timed_out(check, now)
            if self.observed:
                self.apply_observations(now)
            wake = min([c.next_at if c.phase == "idle" else c.deadline for c in self.checks],
                       default=now + 1.0)
            if self.observed:
                wake = min(wake, now + OBSERVE_POLL_S)
            if self.mails:
                self.expire_mails(now)
                wake = min([wake] + [mail.deadline for mail in self.mails])
            for key, events in self.selector.select(max(0.0, min(wake - time.monotonic(), 1.0))):
                if isinstance(key.data, Delivery):
                    self.mail_event(key.data, events)
                else:
                    self.on_event(key.data, events)

    # -- email alerts -----------------------------------------------------------------------
    def mail(self, backend: Proxy, level: str, message: str) -> None:
        """HAProxy's send_email_alert(): the message (without its final dot) to each relay,
        when the backend's email-alert level takes it."""
        if not wanted(backend.email_alert, level):
            return
        try:
            mails = deliveries(backend.email_alert, self.tables.config.mailers,
                               message.rstrip("."))
        except OSError:
            return                          # no socket to be had now: the alert is lost
        for mail in mails:
            self.mails.append(mail)
            self.selector.register(mail.sock, mail.events(), mail)

    def mail_event(self, mail: Delivery, events: int) -> None:
        mail.on_event(events)
        if mail.done:
            self.drop_mail(mail)
        else:
            self.selector.modify(mail.sock, mail.events(), mail)

    def expire_mails(self, now: float) -> None:
        for mail in [m for m in self.mails if m.expired(now)]:
            self.drop_mail(mail)

    def drop_mail(self, mail: Delivery) -> None:
        self.selector.unregister(mail.sock)
        mail.sock.close()
        self.mails.remove(mail)

    def start(self, check: ServerCheck, now: float) -> None:
        if self.state.server_state(check.k) & (shared.ST_ANY_MAINT | shared.ST_CHECK_OFF):
            # paused while in maintenance or after "disable health"
            check.next_at = now + check.inter / 1000
            return
        # the stats socket may have set it ("enable server" sets health to rise)
        check.health = self.state.load(self.state.server_word(check.k, shared.SRV_HEALTH))
        check.started = now
        check.received = b""
        try:
            # a server's namespace is its checks' too
            with network_namespace(check.server.namespace):
                sock = socket.socket(check.family, socket.SOCK_STREAM)
            sock.setblocking(False)
        except OSError as exc:
            self.finish(check, Result("SOCKERR", info=exc.strerror or ""))
            return
        check.sock = sock
        if check.server.tcp_ut and check.family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, check.server.tcp_ut)
        owner = check.server if check.server.source is not None else check.backend
        source = owner.source
        if source is not None and check.family != socket.AF_UNIX:
            # the server's (else the backend's) source address and interface, as its
            # traffic's (a usesrc address is a client's: checks keep <addr>, as HAProxy)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if owner.source_interface:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE,
                                    owner.source_interface.encode()[:15] + b"\0")
                sock.bind((source[1], source[2]))
            except OSError as exc:
                self.finish(check, Result("SOCKERR", info=exc.strerror or ""))
                return
        code = sock.connect_ex(check.address)
        if code not in (0, errno.EINPROGRESS):
            self.finish(check, Result("L4CON", info=os.strerror(code)))
            return
        check.phase = "connect"
        check.deadline = now + check.t_connect / 1000
        self.selector.register(sock, selectors.EVENT_WRITE, check)

    def on_event(self, check: ServerCheck, events: int) -> None:
        sock = check.sock
        if check.phase == "connect":
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                self.finish(check, Result("L4CON", info=os.strerror(code)))
                return
            header = b""
            if check.server.check_send_proxy:
                header = proxy_header(check.server.send_proxy, sock.getsockname(),
                                      sock.getpeername(), check.family,
                                      self.tables.config.global_.pp2_never_send_local)
            if check.http is None:
                if header:
                    try:
                        sock.send(header)     # a fresh socket takes these few bytes whole
                    except OSError as exc:
                        self.finish(check, Result("L4CON", info=exc.strerror or ""))
                        return
                self.finish(check, Result("L4OK"))
                return
            check.out = header + check.request()
            check.phase = "send"
            check.deadline = time.monotonic() + check.t_check / 1000
        if check.phase == "send":
            try:
                sent = sock.send(check.out)
            except BlockingIOError:
                return
            except OSError as exc:
                self.finish(check, Result("L7RSP", info=exc.strerror or ""))
                return
            check.out = check.out[sent:]
            if check.out:
                return
            check.phase = "read"
            self.selector.modify(sock, selectors.EVENT_READ, check)
            return
        if check.phase == "read":
            try:
                data = sock.recv(READ_LIMIT)
            except BlockingIOError:
                return
            except OSError as exc:
                data = b""
                if not check.received:
                    self.finish(check, Result("L7RSP", info=exc.strerror or ""))
                    return
            check.received += data
            complete = not data or len(check.received) >= READ_LIMIT
            result = check.evaluate_http(check.received, complete)
            if result is None and complete:
                result = Result("L7RSP")
            if result is not None:
                self.finish(check, result)

    def timed_out(self, check: ServerCheck, now: float) -> None:
        if check.phase == "connect":
            self.finish(check, Result("L4TOUT"))
        elif check.received:
            self.finish(check, check.evaluate_http(check.received, True) or Result("L7RSP"))
        else:
            self.finish(check, Result("L7TOUT"))

    # -- passive checks (observe, error-limit, on-error) --------------------------------------
    def apply_observations(self, now: float) -> None:
        """Workers count each observed server's consecutive traffic errors in shared memory;
        at error-limit the server's on-error action runs here, as HAProxy's does."""
        st = self.state
        for check in self.observed:
            word = st.server_word(check.k, shared.SRV_ERRORS)
            errors = st.load(word)
            if errors < check.server.error_limit:
                continue
            st.store(word, 0)
            st.add(st.server_word(check.k, shared.SRV_HANAFAIL), 1)
            action = check.server.on_error
            was_up = check.up
            if action == "fail-check":
                check.apply(False)
            elif action == "sudden-death" and check.up:
                check.health = check.rise       # one more failure takes it down
            elif action == "mark-down":
                check.health = 0
            st.store(st.server_word(check.k, shared.SRV_HEALTH), check.health)
            if check.phase == "idle":
                check.next_at = min(check.next_at, now + check.fastinter / 1000)
            if was_up != check.up:
                result = Result("L7STS" if check.server.observe == "layer7" else "L4CON",
                                info=f"Detected {errors} consecutive errors")
                self.transition(check, result, 0, reason="Health analyze")

    # -- results ----------------------------------------------------------------------------
    def finish(self, check: ServerCheck, result: Result) -> None:
        now = time.monotonic()
        if check.sock is not None:
            try:
                self.selector.unregister(check.sock)
            except (KeyError, ValueError):
                pass
            check.sock.close()
            check.sock = None
        check.phase = "idle"
        duration = int((now - check.started) * 1000)
        was_up = check.up
        moved = check.apply(result.passed)
        st = self.state
        if not result.passed and was_up:
            st.add(st.server_word(check.k, shared.SRV_CHKFAIL), 1)
        previous_status = st.load(st.server_word(check.k, shared.SRV_CHECK_STATUS))
        status_index = shared.CHECK_STATUSES.index(result.status)
        st.store(st.server_word(check.k, shared.SRV_HEALTH), check.health)
        st.store(st.server_word(check.k, shared.SRV_CHECK_STATUS), status_index)
        st.store(st.server_word(check.k, shared.SRV_CHECK_CODE), result.code or 0)
        st.store(st.server_word(check.k, shared.SRV_CHECK_MS), duration)
        if check.backend.options.log_health_checks and (moved or previous_status != status_index):
            self.log_check(check, result, duration)
        if was_up != check.up:
            self.transition(check, result, duration)
        check.next_at = now + check.interval()

    def describe(self, result: Result) -> str:
        text = f"reason: {shared.CHECK_DESCRIPTIONS[result.status]}"
        if result.code is not None:
            text += f", code: {result.code}"
        if result.info:
            text += f', info: "{result.info}"'
        return text

    def log_check(self, check: ServerCheck, result: Result, duration: int) -> None:
        kind = "backup server" if check.server.backup else "server"
        verdict = "succeeded" if result.passed else "failed"
        self.sinks[check.backend_index].send(
            NOTICE, f"Health check for {kind} {check.backend.name}/{check.server.name} "
                    f"{verdict}, {self.describe(result)}, check duration: {duration}ms, "
                    f"status: {check.status_text()}.")

    def usable_counts(self, backend_index: int) -> tuple[int, int]:
        be = self.tables.backends[backend_index]
        active = backup = 0
        for i, server in enumerate(be.server_models):
            if server is None:
                continue
            bits = self.state.server_state(be.first_server_shm + i)
            if bits & shared.ST_RUNNING and not bits & shared.ST_ANY_MAINT:
                if server.backup:
                    backup += 1
                else:
                    active += 1
        return active, backup

    def transition(self, check: ServerCheck, result: Result, duration: int,
                   reason: str = "") -> None:
        st = self.state
        bits = st.server_state(check.k)
        bits = (bits | shared.ST_RUNNING) if check.up else (bits & ~shared.ST_RUNNING)
        st.set_server_state(check.backend_index, check.k, bits)
        active, backup = self.usable_counts(check.backend_index)
        be = self.tables.backends[check.backend_index]
        k = check.k
        sessions = st.summed(st.srv_off + k)
        queued = st.total(st.srvq_off + k)
        name = f"{check.backend.name}/{check.server.name}"
        kind = "Backup Server" if check.server.backup else "Server"
        sink = self.sinks[check.backend_index]
        # with option log-health-checks the check line has just given the details
        details = "" if check.backend.options.log_health_checks else \
            f", {self.describe(result)}, check duration: {duration}ms"
        if reason:
            details = f", reason: {reason}, info: \"{result.info}\""
        if check.up:
            message = (f"{kind} {name} is UP{details}. {active} active and {backup} backup "
                       f"servers online. 0 sessions requeued, {queued} total in queue.")
            sink.send(NOTICE, message)
            _stderr("WARNING", message)
            self.mail(check.backend, "notice", message)
        else:
            message = (f"{kind} {name} is DOWN{details}. {active} active and {backup} backup "
                       f"servers left. {sessions} sessions active, 0 requeued, {queued} "
                       f"remaining in queue.")
            sink.send(ALERT, message)
            _stderr("WARNING", message)
            self.mail(check.backend, "alert", message)
            if active == 0 and backup == 0:
                message = f"{be.proxy.type_name} {be.proxy.name} has no server available!"
                sink.send(EMERG, message)
                _stderr("ALERT", message)


def run_checker(tables: RuntimeTables, state: shared.SharedState, master_pid: int,
                program: str) -> int:
    """Body of the checker process; returns its exit code."""
    from .loop.core import set_parent_death_signal
    setproctitle(f"{program}: checker")
    set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != master_pid:
        return 1
    checker = Checker(tables, state, master_pid, program)

    def stop(*_):
        raise _Stop()

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1):
        signal.signal(signum, stop)
    for signum in (signal.SIGHUP, signal.SIGUSR2):
        signal.signal(signum, signal.SIG_IGN)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    from .runtime.process import forbid_new_processes
    forbid_new_processes(tables.config)      # as a worker: checks never need a process
    try:
        checker.run()
    except _Stop:
        pass
    return 0


class _Stop(Exception):
    """A stop signal: leave the loop at once (select() would otherwise resume)."""


def needs_checker(tables: RuntimeTables) -> bool:
    return any(server is not None and server.check
               for be in tables.backends for server in be.server_models)
