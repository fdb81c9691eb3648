"""Hostile input (issue "Hostile input"): each reproducer of the issue over real sockets,
against a real fastlb and, where HAProxy's answer is the reference, Debian's haproxy on the
same configuration in front of the same kind of recording backend."""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import threading
import time

import psutil
import pytest

from conftest import (FASTLB, HttpClient, free_port, http_response, listening_sockets,
                      wait_until)
from fuzz.reference import parse_stream

HAVE_HAPROXY = shutil.which("haproxy") is not None
DEFAULTS = """
defaults
    mode http
    option forwardfor
    timeout connect 1s
    timeout client 3s
    timeout server 3s
    timeout http-request 2s
"""


def proxy_config(port: int, backend: str, frontend: str = "", extra: str = "") -> str:
    """DEFAULTS, frontend fe on ``port`` (with ``frontend`` lines) to backend be."""
    return (f"{DEFAULTS}\nfrontend fe\n    bind 127.0.0.1:{port}\n{frontend}"
            f"    default_backend be\nbackend be\n{backend}{extra}")


class Recorder:
    """A backend that keeps every byte of every connection and answers each complete
    request (read by the strict reference parser) with 200 and a 2-byte body."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.conns: list = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            data = bytearray()
            with self.lock:
                self.conns.append(data)
            threading.Thread(target=self._serve, args=(conn, data), daemon=True).start()

    def _serve(self, conn, data):
        answered = 0
        with conn:
            while True:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    return
                if not chunk:
                    return
                data += chunk
                requests, end, _ = parse_stream(bytes(data))
                for _ in requests[answered:]:
                    conn.sendall(http_response(body=b"ok"))
                answered = len(requests)
                if end == "invalid":
                    return

    def received(self) -> bytes:
        time.sleep(0.15)
        with self.lock:
            return b"".join(bytes(c) for c in self.conns)

    def requests(self) -> list:
        return parse_stream(self.received())[0]

    def reset(self):
        with self.lock:
            self.conns.clear()

    def close(self):
        self.sock.close()


def exchange(port: int, data: bytes, wait=0.4) -> bytes:
    """Send ``data`` on a fresh connection; everything that comes back until close or
    ``wait`` seconds of silence."""
    out = b""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as conn:
        conn.sendall(data)
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (socket.timeout, ConnectionResetError):
            pass
    return out


def statuses(answer: bytes) -> list:
    """Status codes of the responses in ``answer`` (the test backends' bodies are "ok")."""
    return [int(code) for code in re.findall(rb"HTTP/1\.[01] (\d\d\d) ", answer)]


class Pair:
    """fastlb and (when installed) haproxy on one configuration, each with a Recorder."""

    def __init__(self, fastlb, tmp_path, frontend="", backend="", global_=""):
        self.fastlb_backend = Recorder()
        self.fastlb_port = free_port()
        self.lb = fastlb(self.config(self.fastlb_port, self.fastlb_backend.port, frontend,
                                     backend, global_), ports=[self.fastlb_port])
        self.haproxy = None
        if HAVE_HAPROXY:
            self.haproxy_backend = Recorder()
            self.haproxy_port = free_port()
            path = tmp_path / "haproxy-ref.cfg"
            path.write_text(self.config(self.haproxy_port, self.haproxy_backend.port, frontend,
                                        backend, global_))
            self.haproxy = subprocess.Popen(["haproxy", "-db", "-f", str(path)],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_until(lambda: listening_sockets(self.haproxy_port) >= 1, message="haproxy")

    @staticmethod
    def config(port, server_port, frontend, backend, global_):
        return f"""
global
{global_}
{DEFAULTS}
frontend fe
    bind 127.0.0.1:{port}
{frontend}
    default_backend be_app
backend be_app
{backend}
    server app 127.0.0.1:{server_port}
"""

    def both(self, data: bytes, wait=0.4):
        """((fastlb answer, fastlb backend requests, raw), (haproxy ...)) for one input."""
        self.fastlb_backend.reset()
        mine = exchange(self.fastlb_port, data, wait)
        mine = (mine, self.fastlb_backend.requests(), self.fastlb_backend.received())
        theirs = None
        if self.haproxy:
            self.haproxy_backend.reset()
            answer = exchange(self.haproxy_port, data, wait)
            theirs = (answer, self.haproxy_backend.requests(), self.haproxy_backend.received())
        return mine, theirs

    def close(self):
        if self.haproxy:
            self.haproxy.terminate()
            self.haproxy.wait(5)
        self.fastlb_backend.close()


@pytest.fixture
def pair(fastlb, tmp_path):
    made = []

    def make(**kwargs):
        p = Pair(fastlb, tmp_path, **kwargs)
        made.append(p)
        return p
    yield make
    for p in made:
        p.close()


# -- 1, 2: samples are bytes; nothing a sample holds can split a head ---------------------------
def test_undecodable_url_param_neither_kills_a_worker_nor_the_master(pair):
    p = pair(frontend="    http-request set-header X-Param %[url_param(id)]")
    workers = p.lb.worker_pids()
    for i in range(15):
        for value in (b"%ff", b"%e2%82%ac"):
            answer, requests, _ = p.both(b"GET /?id=" + value + b" HTTP/1.1\r\nHost: x\r\n\r\n")[0]
            assert statuses(answer) == [200]
            assert requests[0].header(b"x-param") == [value]      # raw, as HAProxy copies it
    assert p.lb.proc.poll() is None and p.lb.worker_pids() == workers
    assert "ALERT" not in p.lb.stderr()
    if p.haproxy:
        _, theirs = p.both(b"GET /?id=%ff HTTP/1.1\r\nHost: x\r\n\r\n")
        assert theirs[1][0].header(b"x-param") == [b"%ff"]


SMUGGLE = (b"GET /echo?id=1%0d%0aContent-Length:%200%0d%0a%0d%0aGET%20/admin/secret%20HTTP/1.1"
           b"%0d%0aHost:%20x%0d%0aX-Ignore:%20 HTTP/1.1\r\nHost: x\r\n\r\n")


def test_url_param_cannot_inject_a_request(pair):
    p = pair(frontend="    http-request set-header X-Param %[url_param(id)]\n"
                      "    http-request deny if { path_beg /admin }")
    mine, theirs = p.both(SMUGGLE)
    answer, requests, raw = mine
    assert statuses(answer) == [200]
    assert [r.target.split(b"?")[0] for r in requests] == [b"/echo"]
    assert b"/admin/secret HTTP/1.1\r\n" not in raw
    if theirs:
        assert [r.header(b"x-param") for r in requests] == \
            [r.header(b"x-param") for r in theirs[1]]


def test_return_and_redirect_cannot_inject_a_header(pair):
    p = pair(frontend="    http-request return status 200 hdr X-Id %[url_param(id)] "
                      "if { path /ret }\n"
                      "    http-request redirect location /to?%[url_param(id)] if { path /red }")
    value = b"1%0d%0aSet-Cookie:%20x=1"
    for path in (b"/ret", b"/red"):
        answer, _, _ = p.both(b"GET " + path + b"?id=" + value + b" HTTP/1.1\r\nHost: x\r\n\r\n")[0]
        assert b"\r\nset-cookie" not in answer.lower(), answer
        assert value in answer                          # copied raw into the one header


def test_configured_values_with_cr_lf_are_refused(tmp_path):
    cfg = tmp_path / "h.cfg"
    cfg.write_text(DEFAULTS + '\nfrontend fe\n    bind 127.0.0.1:1\n'
                   '    http-request set-header X "a\\r\\nSet-Cookie: x=1"\n')
    out = subprocess.run(FASTLB + ["-c", "-f", str(cfg)], capture_output=True, text=True)
    assert out.returncode == 1 and "CR, LF or NUL" in out.stderr and "h.cfg:" in out.stderr


def test_a_rule_that_raises_ends_its_request_not_the_worker(fastlb, http_backends):
    server = http_backends("s")
    port = free_port()
    lb = fastlb(proxy_config(port, f"    server s 127.0.0.1:{server.port}\n",
                             frontend="    http-request replace-value X-A (.*) \\2\n"),
                ports=[port])
    workers = lb.worker_pids()
    client = HttpClient(port)
    for _ in range(20):
        assert exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nX-A: v\r\n\r\n")[9:12] == b"500"
    assert client.get("/fine")[0] == 200
    assert lb.worker_pids() == workers
    assert lb.stderr().count("internal error") == 1     # logged once per kind


# -- 3, 4, 12: chunked framing --------------------------------------------------------------------
def test_chunk_error_is_400_and_the_rest_never_forwarded(pair):
    body = (b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n6\n world\r\n0\r\n\r\nGET /admin/secret HTTP/1.1\r\nHost: x\r\n\r\n")
    answer, requests, raw = p_both(pair, body)
    assert statuses(answer) == [400]
    assert b"/admin" not in raw and b" world" not in raw
    assert requests == []                    # the body never completed at the backend


def p_both(pair, data):
    return pair().both(data)[0]


@pytest.mark.parametrize("head", [
    b"POST /x HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: foo\r\n"
    b"Transfer-Encoding: xchunked\r\n\r\n",
    b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
])
def test_transfer_encoding_is_validated_whatever_else_the_head_says(pair, head):
    mine, theirs = pair().both(head + b"0 /admin/secret HTTP/1.1\r\n\r\n")
    assert statuses(mine[0]) == [400] and mine[2] == b""
    if theirs:
        assert statuses(theirs[0]) == [400]


def test_transfer_encoding_in_trailers_and_empty_codings(pair):
    """Found by the fuzzer: HAProxy refuses a Transfer-Encoding trailer (400) and an empty
    element in Transfer-Encoding (422)."""
    mine, theirs = pair().both(b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                               b"\r\n1\r\nr\r\n0\r\nTransfer-Encoding: chunked1\r\n\r\n")
    assert statuses(mine[0]) == [400] and mine[1] == []
    if theirs:
        assert statuses(theirs[0]) == [400]
    mine, theirs = pair().both(b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                               b"\r\n1\r\nr\r\n0\r\nContent-Length: 0 1\r\n\r\n")
    assert statuses(mine[0]) == [400] and mine[1] == []       # found by the 400k run
    if theirs:
        assert statuses(theirs[0]) == [400]
    mine, theirs = pair().both(b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:, chunked\r\n"
                               b"\r\n0\r\n\r\n")
    assert statuses(mine[0]) == [422] and mine[2] == b""
    if theirs:
        assert statuses(theirs[0]) == [422]


@pytest.mark.parametrize("line", [b"5 xyz", b"5 ", b"5\t", b"5;a\x00b", b"ffffffffffffff",
                                  b"0x5"])
def test_lenient_chunk_size_lines_are_refused(pair, line):
    answer, requests, raw = p_both(pair, b"POST /x HTTP/1.1\r\nHost: x\r\n"
                                         b"Transfer-Encoding: chunked\r\n\r\n" + line +
                                   b"\r\nhello\r\n0\r\n\r\n")
    assert statuses(answer) == [400]
    assert line + b"\r\n" not in raw


def test_leading_zeros_and_extensions_are_fine(pair):
    answer, requests, _ = p_both(pair, b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                                       b"\r\n\r\n0000000000000005;a=\"b c\"\r\nhello\r\n0\r\n\r\n")
    assert statuses(answer) == [200] and requests[0].body == b"hello"


# -- 5, 10, 11: request lines and ambiguous heads --------------------------------------------------
def test_empty_lines_around_requests_are_ignored(pair):
    mine, theirs = pair().both(b"\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n\r\n\r\n"
                               b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n\r\n")
    assert statuses(mine[0]) == [200, 200], mine
    assert [r.target for r in mine[1]] == [b"/a", b"/b"]
    if theirs:
        assert [r.target for r in theirs[1]] == [b"/a", b"/b"]


AMBIGUOUS = [
    b"GET /a HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
    b"GET http://a/x HTTP/1.1\r\nHost: b\r\n\r\n",
    b"GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /x\r\nHost: x\r\n\r\n",
    b"CONNECT /x HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbX\r\n\r\n",                    # a 10-byte key: found by the fuzzer
    b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    b"GET /x HTTP/1.1\r\nHost: x\r\nX-A : a\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: x\r\n" + b"n" * 256 + b": a\r\n\r\n",    # found by the fuzzer
    b"POST h;tp://x/a HTTP/1.1\r\nHost: x\r\n\r\n",        # not a scheme: found by the 1M run
    b"GET 1ab://y/a HTTP/1.1\r\nHost: y\r\n\r\n",
    b"CONNECT x:\"43 HTTP/1.1\r\nHost: x:\"43\r\n\r\n",       # found by the 400k run
]


@pytest.mark.parametrize("raw", AMBIGUOUS)
def test_what_haproxy_refuses_is_refused(pair, raw):
    mine, theirs = pair().both(raw)
    assert statuses(mine[0]) == [400] and mine[2] == b""
    if theirs:
        assert statuses(theirs[0]) == [400] and theirs[2] == b""


@pytest.mark.parametrize("raw", [
    b"GET /x HTTP/2.0\r\nHost: x\r\n\r\n",           # haproxy forwards it as HTTP/1.1
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",             # haproxy closes without an answer
    b"GET /x HTTP/0.9\r\nHost: x\r\n\r\n",           # haproxy forwards "HTTP/0.9" as is
    b"GET /x HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",   # haproxy forwards the NUL
    b"GET /x HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n",   # obs-fold: haproxy unfolds
])
def test_documented_stricter_answers(pair, raw):
    answer, _, forwarded = p_both(pair, raw)
    assert statuses(answer) == [400] and forwarded == b""


def test_identical_duplicates_are_forwarded_once(pair):
    answer, requests, _ = p_both(pair, b"POST /x HTTP/1.1\r\nHost: x\r\nHost: x\r\n"
                                       b"Content-Length: 3, 3\r\n\r\nabc")
    assert statuses(answer) == [200]
    assert requests[0].header(b"host") == [b"x"] and requests[0].header(b"content-length") == [b"3"]


def test_minor_versions_above_one_are_http_1_1(pair):
    mine, theirs = pair().both(b"GET /x HTTP/1.2\r\nHost: x\r\n\r\n")
    assert statuses(mine[0]) == [200] and b"GET /x HTTP/1.1\r\n" in mine[2]
    if theirs:
        assert b"GET /x HTTP/1.1\r\n" in theirs[2]


# -- 15, 16: LF-only lines, head sizes -------------------------------------------------------------
def test_lf_only_request_is_refused_at_once(pair):
    p = pair()
    started = time.monotonic()
    answer = exchange(p.fastlb_port, b"GET /a HTTP/1.1\nHost: x\n\n", wait=1.5)
    assert statuses(answer) == [400] and p.fastlb_backend.received() == b""
    assert time.monotonic() - started < 1.0            # not a 408 after timeout http-request


@pytest.mark.parametrize("size, status", [(15000, 200), (15400, 400)])
def test_heads_leave_maxrewrite_free(pair, size, status):
    mine, theirs = pair().both(b"GET /x HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * size + b"\r\n\r\n")
    assert statuses(mine[0]) == [status]
    if theirs:
        assert statuses(theirs[0]) == [status]


# -- 7, 14: one answer per request; connections kept after our own answers ------------------------
def early_answer(fastlb, answer: bytes, reset: bool) -> bytes:
    """A server that answers ``answer`` as soon as the request head is in, reads the body
    for 0.1-0.3 s more, then closes (a reset when ``reset``), while the client keeps sending
    a large body; returns all the client got."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def server():
        conn, _ = listener.accept()
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        conn.sendall(answer)
        deadline = time.monotonic() + (0.1 if reset else 0.3)
        conn.settimeout(0.1)
        while time.monotonic() < deadline:
            try:
                if not conn.recv(65536):
                    break
            except OSError:
                break
        if reset:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()
    threading.Thread(target=server, daemon=True).start()
    port = free_port()
    fastlb(proxy_config(port, f"    server s 127.0.0.1:{listener.getsockname()[1]}\n"),
           ports=[port])
    client = socket.create_connection(("127.0.0.1", port), timeout=3)

    def send_body():
        try:
            client.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 400000\r\n\r\n")
            for _ in range(400):
                client.sendall(b"a" * 1000)
                time.sleep(0.001)
        except OSError:
            pass
    sender = threading.Thread(target=send_body, daemon=True)
    sender.start()
    got = b""
    try:
        while True:
            chunk = client.recv(65536)
            if not chunk:
                break
            got += chunk
    except OSError:
        pass
    sender.join(5)
    client.close()
    listener.close()
    return got


def test_early_response_is_the_only_response(fastlb):
    """The server answers 413 on the head, then closes while the body still comes: the
    client gets the 413 and nothing after it (before: a 502 behind it)."""
    got = early_answer(fastlb, b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\n\r\n",
                       reset=False)
    assert statuses(got) == [413], got


def test_no_page_after_a_response_already_sent(fastlb):
    """The same with part of a body, then a reset: the answer is cut short and the
    connection closes, never with a 502 behind it."""
    got = early_answer(fastlb, b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 20\r\n\r\n" +
                       b"t" * 10, reset=True)
    assert statuses(got) == [413], got


def test_connection_kept_after_deny_and_503(fastlb, http_backends):
    server = http_backends("s")
    port = free_port()
    fastlb(proxy_config(port, f"    server s 127.0.0.1:{server.port}\n",
                        frontend="    http-request deny if { path_beg /admin }\n"
                                 "    use_backend be_dead if { path_beg /dead }\n",
                        extra=f"backend be_dead\n    retries 0\n"
                              f"    server d 127.0.0.1:{free_port()}\n"), ports=[port])
    client = HttpClient(port)
    assert client.get("/admin")[0] == 403
    assert client.get("/ok")[0] == 200                  # the same connection, as HAProxy
    assert client.get("/dead")[0] == 503
    assert client.get("/ok2")[0] == 200
    client.request("POST", "/admin", body=b"x" * 10)   # a body we did not read: closed after
    assert client.response()[0] == 403
    assert client.closed()


# -- 6, 8: resources and retries --------------------------------------------------------------
def test_idle_clients_do_not_pin_server_connections(fastlb, backends):
    """A server that serves at most 50 connections at once (a 50-thread backend): 50
    keep-alive clients that went idle must not lock 10 new ones out."""
    slots = threading.Semaphore(50)

    def handler(conn, backend):
        with slots:
            rest = b""
            while True:
                while b"\r\n\r\n" not in rest:
                    data = conn.recv(65536)
                    if not data:
                        return
                    rest += data
                _, _, rest = rest.partition(b"\r\n\r\n")
                conn.sendall(http_response(body=b"ok"))
    server = backends(handler)
    port = free_port()
    fastlb(proxy_config(port, f"    timeout server 1s\n    server s 127.0.0.1:{server.port}\n"),
           ports=[port])
    idle = [HttpClient(port) for _ in range(50)]
    for client in idle:
        assert client.get("/first")[0] == 200
    fresh = [HttpClient(port) for _ in range(10)]
    assert [c.get("/new")[0] for c in fresh] == [200] * 10
    assert server.max_active <= 50
    assert [c.get("/again")[0] for c in idle[:5]] == [200] * 5


def test_computed_maxconn_is_enforced(fastlb, http_backends, tmp_path):
    server = http_backends("s")
    port = free_port()
    sock = tmp_path / "stats.sock"
    lb = fastlb(f"""
global
    ulimit-n 400
    stats socket {sock} level admin
{DEFAULTS}
    timeout client 20s
    timeout http-request 20s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    server s 127.0.0.1:{server.port}
""", ports=[port], workers=2)
    from conftest import stats_cli
    info = dict(line.split(": ", 1) for line in stats_cli(sock, "show info").splitlines()
                if ": " in line)
    maxconn = int(info["Maxconn"])
    assert maxconn == (400 - 30) // 2
    held = []
    for _ in range(maxconn + 60):
        held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
    time.sleep(0.5)
    info = dict(line.split(": ", 1) for line in stats_cli(sock, "show info").splitlines()
                if ": " in line)
    assert int(info["CurrConns"]) <= maxconn
    for conn in held[:100]:
        conn.close()
    client = HttpClient(port, timeout=5)
    assert client.get("/after")[0] == 200               # served once places came free
    for conn in held[100:]:
        conn.close()


def test_redispatch_avoids_the_server_that_failed(fastlb, http_backends):
    """Round robin over a dead and a live server with option redispatch, under concurrent
    clients (so the shared round-robin position moves between a session's retries): every
    retry must go to the live server, and every request succeed."""
    alive = http_backends("alive")
    dead_port = free_port()                              # nothing listens there
    port = free_port()
    fastlb(proxy_config(port, f"    option redispatch\n    retries 3\n"
                              f"    server dead 127.0.0.1:{dead_port}\n"
                              f"    server alive 127.0.0.1:{alive.port}\n"),
           ports=[port], workers=2)
    codes = []

    def client():
        for i in range(60):
            codes.append(exchange(port, b"GET /%d HTTP/1.1\r\nHost: x\r\nConnection: close"
                                        b"\r\n\r\n" % i, wait=5)[9:12])
    threads = [threading.Thread(target=client) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(codes) == 960 and set(codes) == {b"200"}, {c: codes.count(c) for c in set(codes)}


# -- 9, 13, 17: the stats page and socket ----------------------------------------------------------
def test_stats_page_location_and_auth(fastlb, http_backends):
    server = http_backends("s")
    port = free_port()
    fastlb(proxy_config(port, f"    server s 127.0.0.1:{server.port}\n",
                        frontend="    stats enable\n    stats uri /stats\n"
                                 "    stats auth admin:secret\n    stats admin if TRUE\n"),
           ports=[port])
    import base64
    good = base64.b64encode(b"admin:secret")
    body = b"s=s&action=drain&b=be"
    answer = exchange(port, b"POST /stats?scope=%0d%0aSet-Cookie:%20x=1 HTTP/1.1\r\nHost: x\r\n"
                            b"Authorization: Basic " + good + b"\r\nContent-Length: %d\r\n\r\n"
                      % len(body) + body)
    assert statuses(answer) == [303]
    assert b"\r\nset-cookie" not in answer.lower()
    assert b"scope=%0d%0aSet-Cookie:%20x=1" in answer
    # base64 is decoded strictly: trailing garbage is not the password
    bad = exchange(port, b"GET /stats HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " + good +
                   b"!!\r\n\r\n")
    assert statuses(bad) == [401]


def test_stats_socket_never_has_the_umask_mode(tmp_path, http_backends):
    sock = tmp_path / "s.sock"
    cfg = tmp_path / "h.cfg"
    cfg.write_text(f"global\n    stats socket {sock} mode 600 level admin\n{DEFAULTS}\n"
                   f"listen l\n    bind 127.0.0.1:{free_port()}\n    server s 127.0.0.1:1\n")
    seen = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            try:
                seen.append(stat.S_IMODE(os.stat(sock).st_mode))
            except FileNotFoundError:
                pass
    old = os.umask(0)
    try:
        proc = subprocess.Popen(FASTLB + ["-d", "-f", str(cfg), "-n", "1"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        thread = threading.Thread(target=watch)
        thread.start()
        wait_until(lambda: seen, timeout=10, message="the stats socket")
        time.sleep(0.3)
        stop.set()
        thread.join()
    finally:
        os.umask(old)
        proc.terminate()
        proc.wait(5)
    assert set(seen) == {0o600}
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


# -- the master: serving workers that die are respawned, with back-off ------------------------------
def test_master_respawns_crashing_workers_with_backoff(fastlb, http_backends):
    server = http_backends("s")
    port = free_port()
    lb = fastlb(proxy_config(port, f"    server s 127.0.0.1:{server.port}\n"), ports=[port])
    for _ in range(7):
        wait_until(lambda: len(lb.worker_pids()) == 1, timeout=10, message="a worker")
        pid = lb.worker_pids()[0]
        wait_until(lambda: HttpClient(port).get("/")[0] == 200, timeout=10, message="serving")
        os.kill(pid, signal.SIGSEGV)
        wait_until(lambda: pid not in lb.worker_pids(), message="death")
    assert lb.proc.poll() is None
    wait_until(lambda: HttpClient(port).get("/")[0] == 200, timeout=15, message="respawned")
    assert "respawning worker 1 in" in lb.stderr()
    assert "keep failing" not in lb.stderr()


# -- found in review: reuse rules, a page after a response, keep-alive held by empty lines ----
class ConnBackend:
    """HTTP server on raw sockets that records (connection number, request head) pairs and
    answers with ``respond(number, head) -> bytes``."""

    def __init__(self, respond, host="127.0.0.1", port=0):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.respond, self.seen, self.accepted = respond, [], 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(conn, self.accepted), daemon=True).start()

    def _serve(self, conn, number):
        rest = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in rest:
                    data = conn.recv(65536)
                    if not data:
                        return
                    rest += data
                head, _, rest = rest.partition(b"\r\n\r\n")
                length = re.search(rb"content-length: (\d+)", head, re.I)
                while length and len(rest) < int(length.group(1)):
                    rest += conn.recv(65536)
                if length:
                    rest = rest[int(length.group(1)):]
                self.seen.append((number, head.split(b"\r\n")[0]))
                conn.sendall(self.respond(number, head))

    def close(self):
        self.sock.close()


def ok_response(number, head):
    return http_response(body=b"conn%d" % number)


def test_server_without_port_connections_follow_the_client_port(fastlb):
    """A server written without a port uses the port the client reached: a connection to
    one port is never reused for a client of another."""
    front = [free_port(), free_port()]
    backs = [ConnBackend(lambda n, h, p=p: http_response(body=b"%d" % p), "127.0.0.2", p)
             for p in front]
    fastlb(f"""{DEFAULTS}
frontend fe
    bind 127.0.0.1:{front[0]}
    bind 127.0.0.1:{front[1]}
    default_backend be
backend be
    server s 127.0.0.2
""", ports=front)
    first = HttpClient(front[0])
    assert first.get("/")[2] == b"%d" % front[0]              # now idle, its connection lent
    for _ in range(3):
        assert HttpClient(front[1]).get("/")[2] == b"%d" % front[1]
    for b in backs:
        b.close()


@pytest.mark.parametrize("reuse, shared", [("safe", True), ("never", False)])
def test_http_reuse_never_shares_no_connection(fastlb, reuse, shared):
    backend = ConnBackend(ok_response)
    port = free_port()
    fastlb(proxy_config(port, f"    http-reuse {reuse}\n    server s 127.0.0.1:{backend.port}\n"),
           ports=[port])
    idle = HttpClient(port)
    assert idle.get("/a")[2] == b"conn1"
    assert (HttpClient(port).get("/b")[2] == b"conn1") == shared
    backend.close()


def test_ntlm_connections_are_private(fastlb):
    def respond(number, head):
        return http_response(401, headers=[("WWW-Authenticate", "NTLM")], reason="Unauthorized")
    backend = ConnBackend(respond)
    port = free_port()
    fastlb(proxy_config(port, f"    server s 127.0.0.1:{backend.port}\n"), ports=[port])
    first = HttpClient(port)
    assert first.get("/a")[0] == 401
    assert HttpClient(port).get("/b")[0] == 401
    assert [n for n, _ in backend.seen] == [1, 2]         # the second client: its own connection
    assert first.get("/c")[0] == 401 and backend.seen[-1][0] == 1   # the first keeps its own
    backend.close()


def test_a_first_request_with_a_body_gets_its_own_connection(fastlb):
    backend = ConnBackend(ok_response)
    port = free_port()
    fastlb(proxy_config(port, f"    server s 127.0.0.1:{backend.port}\n"), ports=[port])
    idle = HttpClient(port)
    assert idle.get("/idle")[2] == b"conn1"
    post = HttpClient(port)
    post.request("POST", "/upload", body=b"x" * 100)
    assert post.response()[2] == b"conn2"                 # not sent on the lent connection
    assert HttpClient(port).get("/get")[2] in (b"conn1", b"conn2")   # a bodiless one reuses
    assert backend.accepted == 2
    backend.close()


def test_bytes_after_a_response_are_never_read_as_the_next_one(fastlb):
    def respond(number, head):
        real = http_response(body=b"real")
        return real + http_response(body=b"fake") if number == 1 else real
    backend = ConnBackend(respond)
    port = free_port()
    fastlb(proxy_config(port, f"    server s 127.0.0.1:{backend.port}\n"), ports=[port])
    client = HttpClient(port)
    assert client.get("/1")[2] == b"real"
    assert client.get("/2")[2] == b"real"
    backend.close()


def test_redispatch_avoids_the_failed_server_under_leastconn(fastlb, backends):
    """Under load the dead server always has the fewest sessions: leastconn must still send
    each retry elsewhere."""
    def slow(conn, backend):
        rest = b""
        while True:
            while b"\r\n\r\n" not in rest:
                data = conn.recv(65536)
                if not data:
                    return
                rest += data
            _, _, rest = rest.partition(b"\r\n\r\n")
            time.sleep(0.02)
            conn.sendall(http_response(body=b"ok"))
    alive = backends(slow)
    port = free_port()
    fastlb(proxy_config(port, f"    balance leastconn\n    option redispatch\n    retries 3\n"
                              f"    server dead 127.0.0.1:{free_port()}\n"
                              f"    server alive 127.0.0.1:{alive.port}\n"), ports=[port])
    codes = []

    def client():
        for i in range(25):
            codes.append(exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close"
                                        b"\r\n\r\n", wait=5)[9:12])
    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(codes) == {b"200"}, {c: codes.count(c) for c in set(codes)}


def test_empty_lines_do_not_hold_a_keep_alive_connection(fastlb, http_backends):
    server = http_backends("s")
    port = free_port()
    fastlb(proxy_config(port, f"    server s 127.0.0.1:{server.port}\n")
           .replace("    timeout http-request 2s", "    timeout http-request 2s\n"
                    "    timeout http-keep-alive 300ms"), ports=[port])
    client = HttpClient(port)
    assert client.get("/")[0] == 200
    started = time.monotonic()
    closed = False
    while time.monotonic() - started < 2.0:
        try:
            client.send(b"\r\n")
        except OSError:
            closed = True
            break
        time.sleep(0.05)
        client.sock.setblocking(False)
        try:
            if client.sock.recv(1) == b"":
                closed = True
                break
        except BlockingIOError:
            pass
        finally:
            client.sock.setblocking(True)
    assert closed and time.monotonic() - started < 1.0


def test_pages_that_close_say_so(fastlb, http_backends):
    server = http_backends("s")
    port = free_port()
    fastlb(proxy_config(port, f"    server s 127.0.0.1:{server.port}\n"), ports=[port])
    answer = exchange(port, b"GET / HTTP/1.0\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                            b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
    assert statuses(answer) == [413] and b"\r\nconnection: close\r\n" in answer.lower()
