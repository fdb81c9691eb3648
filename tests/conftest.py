"""Shared helpers: real fastlb processes, real backend servers, real sockets on loopback."""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time

import psutil
import pytest

# -P: never let the working directory (a source checkout without the compiled
# extension) shadow the installed package.
FASTLB = [sys.executable, "-P", "-m", "fastlb"]
# ... but a checkout whose extension is built in place (a developer's tree, a git worktree)
# is what is under test: every fastlb, haproxy-side helper and tool the tests start runs it.
_TREE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if any(name.startswith("core.") and name.endswith(".so")
       for name in os.listdir(os.path.join(_TREE, "fastlb", "loop"))):
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (_TREE, os.environ.get("PYTHONPATH")) if p)


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port free now and not handed out before in this run: the kernel may give the same
    ephemeral port to two bind(0) calls in a row, and a config whose two listeners got one
    port shares it through SO_REUSEPORT (a landing CI saw connections for one frontend
    logged by another)."""
    if len(_HANDED_OUT) > 20000:
        _HANDED_OUT.clear()
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def listening_sockets(port: int) -> int:
    return sum(1 for c in psutil.net_connections("tcp")
               if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port)


def wait_until(predicate, timeout=5.0, interval=0.01, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


@contextlib.contextmanager
def serving(program: str, cfg, ports):
    """Debian's haproxy or fastlb on ``cfg`` (a differential test's two programs), once
    every port in ``ports`` listens; stopped on leaving."""
    cmd = ["haproxy", "-f", str(cfg)] if program == "haproxy" else FASTLB + ["-f", str(cfg)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for port in ports:
            wait_until(lambda: listening_sockets(port) > 0, message=f"{program} listening")
        yield proc
    finally:
        proc.terminate()
        proc.wait(5)


class HoldingServer:
    """Accepts connections, notes which server each request reached, and answers only
    when released: the requests it holds count as that server's current sessions."""

    def __init__(self, name, arrivals):
        self.name, self.arrivals = name, arrivals
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.request_lines = []          # each request's first line, in arrival order
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(5)
            try:
                head, _ = read_head(conn, b"")
            except OSError:
                conn.close()
                continue
            self.held.append(conn)
            self.arrivals.append(self.name)
            self.request_lines.append(head.split(b"\r\n", 1)[0] if head else b"")

    def release_one(self):
        """Answer the oldest held request."""
        conn = self.held.pop(0)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        conn.close()

    def release(self):
        for conn in self.held:
            try:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            conn.close()
        self.held = []

    def close(self):
        self.release()
        self.sock.close()


class FastLB:
    """A fastlb master started on a config text; ``ports`` are the frontend ports to wait for."""

    def __init__(self, tmp_path, config: str, workers: int = 1, ports=(), args=(), env=None,
                 pass_fds=(), wait=True):
        self.path = tmp_path / "haproxy.cfg"
        self.path.write_text(textwrap.dedent(config))
        self.workers = workers
        self.stderr_path = tmp_path / "fastlb.stderr"
        self.stdout_path = tmp_path / "fastlb.stdout"
        cmd = FASTLB + ["-d", "-f", str(self.path), "-n", str(workers), *args]
        self.proc = subprocess.Popen(cmd, stdout=open(self.stdout_path, "wb"),
                                     stderr=open(self.stderr_path, "wb"), env=env,
                                     pass_fds=pass_fds, cwd=tmp_path)
        if wait:
            self.wait_workers()
            for port in ports:
                wait_until(lambda: listening_sockets(port) >= workers, message=f"listeners on {port}")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def children(self, role: str) -> list[int]:
        """Pids of the master's children whose title names ``role`` (worker, checker)."""
        pids = []
        try:
            for child in psutil.Process(self.pid).children():
                try:
                    if f": {role}" in " ".join(child.cmdline()):
                        pids.append(child.pid)
                except psutil.NoSuchProcess:
                    pass
        except psutil.NoSuchProcess:
            pass
        return pids

    def worker_pids(self) -> list[int]:
        return self.children("worker")

    def checker_pids(self) -> list[int]:
        return self.children("checker")

    def wait_workers(self):
        wait_until(lambda: self.started() and len(self.worker_pids()) == self.workers,
                   timeout=10, message="workers")

    def started(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"fastlb exited with {self.proc.returncode}: {self.stderr()}")
        return "Loading success." in self.stderr()

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stop(self, sig=signal.SIGINT, timeout=5.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def kill(self):
        for pid in self.worker_pids() + self.checker_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def fastlb(tmp_path):
    started = []

    def start(config, **kwargs):
        lb = FastLB(tmp_path, config, **kwargs)
        started.append(lb)
        return lb

    yield start
    for lb in started:
        lb.kill()


class Backend:
    """A threaded TCP server; ``handler(conn, backend)`` serves one accepted connection."""

    def __init__(self, handler, name="srv", port=0):
        self.name = name
        self.handler = handler
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        self.closed = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.accepted += 1
                self.active += 1
                self.max_active = max(self.max_active, self.active)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn):
        try:
            self.handler(conn, self)
        except OSError:
            pass
        finally:
            with self.lock:
                self.active -= 1   # before close(), so max_active never over-counts
            conn.close()

    def close(self):
        self.closed = True
        self.sock.close()


def echo_handler(conn, backend):
    """Echo everything back; on the client's FIN, finish and close."""
    while True:
        data = conn.recv(65536)
        if not data:
            return
        conn.sendall(data)


def name_handler(conn, backend):
    """Say who we are, then echo until EOF."""
    conn.sendall(backend.name.encode() + b"\n")
    echo_handler(conn, backend)


@pytest.fixture
def netns():
    """A network namespace of its own (``ip netns``), its loopback up; removed after."""
    if os.geteuid() != 0 or subprocess.run(["ip", "netns", "list"],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and ip netns")
    name = f"fastlb-test-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name])


@pytest.fixture
def backends():
    created = []

    def make(handler=echo_handler, name="srv", port=0):
        backend = Backend(handler, name, port)
        created.append(backend)
        return backend

    yield make
    for backend in created:
        backend.close()


def recv_exact(sock, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        data = sock.recv(min(65536, n - got))
        if not data:
            break
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


def recv_until_eof(sock) -> bytes:
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def mask_log_line(line: str) -> str:
    """What legitimately differs between two programs' log lines: syslog tag and pid,
    client ports and dates.  (Timer values are masked by each test, per log shape.)"""
    line = re.sub(r"^<(\d+)>\w{3} [ \d]\d \d\d:\d\d:\d\d [^\[ ]+\[\d+\]: ", r"<\1>HEADER: ", line)
    line = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", line)
    return re.sub(r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\]", "[DATE]", line)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class SyslogReceiver:
    """A UDP syslog receiver on loopback."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]

    def recv(self, timeout=5.0) -> str:
        self.sock.settimeout(timeout)
        return self.sock.recv(65536).decode()

    def drain(self, timeout=0.3) -> list[str]:
        lines = []
        while True:
            try:
                lines.append(self.recv(timeout))
            except socket.timeout:
                return lines


@pytest.fixture
def syslog():
    receiver = SyslogReceiver()
    yield receiver
    receiver.sock.close()


# -- HTTP ---------------------------------------------------------------------------------------
def read_head(conn, buffer=b""):
    """(head, rest) once CRLFCRLF arrived, or (None, data) on EOF."""
    while b"\r\n\r\n" not in buffer:
        data = conn.recv(65536)
        if not data:
            return None, buffer
        buffer += data
    head, _, rest = buffer.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", rest


def parse_headers(head: bytes) -> tuple[str, dict]:
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
    return lines[0], fields


def read_body(conn, fields, rest):
    """Body per Content-Length or chunked; returns (body, leftover)."""
    if fields.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += conn.recv(65536)
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:                     # trailer fields, then an empty line
                while True:
                    while b"\r\n" not in rest:
                        rest += conn.recv(65536)
                    line, _, rest = rest.partition(b"\r\n")
                    if not line:
                        return body, rest
            while len(rest) < size + 2:
                rest += conn.recv(65536)
            body += rest[:size]
            rest = rest[size + 2:]
    length = int(fields.get("content-length", "0"))
    while len(rest) < length:
        data = conn.recv(65536)
        if not data:
            break
        rest += data
    return rest[:length], rest[length:]


def http_response(status=200, body=b"", headers=(), reason="OK") -> bytes:
    head = f"HTTP/1.1 {status} {reason}\r\ncontent-length: {len(body)}\r\n"
    head += "".join(f"{n}: {v}\r\n" for n, v in headers)
    return head.encode() + b"\r\n" + body


class HttpBackend(Backend):
    """An HTTP/1.1 server on raw sockets; ``respond(request) -> bytes | None`` (None: close).

    Each request is a dict: line, method, path, headers, body, head (the raw head), conn
    (connection number).
    """

    def __init__(self, name="srv", respond=None, port=0):
        self.requests = []
        self.respond = respond or (lambda req: http_response(
            body=f"{name} {req['method']} {req['path']}".encode()))
        super().__init__(self._handle, name, port)

    def _handle(self, conn, backend):
        number = self.accepted
        rest = b""
        while True:
            head, rest = read_head(conn, rest)
            if head is None:
                return
            line, fields = parse_headers(head)
            body, rest = read_body(conn, fields, rest)
            method, path, _ = line.split(" ", 2)
            request = {"line": line, "method": method, "path": path, "headers": fields,
                       "body": body, "head": head, "conn": number}
            self.requests.append(request)
            answer = self.respond(request)
            if answer is None:
                return
            conn.sendall(answer)
            if fields.get("connection", "").lower() == "close":
                return


@pytest.fixture
def http_backends():
    created = []

    def make(name="srv", respond=None):
        backend = HttpBackend(name, respond)
        created.append(backend)
        return backend

    yield make
    for backend in created:
        backend.close()


class HttpClient:
    """A keep-alive HTTP/1.1 client on one raw socket."""

    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.rest = b""

    def send(self, data: bytes):
        self.sock.sendall(data)

    def request(self, method="GET", path="/", headers=(), body=None):
        # an absolute-form target names its host: Host must agree (else HAProxy's 400)
        host = path.split("://", 1)[1].split("/", 1)[0] if "://" in path else "test"
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
        lines += [f"{n}: {v}" for n, v in headers]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))

    def response(self, head_only=False):
        """(status, headers, body); body None for HEAD-style reads."""
        head, self.rest = read_head(self.sock, self.rest)
        if head is None:
            return None
        line, fields = parse_headers(head)
        status = int(line.split(" ")[1])
        if head_only:
            return status, fields, None
        if status in (204, 304) or 100 <= status < 200:
            return status, fields, b""
        if "content-length" not in fields and "transfer-encoding" not in fields:
            body = self.rest + recv_until_eof(self.sock)
            self.rest = b""
            return status, fields, body
        body, self.rest = read_body(self.sock, fields, self.rest)
        return status, fields, body

    def get(self, path="/", **kwargs):
        self.request("GET", path, **kwargs)
        return self.response()

    def closed(self, timeout=2.0) -> bool:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, socket.timeout):
            return False

    def close(self):
        self.sock.close()


HTTP_DEFAULTS = """
    defaults
        mode http
        timeout connect 1s
        timeout client 5s
        timeout server 5s
"""


def raw_backend(response: bytes) -> Backend:
    """A server that reads one request head and answers with ``response`` as is."""
    return Backend(lambda conn, backend: (read_head(conn), conn.sendall(response)))


def stats_cli(path, command: str, timeout=5.0) -> str:
    """One stats socket command, VTest's way: one line, half-close, read until the server
    closes."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(timeout)
        sock.connect(str(path))
        sock.sendall(command.encode() + b"\n")
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data.decode()
