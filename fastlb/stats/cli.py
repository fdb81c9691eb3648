"""The stats socket (HAProxy's CLI), served by the master.

One command per line, several per line when separated by ";".  Without `prompt` the
connection answers the lines it has received and closes; with `prompt` it stays open
and prints "> " before each command.  Every answer ends with an empty line.  Levels
(user < operator < admin) are those of the socket; `operator` and `user` lower a
session's own level.
"""
from __future__ import annotations

import errno
import json
import os
import socket
import stat
import time

from ..logsink import console as _stderr
from .. import shm as shared
from .admin import Admin, AdminError
from .collect import Collector
from .errors import show_errors
from .render import show_info, show_servers_state, show_stat, show_stat_typed

LEVELS = {"user": 0, "operator": 1, "admin": 2}
HELP = [
    ("clear counters [all]", "clear max statistics counters (or all counters)", 1),
    ("disable health <bk>/<srv>", "disable health checks", 2),
    ("disable server <bk>/<srv>", "disable a server for maintenance (use 'set server' instead)", 2),
    ("enable health <bk>/<srv>", "enable health checks", 2),
    ("enable server <bk>/<srv>", "enable a disabled server (use 'set server' instead)", 2),
    ("get weight <bk>/<srv>", "report a server's current weight", 0),
    ("operator", "lower the level of the current CLI session to operator", 0),
    ("set maxconn frontend <frontend> <value>", "change a frontend's maxconn setting", 2),
    ("set maxconn server <bk>/<srv>", "change a server's maxconn setting", 2),
    ("set server <bk>/<srv> [opts]", "change a server's state or weight", 2),
    ("set weight <bk>/<srv>", "change a server's weight (use 'set server' instead)", 2),
    ("show backend", "list backends in the current running config", 0),
    ("show cli level", "display the level of the current CLI session", 0),
    ("show errors [<px>] [request|response]", "report last request and/or response errors for each proxy", 1),
    ("show info [typed]", "report information about the running process", 0),
    ("show servers state [<backend>]", "dump volatile server information (all or for a single backend)", 0),
    ("show sess", "report the current sessions (summary per worker, proxy and server)", 1),
    ("show stat [typed|no-maint|up] [<iid> <type> <sid>]", "report counters for each proxy and server", 0),
    ("shutdown sessions server <bk>/<srv>", "kill sessions on a server", 2),
    ("user", "lower the level of the current CLI session to user", 0),
    ("help [<command>]", "list matching or all commands", 0),
    ("prompt", "toggle interactive mode with prompt", 0),
    ("quit", "disconnect", 0),
]
MAX_LINE = 16384
FDS_PER_MESSAGE = 200            # SCM_RIGHTS carries at most 253 descriptors


def help_text(level: int) -> str:
    lines = ["The following commands are valid at this level:"]
    for usage, text, needed in HELP:
        if level >= needed:
            lines.append(f"  {usage:<39} : {text}")
    return "\n".join(lines) + "\n"


class Session:
    """One CLI connection."""

    def __init__(self, sock: socket.socket, level: int, timeout_ms: int,
                 expose_fd: bool = False):
        self.sock = sock
        self.level = level
        self.expose_fd = expose_fd      # may ask for the listening sockets (_getsocks)
        self.interactive = False
        self.inbuf = b""
        self.timeout = timeout_ms / 1000
        self.last = time.monotonic()


class Commands:
    """Command interpreter: text in, text out (no sockets, shared with tests)."""

    def __init__(self, tables, state: shared.SharedState, admin: Admin):
        self.tables = tables
        self.state = state
        self.admin = admin
        self.collector = Collector(tables, state)

    def run(self, line: str, session: Session) -> str:
        words = line.split()
        if not words:
            return ""
        try:
            return self.dispatch(words, session)
        except AdminError as exc:
            return f"{exc}\n"

    def need(self, session: Session, level: int) -> None:
        if session.level < level:
            raise AdminError("Permission denied")

    def dispatch(self, w: list, session: Session) -> str:
        head = " ".join(w[:2])
        if w[0] == "help":
            return help_text(session.level)
        if w[0] in ("operator", "user"):
            session.level = min(session.level, LEVELS[w[0]])
            return ""
        if head == "show cli" and w[2:3] == ["level"]:
            return {0: "user", 1: "operator", 2: "admin"}[session.level] + "\n"
        if head == "show info":
            return show_info(self.collector, typed="typed" in w[2:])
        if head == "show stat":
            return self.show_stat(w[2:])
        if head == "show servers" and w[2:3] == ["state"]:
            backend = w[3] if len(w) > 3 else None
            if backend is not None and self.admin.backend(backend) is None:
                raise AdminError("Can't find backend.")
            return show_servers_state(self.collector, backend)
        if head == "show backend":
            return "# name\n" + "".join(f"{be.proxy.name}\n" for be in self.tables.backends)
        if head == "show sess":
            self.need(session, LEVELS["operator"])
            return self.show_sess()
        if head == "show errors":
            self.need(session, LEVELS["operator"])
            rest = w[2:]
            which = rest.pop() if rest and rest[-1] in ("request", "response") else None
            return show_errors(self.tables, self.state, rest[0] if rest else None, which)
        if head == "clear counters":
            everything = w[2:3] == ["all"]
            self.need(session, LEVELS["admin"] if everything else LEVELS["operator"])
            self.state.clear_stats(everything)
            return ""
        if head in ("disable server", "enable server", "disable health", "enable health",
                    "get weight", "set weight", "shutdown sessions", "set server",
                    "set maxconn"):
            return self.change(w, session)
        return ("Unknown command, but maybe one of the following ones is a better match:\n"
                + help_text(session.level).split("\n", 1)[1])

    # -- shows ------------------------------------------------------------------------------
    def show_stat(self, args: list) -> str:
        typed = "typed" in args
        numbers = [a for a in args if a.lstrip("-").isdigit()]
        up, no_maint = "up" in args, "no-maint" in args
        if typed:
            return show_stat_typed(self.collector)
        select = tuple(int(n) for n in numbers) if len(numbers) == 3 else (-1, -1, -1)
        return show_stat(self.collector, only_up=up, no_maint=no_maint, select=select)

    def show_sess(self) -> str:
        """A summary (the sessions live in the workers' memory, not in the master's):
        current connections per worker, then per proxy and server."""
        st = self.state
        lines = [f"total: {st.total(0)} current connections"]
        for w, pid in enumerate(st.worker_pids()):
            own = st.view[st.slot_base + w * st.slot_words]
            lines.append(f"worker {w + 1} pid={pid}: {own} connections")
        for fe in self.tables.frontends:
            lines.append(f"fe={fe.proxy.name}: {st.total(st.fe_off + fe.index)} sessions")
        for be in self.tables.backends:
            lines.append(f"be={be.proxy.name}: {st.summed(st.be_off + be.index)} sessions, "
                         f"{st.total(st.beq_off + be.index)} queued")
            for i, name in enumerate(be.server_names):
                k = be.first_server_shm + i
                lines.append(f"  srv={be.proxy.name}/{name}: {st.summed(st.srv_off + k)} "
                             f"sessions, {st.total(st.srvq_off + k)} queued")
        return "\n".join(lines) + "\n"

    # -- changes ----------------------------------------------------------------------------
    def change(self, w: list, session: Session) -> str:
        verb = " ".join(w[:2])
        if verb == "get weight":
            if len(w) < 3:
                raise AdminError("Require 'backend/server'.")
            be, i = self.admin.server(w[2])
            return self.admin.get_weight(be, i) + "\n"
        self.need(session, LEVELS["admin"])
        if verb == "set maxconn":
            if len(w) < 5 or w[2] not in ("server", "frontend"):
                raise AdminError("'set maxconn' only supports 'frontend', 'server' and "
                                 "'global'.")
            if w[2] == "frontend":
                self.admin.set_frontend_maxconn(self.admin.frontend(w[3]), w[4])
            else:
                be, i = self.admin.server(w[3])
                self.admin.set_server_maxconn(be, i, w[4])
            return ""
        if len(w) < 3:
            raise AdminError("Require 'backend/server'.")
        if verb == "shutdown sessions":
            if len(w) < 4 or w[2] != "server":
                raise AdminError("Require 'backend/server'.")
            be, i = self.admin.server(w[3])
            self.admin.shutdown_sessions(be, i)
            return ""
        be, i = self.admin.server(w[2])
        if verb == "disable server":
            self.admin.maint(be, i)
        elif verb == "enable server":
            self.admin.ready(be, i)
        elif verb in ("disable health", "enable health"):
            self.admin.set_health_checks(be, i, w[0] == "enable")
        elif verb == "set weight":
            if len(w) < 4:
                raise AdminError("Require <weight> or <weight%>.")
            self.admin.set_weight(be, i, w[3])
        elif verb == "set server":
            return self.set_server(be, i, w[3:])
        return ""

    def set_server(self, be, i: int, args: list) -> str:
        if not args:
            raise AdminError("usage: set server <backend>/<server> "
                             "addr | agent | agent-addr | agent-port | agent-send | "
                             "check-addr | check-port | fqdn | health | ssl | state | weight")
        what = args[0]
        if what == "state":
            target = args[1] if len(args) > 1 else ""
            if target == "ready":
                self.admin.ready(be, i)
            elif target == "drain":
                self.admin.drain(be, i)
            elif target == "maint":
                self.admin.maint(be, i)
            else:
                raise AdminError("'set server <srv> state' expects 'ready', 'drain' and "
                                 "'maint'.")
            return ""
        if what == "weight":
            if len(args) < 2:
                raise AdminError("Require <weight> or <weight%>.")
            self.admin.set_weight(be, i, args[1])
            return ""
        if what == "health":
            target = args[1] if len(args) > 1 else ""
            if target not in ("up", "stopping", "down"):
                raise AdminError("'set server <srv> health' expects 'up', 'stopping', or "
                                 "'down'.")
            self.admin.set_check_health(be, i, target != "down")
            return ""
        raise AdminError(f"'set server <srv> {what}' is not supported by fastlb yet.")


class CliServer:
    """The master's stats sockets: listeners and their connections, driven by select()."""

    def __init__(self, config, commands: Commands, pool=None):
        self.commands = commands
        self.config = config
        self.pool = pool                            # the listeners "_getsocks" hands over
        self.listeners: dict[int, tuple] = {}      # fd -> (socket, level, expose-fd)
        self.sessions: dict[int, Session] = {}

    def specs(self) -> list:
        return self.config.global_.stats_sockets

    def open(self) -> None:
        for spec in self.specs():
            self.listen(spec)

    def listen(self, spec) -> None:
        if spec.fd is not None:
            sock = socket.socket(fileno=spec.fd)
        elif spec.path is not None:
            try:
                if stat.S_ISSOCK(os.stat(spec.path).st_mode):
                    os.unlink(spec.path)
            except FileNotFoundError:
                pass
            # Bound under a temporary name, given its mode, then renamed into place (as
            # HAProxy does): the socket never exists at its path with the umask's mode.
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            temporary = f"{spec.path}.{os.getpid()}.tmp"
            try:
                os.unlink(temporary)
            except FileNotFoundError:
                pass
            sock.bind(temporary)
            if spec.mode is not None:
                os.chmod(temporary, spec.mode)
            os.rename(temporary, spec.path)
        else:
            family = socket.AF_INET6 if ":" in (spec.host or "") else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((spec.host or "0.0.0.0", spec.port))
        sock.listen(16)
        sock.setblocking(False)
        sock.set_inheritable(False)
        self.listeners[sock.fileno()] = (sock, LEVELS[spec.level], spec.expose_fd)

    def switch(self, config, commands: Commands) -> None:
        """A reload: answer from the new generation; reopen the sockets if they changed."""
        def key(specs):
            return [(s.path, s.host, s.port, s.fd, s.mode, s.level, s.expose_fd) for s in specs]
        changed = key(self.config.global_.stats_sockets) != key(config.global_.stats_sockets)
        self.config, self.commands = config, commands
        if changed:
            for sock, _, _ in self.listeners.values():
                sock.close()
            self.listeners.clear()
            for spec in self.specs():
                try:
                    self.listen(spec)
                except OSError as exc:       # the reload stands; this socket is missing
                    _stderr("ALERT", f"Starting frontend GLOBAL: cannot bind stats socket "
                                     f"({exc.strerror}) [{spec.path or spec.host}]")

    def close(self) -> None:
        for sock, _, _ in self.listeners.values():
            sock.close()
        for session in self.sessions.values():
            session.sock.close()
        self.listeners.clear()
        self.sessions.clear()

    def fds(self) -> list:
        return list(self.listeners) + list(self.sessions)

    def timeout(self) -> float:
        """Seconds until the next idle session times out."""
        if not self.sessions:
            return 60.0
        now = time.monotonic()
        return max(0.0, min(s.last + s.timeout - now for s in self.sessions.values()))

    def on_ready(self, fd: int) -> None:
        if fd in self.listeners:
            self.accept(*self.listeners[fd])
        elif fd in self.sessions:
            self.read(self.sessions[fd])

    def expire(self) -> None:
        now = time.monotonic()
        for session in list(self.sessions.values()):
            if now >= session.last + session.timeout:
                self.drop(session)

    def owns(self, fd: int) -> bool:
        return fd in self.listeners or fd in self.sessions

    def accept(self, listener: socket.socket, level: int, expose_fd: bool = False) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE):
                    return
                raise
            sock.setblocking(False)
            self.sessions[sock.fileno()] = Session(sock, level,
                                                   self.config.global_.stats_timeout, expose_fd)

    def drop(self, session: Session) -> None:
        self.sessions.pop(session.sock.fileno(), None)
        session.sock.close()

    def send(self, session: Session, text: str) -> bool:
        data = text.encode()
        session.sock.settimeout(2.0)     # a local reader; do not let one stall the master
        try:
            session.sock.sendall(data)
        except OSError:
            self.drop(session)
            return False
        finally:
            if session.sock.fileno() >= 0:
                session.sock.setblocking(False)
        return True

    def read(self, session: Session) -> None:
        eof = False
        while True:
            try:
                chunk = session.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                eof = True
                break
            if not chunk:
                eof = True
                break
            session.inbuf += chunk
            if len(session.inbuf) > MAX_LINE and b"\n" not in session.inbuf:
                self.drop(session)
                return
        session.last = time.monotonic()
        executed = False
        while b"\n" in session.inbuf:
            line, session.inbuf = session.inbuf.split(b"\n", 1)
            if not self.execute(session, line.decode("utf-8", "replace").rstrip("\r")):
                return
            executed = True
        if eof and session.inbuf.strip():
            line, session.inbuf = session.inbuf, b""
            if not self.execute(session, line.decode("utf-8", "replace")):
                return
            executed = True
        # without prompt: answer every line received so far, then close
        if eof or (executed and not session.interactive):
            self.drop(session)

    def execute(self, session: Session, line: str) -> bool:
        """Run one line (maybe several ';' commands); False once the session is closed."""
        out = []
        for command in line.split(";"):
            command = command.strip()
            if command == "quit":
                self.send(session, "".join(out))
                self.drop(session)
                return False
            if command == "prompt":
                session.interactive = not session.interactive
                continue
            if command == "_getsocks":
                self.send(session, "".join(out))
                self.send_listeners(session)
                return False
            text = self.commands.run(command, session)
            if text is None:                 # the command ends the session (master "reload")
                self.send(session, "".join(out))
                self.drop(session)
                return False
            out.append(text + "\n")
        if session.interactive:
            out.append("> ")
        return self.send(session, "".join(out))

    def send_listeners(self, session: Session) -> None:
        """``_getsocks`` on a socket with ``expose-fd listeners``: hand the listening
        sockets to a new fastlb started with ``-x`` (or ``-sf``), so that it serves the very
        sockets clients are connecting to.  Each message is a JSON list of [key, slot]
        followed by that many descriptors (SCM_RIGHTS); an empty list ends."""
        if not session.expose_fd or session.level < LEVELS["admin"] or self.pool is None:
            self.send(session, "Permission denied\n\n")
            self.drop(session)
            return
        names, fds = self.pool.export()
        session.sock.settimeout(2.0)
        try:
            for start in range(0, len(fds), FDS_PER_MESSAGE):
                batch = names[start:start + FDS_PER_MESSAGE]
                socket.send_fds(session.sock, [json.dumps(batch).encode() + b"\n"],
                                fds[start:start + FDS_PER_MESSAGE])
            session.sock.sendall(b"[]\n")
        except OSError:
            pass
        self.drop(session)


def fetch_listeners(path: str, timeout: float = 5.0) -> tuple[list, list[int]]:
    """The client side of ``_getsocks`` (``fastlb -x <socket>``): ([key, slot], fds)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    names: list = []
    fds: list[int] = []
    try:
        sock.connect(path)
        sock.sendall(b"_getsocks\n")
        buffer = b""
        while True:
            data, received, _, _ = socket.recv_fds(sock, 65536, FDS_PER_MESSAGE)
            fds += received
            if not data:
                break
            buffer += data
            done = False
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if line.startswith(b"Permission denied"):
                    raise PermissionError(f"'{path}' does not expose its listeners "
                                          "(stats socket ... level admin expose-fd listeners)")
                batch = json.loads(line) if line.strip() else []
                if not batch:
                    done = True
                    break
                names += batch
            if done:
                break
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    finally:
        sock.close()
    if len(names) != len(fds):
        for fd in fds:
            os.close(fd)
        raise OSError(f"'{path}' sent {len(fds)} descriptors for {len(names)} listeners")
    return names, fds
