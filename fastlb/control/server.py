"""The master's CLI sockets: listeners, connections, one command per line.

One command per line, several per line when separated by ";".  Without `prompt` the
connection answers the lines it has received and closes; with `prompt` it stays open
and prints "> " before each command.  Every answer ends with an empty line.  Levels
(user < operator < admin) are those of the socket; `operator` and `user` lower a
session's own level.  What a command answers is its interpreter's business (cli.py for
the stats socket, master_cli.py for the master CLI); the connection's own words
(`prompt`, `quit`, `_getsocks`) are answered here.
"""
from __future__ import annotations

import errno
import json
import os
import socket
import stat
import time

from ..logsink import console as _stderr
from .commands import ADMIN, LEVELS

MAX_LINE = 16384
FDS_PER_MESSAGE = 200            # SCM_RIGHTS carries at most 253 descriptors


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


class CliServer:
    """The master's stats sockets: listeners and their connections, driven by select()."""

    def __init__(self, config, commands, pool=None):
        self.commands = commands
        self.config = config
        self.pool = pool                            # the listeners "_getsocks" hands over
        self.listeners: dict[int, tuple] = {}      # fd -> (socket, level, expose-fd)
        self.sessions: dict[int, Session] = {}

    def specs(self) -> list:
        return self.config.global_.stats_sockets

    def open(self, bound: dict | None = None) -> None:
        """Listen on the sockets ``bind_all`` bound at start-up (before a daemon forks, so
        that a failure is reported and exits 1), else bind them now."""
        if bound is not None:
            self.listeners.update(bound)
            return
        for spec in self.specs():
            self.listen(spec)

    def listen(self, spec) -> None:
        sock = bind_cli_socket(spec)
        self.listeners[sock.fileno()] = (sock, LEVELS[spec.level], spec.expose_fd)

    def switch(self, config, commands) -> None:
        """A reload: answer from the new generation; reopen the sockets if they changed."""
        def key(specs):
            return [(s.path, s.host, s.port, s.fd, s.mode, s.uid, s.gid, s.level, s.expose_fd)
                    for s in specs]
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
        if not session.expose_fd or session.level < ADMIN or self.pool is None:
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


def bind_cli_socket(spec) -> socket.socket:
    """A listening socket for a ``stats socket`` or ``-S`` spec; OSError if it cannot."""
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
            try:
                os.unlink(temporary)
            except FileNotFoundError:
                pass
            sock.bind(temporary)
            if spec.mode is not None:
                os.chmod(temporary, spec.mode)
            if spec.uid is not None or spec.gid is not None:
                os.chown(temporary, -1 if spec.uid is None else spec.uid,
                         -1 if spec.gid is None else spec.gid)
            os.rename(temporary, spec.path)
        except OSError:
            sock.close()
            raise
    else:
        family = socket.AF_INET6 if ":" in (spec.host or "") else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((spec.host or "0.0.0.0", spec.port))
        except OSError:
            sock.close()
            raise
    sock.listen(16)
    sock.setblocking(False)
    sock.set_inheritable(False)
    return sock


def bind_error(spec, proxy: str, exc: OSError) -> str:
    """HAProxy's words for a CLI socket it cannot bind (``proxy``: "frontend GLOBAL" for a
    stats socket, "proxy MASTER" for -S)."""
    if spec.fd is not None:
        what = f"cannot bind inherited fd@{spec.fd} ({exc.strerror}) for [fd@{spec.fd}]"
    elif spec.path is not None:
        what = f"cannot bind UNIX socket ({exc.strerror}) [{spec.path}]"
    else:
        what = f"cannot bind socket ({exc.strerror}) for [{spec.host or '0.0.0.0'}:{spec.port}]"
    return f"Binding [{spec.origin}] for {proxy}: {what}"


def bind_all(specs: list, proxy: str) -> tuple[dict, list]:
    """Bind every socket of ``specs``: (listeners for ``CliServer.open``, errors)."""
    bound, errors = {}, []
    for spec in specs:
        try:
            sock = bind_cli_socket(spec)
        except OSError as exc:
            errors.append(bind_error(spec, proxy, exc))
            continue
        bound[sock.fileno()] = (sock, LEVELS[spec.level], spec.expose_fd)
    return bound, errors


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
