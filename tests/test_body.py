"""Request bodies for the rules: option http-buffer-request, http-request wait-for-body
and the req.body fetches, run through haproxy 2.6 and fastlb on the same config.

Each scenario is one client connection: byte segments sent with pauses between them,
then every response read.  Both must answer the same statuses, and their backends must
see the same requests (line, the X-* headers the rules set, the de-chunked body).
fastlb's backend must also receive the body bytes exactly as the client sent them.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time

import pytest

import re

from conftest import (FASTLB, SyslogReceiver, free_port, listening_sockets, parse_headers,
                      read_head, wait_until)

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")

# the fastlb of this checkout, whatever the working directory of the process
ENV = dict(os.environ)       # PYTHONPATH, when set, picks the checkout under test
BIG = 40000          # more than tune.bufsize (16384)


def read_raw_body(conn, fields, rest):
    """(raw body bytes as framed on the wire, de-chunked payload, leftover)."""
    def more():
        data = conn.recv(65536)
        if not data:
            raise EOFError
        return data
    if fields.get("transfer-encoding", "").lower() == "chunked":
        raw, payload, pos = b"", b"", 0
        buf = rest
        while True:
            while b"\r\n" not in buf[pos:]:
                buf += more()
            eol = buf.index(b"\r\n", pos)
            size = int(buf[pos:eol].split(b";")[0], 16)
            pos = eol + 2
            if size == 0:
                while True:
                    while b"\r\n" not in buf[pos:]:
                        buf += more()
                    eol = buf.index(b"\r\n", pos)
                    empty = eol == pos
                    pos = eol + 2
                    if empty:
                        return buf[:pos], payload, buf[pos:]
            while len(buf) < pos + size + 2:
                buf += more()
            payload += buf[pos:pos + size]
            pos += size + 2
    length = int(fields.get("content-length", "0"))
    while len(rest) < length:
        rest += more()
    return rest[:length], rest[:length], rest[length:]


class Recorder:
    """An HTTP backend keeping every request: (backend, line, X-* headers, payload, raw
    body); it answers 200 with the request's body length."""

    def __init__(self, name):
        self.name = name
        self.seen = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        rest = b""
        try:
            while True:
                head, rest = read_head(conn, rest)
                if head is None:
                    return
                line, fields = parse_headers(head)
                raw, payload, rest = read_raw_body(conn, fields, rest)
                marks = sorted((k, v) for k, v in fields.items() if k.startswith("x-"))
                self.seen.append((self.name, line, marks, payload, raw))
                body = b"%d" % len(payload)
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body)
                             + body)
        except (EOFError, OSError):
            return
        finally:
            conn.close()

    def close(self):
        self.sock.close()


def chunked(*pieces: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def post(path, body: bytes, extra=b"") -> bytes:
    return (b"POST %s HTTP/1.1\r\nHost: t\r\n%sContent-Length: %d\r\n\r\n"
            % (path.encode(), extra, len(body))) + body


def post_chunked(path, body: bytes) -> bytes:
    return (b"POST %s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            % path.encode()) + body


FORM = b"a=1&b=two&c=3"
SEGMENTED = b"x=1&b=late&pad=" + b"p" * 50
# scenario name -> ([(bytes, pause after it in s)], responses expected)
SCENARIOS = {
    "length": ([(post("/", FORM), 0)], 1),
    "chunked": ([(post_chunked("/", chunked(b"a=1&", b"b=xyz", b"&c=3")), 0)], 1),
    "deny-secret": ([(post("/", b"some secret here"), 0)], 1),
    "deny-secret-across-chunks": ([(post_chunked("/", chunked(b"no sec", b"ret")), 0)], 1),
    "acl-routes-on-body": ([(post("/", b"route=two&z"), 0)], 1),
    "no-body": ([(b"GET /get HTTP/1.1\r\nHost: t\r\n\r\n", 0)], 1),
    "segments-with-delays": ([(post("/", SEGMENTED)[:-40], 0.3),
                              (post("/", SEGMENTED)[-40:-20], 0.3),
                              (post("/", SEGMENTED)[-20:], 0)], 1),
    "chunked-segments": ([(post_chunked("/", b"4\r\nb=ab\r\n"), 0.3),
                          (b"3\r\n&c=\r\n", 0.3), (b"0\r\n\r\n", 0)], 1),
    "pipelined-after-body": ([(post("/", FORM) + post_chunked("/", chunked(b"b=second")) +
                               b"GET /third HTTP/1.1\r\nHost: t\r\n\r\n", 0)], 3),
    "bigger-than-buffer": ([(post("/", b"b=big&" + b"x" * BIG), 0)], 1),
    "bigger-chunked": ([(post_chunked("/", chunked(b"b=big&", b"y" * BIG)), 0)], 1),
    "at-least": ([(post("/wait", b"b=early&" + b"z" * 40)[:-30], 0.5),
                  (post("/wait", b"b=early&" + b"z" * 40)[-30:], 0)], 1),
    "body-late": ([(post("/", b"b=never")[:-3], 2.5)], 1),
    "deny-then-next": ([(post("/", b"a secret") + b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n",
                         0)], 2),
    "trailers": ([(post_chunked("/", b"5\r\nb=trl\r\n0\r\nX-T: 1\r\n\r\n"), 0)], 1),
    "bad-chunk": ([(post_chunked("/", b"zz\r\nb=bad\r\n0\r\n\r\n"), 0)], 1),
    "client-half-closes": ([(post("/", b"b=cut")[:-2], "shut")], 1),
}
# what the rules see of a body larger than the buffer depends on the buffer's layout
LAYOUT = {"bigger-than-buffer", "bigger-chunked"}
LAYOUT_MARKS = ("x-len", "x-size", "x-head", "x-before")


def config(port, be1, be2):
    return f"""
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout http-request 1500ms
frontend fe
    bind 127.0.0.1:{port}
    option http-buffer-request
    acl two req.body_param(route) -m str two
    http-request set-header X-Len %[req.body_len]
    http-request set-header X-Size %[req.body_size]
    http-request set-header X-P %[req.body_param(b)]
    http-request set-header X-Any %[req.body_param]
    http-request set-header X-Head %[req.body,bytes(0,6)]
    http-request set-header X-Long 1 if {{ req.body_len gt 100 }}
    http-request deny if {{ req.body -m sub secret }}
    use_backend be2 if two
    default_backend be1
backend be1
    server s1 127.0.0.1:{be1}
backend be2
    server s2 127.0.0.1:{be2}
"""


def wait_config(port, be1, be2):
    """No option: a wait-for-body rule for /wait (at-least), the body fetches after it."""
    return f"""
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    http-request set-header X-Before %[req.body_len]
    http-request wait-for-body time 3s at-least 10 if {{ path /wait }}
    http-request wait-for-body time 3s if {{ method POST }} !{{ path /wait }}
    http-request set-header X-Len %[req.body_len]
    http-request set-header X-P %[req.body_param(b)]
    http-request deny if {{ req.body -m sub secret }}
    default_backend be1
backend be1
    server s1 127.0.0.1:{be1}
backend be2
    server s2 127.0.0.1:{be2}
"""


def backend_config(port, be1, be2):
    """The option in the backend only: the frontend's rules see no body, the backend's do."""
    return f"""
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    http-request set-header X-Fe %[req.body_len]
    default_backend be1
backend be1
    option http-buffer-request
    http-request set-header X-Len %[req.body_len]
    http-request set-header X-P %[req.body_param(b)]
    http-request deny if {{ req.body -m sub secret }}
    server s1 127.0.0.1:{be1}
backend be2
    server s2 127.0.0.1:{be2}
"""


def play(port, segments, count):
    """Send the segments, then read ``count`` responses: [(status, body)]; a connection
    closed early ends the list."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    answers = []
    try:
        for data, pause in segments:
            sock.sendall(data)
            if pause == "shut":
                sock.shutdown(socket.SHUT_WR)
            else:
                time.sleep(pause)
        rest = b""
        for _ in range(count):
            head, rest = read_head(sock, rest)
            if head is None:
                break
            line, fields = parse_headers(head)
            length = int(fields.get("content-length", "0"))
            while len(rest) < length:
                data = sock.recv(65536)
                if not data:
                    break
                rest += data
            answers.append((int(line.split()[1]), rest[:length] if line.split()[1] == "200"
                            else b""))
            rest = rest[length:]
    except (ConnectionResetError, socket.timeout):
        answers.append(("reset",))
    finally:
        sock.close()
    return answers


def run_both(tmp_path, make_config, scenarios, logs=None):
    results = {}
    for name in ("haproxy", "fastlb"):
        backends = [Recorder("be1"), Recorder("be2")]
        syslog = SyslogReceiver()
        port = free_port()
        path = tmp_path / f"{name}.cfg"
        text = make_config(port, backends[0].port, backends[1].port)
        if logs is not None:
            text = f"global\n    log 127.0.0.1:{syslog.port} local0\n" + \
                text.replace("defaults\n", "defaults\n    log global\n    option httplog\n", 1)
        path.write_text(text)
        cmd = ["haproxy", "-db", "-f", str(path)] if name == "haproxy" else \
            FASTLB + ["-d", "-f", str(path), "-n", "1"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, cwd=tmp_path, env=ENV,
                                stderr=open(tmp_path / f"{name}.err", "wb"))
        try:
            wait_until(lambda: listening_sockets(port) > 0, message=f"{name} listening")
            results[name] = {}
            for scenario, (segments, count) in scenarios.items():
                for be in backends:
                    be.seen.clear()
                answers = play(port, segments, count)
                time.sleep(0.05)
                seen = [entry for be in backends for entry in be.seen]
                results[name][scenario] = (answers, seen, segments)
                if logs is not None:
                    logs.setdefault(name, {})[scenario] = syslog.drain(0.3)
        finally:
            proc.terminate()
            proc.wait(5)
            syslog.sock.close()
            for be in backends:
                be.close()
    return results


def sent_bodies(segments):
    """The raw bodies of the requests in what the client sent (framing as sent)."""
    data = b"".join(d for d, _ in segments)
    bodies = []
    while data:
        head_end = data.find(b"\r\n\r\n")
        if head_end < 0:
            break
        line, fields = parse_headers(data[:head_end + 4])
        rest = data[head_end + 4:]

        class Feed:
            def recv(self, n):
                return b""
        try:
            raw, _, data = read_raw_body(Feed(), fields, rest)
        except (EOFError, ValueError):          # cut short, or not chunked at all
            break
        bodies.append(raw)
    return bodies


def check(results, layout=()):
    problems = []
    for scenario, (their_answers, their_seen, _) in results["haproxy"].items():
        our_answers, our_seen, segments = results["fastlb"][scenario]
        if [a[0] for a in our_answers] != [a[0] for a in their_answers]:
            problems.append(f"{scenario}: statuses {our_answers} != haproxy's {their_answers}")
        if len(our_seen) != len(their_seen):
            problems.append(f"{scenario}: backends saw {len(our_seen)} requests, haproxy's "
                            f"{len(their_seen)}")
        for ours, theirs in zip(our_seen, their_seen):
            ours_cmp, theirs_cmp = list(ours[:4]), list(theirs[:4])
            if scenario in layout:          # how much of it fits differs: not the marks
                ours_cmp[2] = [m for m in ours[2] if m[0] not in LAYOUT_MARKS]
                theirs_cmp[2] = [m for m in theirs[2] if m[0] not in LAYOUT_MARKS]
            if ours_cmp != theirs_cmp:
                problems.append(f"{scenario}: backend saw {ours_cmp[:3]} (body {len(ours[3])} "
                                f"bytes), haproxy's {theirs_cmp[:3]} ({len(theirs[3])} bytes)")
        # fastlb forwards the body bytes as they came (chunk framing included)
        # (in order; a request the rules answered never gets there)
        sent = iter(sent_bodies(segments))
        for entry in our_seen:
            if not any(entry[4] == body for body in sent):
                problems.append(f"{scenario}: fastlb's backend got body bytes the client "
                                f"did not send ({len(entry[4])} bytes)")
    assert not problems, "\n".join(problems)
    return results


def test_http_buffer_request_matches_haproxy(tmp_path):
    results = check(run_both(tmp_path, config, SCENARIOS), LAYOUT)
    ours = results["fastlb"]
    # the scenarios say what they should: not only "the same as haproxy"
    assert ours["length"][1][0][2] == [("x-any", "1"), ("x-head", "a=1&b="), ("x-len", "13"),
                                       ("x-p", "two"), ("x-size", "13")]
    assert ours["chunked"][1][0][3] == b"a=1&b=xyz&c=3"
    assert ("x-len", "13") in ours["chunked"][1][0][2]
    assert [a[0] for a in ours["deny-secret"][0]] == [403]
    assert [a[0] for a in ours["deny-secret-across-chunks"][0]] == [403]
    assert ours["acl-routes-on-body"][1][0][0] == "be2"
    assert ("x-p", "late") in ours["segments-with-delays"][1][0][2]
    assert ("x-len", "7") in ours["chunked-segments"][1][0][2]
    assert [e[1] for e in ours["pipelined-after-body"][1]] == \
        ["POST / HTTP/1.1", "POST / HTTP/1.1", "GET /third HTTP/1.1"]
    assert ("x-p", "second") in ours["pipelined-after-body"][1][1][2]
    big = ours["bigger-than-buffer"][1][0]
    assert len(big[3]) == BIG + 6 and ("x-p", "big") in big[2] and ("x-long", "1") in big[2]
    assert 100 < int(dict(big[2])["x-len"]) <= 16384
    assert ("x-size", str(BIG + 6)) in big[2]          # the Content-Length announced
    assert len(ours["bigger-chunked"][1][0][3]) == BIG + 6
    assert [a[0] for a in ours["body-late"][0]] == [408]
    # a deny after the whole body keeps the connection: the next request is served
    assert [a[0] for a in ours["deny-then-next"][0]] == [403, 200]
    assert ("x-p", "trl") in ours["trailers"][1][0][2]
    assert [a[0] for a in ours["bad-chunk"][0]] == [400]
    assert ours["client-half-closes"] == ([], [], ours["client-half-closes"][2])


WAIT_SCENARIOS = {
    "waits": ([(post("/", b"b=1&"), 0.3), (b"", 0)], 1),
    "at-least": SCENARIOS["at-least"],
    "segments-deny": ([(post("/", b"x=the secret")[:-6], 0.3),
                       (post("/", b"x=the secret")[-6:], 0)], 1),
    "chunked": SCENARIOS["chunked"],
    "no-body": SCENARIOS["no-body"],
    "pipelined-after-body": SCENARIOS["pipelined-after-body"],
}


def test_wait_for_body_matches_haproxy(tmp_path):
    results = check(run_both(tmp_path, wait_config, WAIT_SCENARIOS))
    ours = results["fastlb"]
    marks = dict(ours["at-least"][1][0][2])
    # before the rule nothing is waited for; at-least 10 stops the wait at the first segment
    assert marks["x-p"] == "early" and 10 <= int(marks["x-len"]) < 48
    assert [a[0] for a in ours["segments-deny"][0]] == [403]
    assert ("x-len", "13") in ours["chunked"][1][0][2]


def outcome(line: str):
    """(status, termination state) of an httplog line."""
    match = re.search(r" (-?\d+) -?\d+ \S+ \S+ (\S{4}) ", line)
    return (match.group(1), match.group(2)[:2]) if match else line


LOG_SCENARIOS = {name: SCENARIOS[name] for name in (
    "length", "deny-secret", "body-late", "bad-chunk", "client-half-closes", "segments-with-delays")}


def test_body_waits_log_as_haproxy(tmp_path):
    """Status and termination state of each request's log line: 408 cR for a body that
    never came, PR for a deny, CR for a client gone in the middle of its body (HAProxy
    2.6 logs these while the request is analysed, not while its data flows)."""
    logs = {}
    check(run_both(tmp_path, config, LOG_SCENARIOS, logs))
    ours = {k: [outcome(line) for line in v] for k, v in logs["fastlb"].items()}
    theirs = {k: [outcome(line) for line in v] for k, v in logs["haproxy"].items()}
    assert ours == theirs
    assert ours["body-late"] == [("408", "cR")]
    assert ours["deny-secret"] == [("403", "PR")]


BACKEND_SCENARIOS = {
    "length": SCENARIOS["length"],
    "deny-secret": SCENARIOS["deny-secret"],
    "segments": ([(post("/", b"b=seg&" + b"q" * 30)[:-20], 0.3),
                  (post("/", b"b=seg&" + b"q" * 30)[-20:], 0)], 1),
}


def backend_wait_config(port, be1, be2):
    """wait-for-body in the backend's rules, after rules that see what came with the head;
    a small tune.bufsize: a body larger than it is seen as far as it fits."""
    return f"""
global
    tune.bufsize 4096
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be1
backend be1
    http-request set-header X-Before %[req.body_len]
    http-request wait-for-body time 2s
    http-request set-header X-P %[req.body_param(b)]
    http-request set-header X-Long 1 if {{ req.body_len gt 1000 }}
    http-request deny if {{ req.body -m sub secret }}
    server s1 127.0.0.1:{be1}
backend be2
    server s2 127.0.0.1:{be2}
"""


BACKEND_WAIT_SCENARIOS = {
    "segments": BACKEND_SCENARIOS["segments"],
    "deny-late": ([(post("/", b"b=1&the secret")[:-6], 0.3),
                   (post("/", b"b=1&the secret")[-6:], 0)], 1),
    "bigger-than-buffer": ([(post("/", b"b=big&" + b"x" * 10000), 0)], 1),
}


def test_backend_wait_for_body_matches_haproxy(tmp_path):
    results = check(run_both(tmp_path, backend_wait_config, BACKEND_WAIT_SCENARIOS),
                    {"bigger-than-buffer"})
    ours = results["fastlb"]
    assert ("x-p", "seg") in ours["segments"][1][0][2]
    assert [a[0] for a in ours["deny-late"][0]] == [403]
    big = ours["bigger-than-buffer"][1][0]
    assert len(big[3]) == 10006 and ("x-long", "1") in big[2] and ("x-p", "big") in big[2]
    assert 1000 < int(dict(big[2])["x-before"]) <= 4096     # what one 4 KiB buffer holds


def test_backend_http_buffer_request_matches_haproxy(tmp_path):
    results = check(run_both(tmp_path, backend_config, BACKEND_SCENARIOS))
    assert ("x-p", "seg") in results["fastlb"]["segments"][1][0][2]


def test_expect_100_continue_gets_its_interim_answer(fastlb, tmp_path):
    """A client waiting for 100 Continue before its body gets it while the proxy waits
    (curl does this for bodies over 1 KiB); the server does not see the Expect header."""
    backend = Recorder("be1")
    port = free_port()
    fastlb(f"""
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    option http-buffer-request
    http-request set-header X-Len %[req.body_len]
    default_backend be1
backend be1
    server s1 127.0.0.1:{backend.port}
""", ports=(port,), env=ENV)
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=3)
        sock.sendall(b"POST / HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                     b"Content-Length: 5\r\n\r\n")
        head, rest = read_head(sock)
        assert head.startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(b"hello")
        head, rest = read_head(sock, rest)
        assert head.startswith(b"HTTP/1.1 200")
        sock.close()
        entry = backend.seen[0]
        assert entry[3] == b"hello" and ("x-len", "5") in entry[2]
    finally:
        backend.close()


@pytest.mark.parametrize("line, message", [
    ("http-request wait-for-body", "expects time"),
    ("http-request wait-for-body time", "missing argument"),
    ("http-request wait-for-body at-least 1k", "expects time"),
    ("http-request wait-for-body time 1s at-most 3", "unexpected 'at-most'"),
])
def test_both_refuse_a_malformed_wait_for_body(tmp_path, line, message):
    path = tmp_path / "bad.cfg"
    path.write_text("defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n"
                    "    timeout server 1s\nfrontend fe\n    bind 127.0.0.1:1\n"
                    f"    {line}\n    default_backend be\nbackend be\n"
                    "    server s1 127.0.0.1:1\n")
    haproxy = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True)
    ours = subprocess.run(FASTLB + ["-c", "-f", str(path)], capture_output=True, text=True,
                          env=ENV)
    assert haproxy.returncode != 0, haproxy.stderr
    assert ours.returncode != 0
    assert "bad.cfg:8]" in ours.stderr and message in ours.stderr, ours.stderr


# ------------------------------------------------------------------ the response side
RESPONSES = {       # path -> [(bytes, pause after them)] the server answers with
    "/plain": [(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabcd", 0.3), (b"efghij", 0)],
    "/deny": [(b"HTTP/1.1 200 OK\r\ncontent-length: 17\r\n\r\nthis is ", 0.3),
              (b"forbidden", 0)],
    "/chunked": [(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n", 0.3),
                 (b"4\r\ndefg\r\n0\r\n\r\n", 0)],
    "/close": [(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil", 0.3),
               (b" close", 0)],
    "/slow": [(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", 2.0), (b"late!", 0)],
    "/nowait": [(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nfirst", 0.3), (b"-then", 0)],
}


class SegmentedServer(Recorder):
    """Answers each request with RESPONSES[path], in segments, then closes."""

    def _serve(self, conn):
        try:
            head, rest = read_head(conn, b"")
            if head is None:
                return
            line, _ = parse_headers(head)
            for data, pause in RESPONSES[line.split()[1]]:
                conn.sendall(data)
                time.sleep(pause)
        except OSError:
            return
        finally:
            conn.close()


def response_config(port, be1, be2):
    return f"""
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    http-request set-var(txn.path) path
    default_backend be1
backend be1
    http-response set-header X-Before %[res.body_len]
    http-response wait-for-body time 1s if !{{ var(txn.path) -m str /nowait }}
    http-response set-header X-RLen %[res.body_len]
    http-response set-header X-RSize %[res.body_size]
    http-response set-header X-RBody %[res.body,bytes(0,8)]
    http-response deny if {{ res.body -m sub forbidden }}
    server s1 127.0.0.1:{be1}
backend be2
    server s2 127.0.0.1:{be2}
"""


def test_http_response_wait_for_body_matches_haproxy(tmp_path):
    results, logs = {}, {}
    for name in ("haproxy", "fastlb"):
        server = SegmentedServer("be1")
        syslog = SyslogReceiver()
        port = free_port()
        path = tmp_path / f"{name}.cfg"
        path.write_text(f"global\n    log 127.0.0.1:{syslog.port} local0\n" +
                        response_config(port, server.port, server.port).replace(
                            "defaults\n", "defaults\n    log global\n    option httplog\n", 1))
        cmd = ["haproxy", "-db", "-f", str(path)] if name == "haproxy" else \
            FASTLB + ["-d", "-f", str(path), "-n", "1"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, cwd=tmp_path, env=ENV,
                                stderr=open(tmp_path / f"{name}.err", "wb"))
        try:
            wait_until(lambda: listening_sockets(port) > 0, message=f"{name} listening")
            results[name] = {}
            for target in RESPONSES:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                sock.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                             % target.encode())
                data = b""
                while True:
                    piece = sock.recv(65536)
                    if not piece:
                        break
                    data += piece
                sock.close()
                head, _, body = data.partition(b"\r\n\r\n")
                line, fields = parse_headers(head + b"\r\n\r\n")
                marks = sorted((k, v) for k, v in fields.items() if k.startswith("x-"))
                if "transfer-encoding" in fields:
                    body = read_raw_body(None, fields, body)[1]
                results[name][target] = (line.split()[1], marks,
                                         body if line.split()[1] == "200" else b"")
                logs.setdefault(name, {})[target] = [outcome(x) for x in syslog.drain(0.3)]
        finally:
            proc.terminate()
            proc.wait(5)
            server.close()
            syslog.sock.close()
    assert results["fastlb"] == results["haproxy"]
    assert logs["fastlb"] == logs["haproxy"]
    ours = results["fastlb"]
    assert ours["/plain"] == ("200", [("x-before", "4"), ("x-rbody", "abcdefgh"),
                                      ("x-rlen", "10"), ("x-rsize", "10")], b"abcdefghij")
    assert ours["/deny"][0] == "502"
    assert ("x-rlen", "7") in ours["/chunked"][1] and ours["/chunked"][2] == b"abcdefg"
    assert ours["/close"][2] == b"until close" and ("x-rlen", "11") in ours["/close"][1]
    assert ours["/slow"][0] == "504"
    assert ("x-rlen", "5") in ours["/nowait"][1] and ours["/nowait"][2] == b"first-then"
