"""Error pages and after-response rules, side by side with haproxy: ``http-errors``
sections with ``errorfiles`` (all codes, some codes, precedence against ``errorfile``
lines in order), ``errorloc302``/``errorloc303``, deny / return with ``errorfile``,
``errorfiles``, ``default-errorfiles``, a body and ``hdr``, ``http-error`` pages (log-format
ones included: lf-string, lf-file, %[...] in hdr), and ``http-after-response``
rules on the server's responses and on every answer of the proxy's own.

For each request the status line, the response headers (in order) and the body the
client reads must be the same in both.
"""
from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

from conftest import FASTLB, Backend, free_port, listening_sockets, parse_headers, read_body, \
    read_head, recv_until_eof, wait_until

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")

FILES = {
    "site-403.http": b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: 9\r\nX-Page: site\r\n\r\nsite 403\n",
    "site-404.http": b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: 9\r\nX-Page: site\r\n\r\nsite 404\n",
    "site-503.http": b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: 9\r\nX-Page: site\r\n\r\nsite 503\n",
    "other-403.http": b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
                      b"Content-Length: 10\r\nX-Page: other\r\n\r\nother 403\n",
    "own-404.http": b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
                    b"Content-Length: 8\r\nX-Page: own\r\n\r\nown 404\n",
    "rule-429.http": b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: 9\r\nX-Page: rule\r\n\r\nslow down",
    "ret-200.http": b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
                    b"X-Page: ret\r\n\r\npong\n",
    "lf-403.txt": b"forbidden %[path] on %[fe_name]\n",
}


def config(port: int, port2: int, port3: int, port4: int, port5: int, backend: int,
           dead: int) -> str:
    return f"""
userlist users
    user admin insecure-password secret
http-errors site
    errorfile 403 site-403.http
    errorfile 404 site-404.http
    errorfile 503 site-503.http
http-errors other
    errorfile 403 other-403.http
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    # all of "site", then "other" for 403 only, then an errorfile line for 404:
    # each overrides what came before it
    errorfiles site
    errorfiles other 403
    errorfile 404 own-404.http
    monitor-uri /mon
    http-request set-var(txn.path) path
    timeout tarpit 200ms
    http-request tarpit if {{ path /tarpit }}
    http-request tarpit deny_status 403 if {{ path /tarpit403 }}
    http-request tarpit status 200 content-type text/plain string held if {{ path /tarpit-string }}
    http-request deny if {{ path /deny }}
    http-request deny deny_status 404 if {{ path /deny404 }}
    http-request deny status 429 errorfile rule-429.http if {{ path /deny-file }}
    http-request deny status 403 errorfiles site if {{ path /deny-errors }}
    http-request deny status 403 content-type text/plain string "no way" hdr X-Why %[path] if {{ path /deny-string }}
    http-request return errorfile ret-200.http if {{ path /ping }}
    http-request return status 503 default-errorfiles if {{ path /ret-default }}
    http-request return status 404 errorfiles other if {{ path /ret-undeclared }}
    http-request return status 201 content-type text/plain lf-string "made %[path]" hdr X-Ret yes if {{ path /ret-body }}
    http-request return status 204 if {{ path /ret-empty }}
    http-request redirect location /elsewhere if {{ path /redir }}
    http-after-response set-header X-After %[status]
    http-after-response add-header X-Path %[var(txn.path)]
    http-after-response set-status 299 reason Fine if {{ var(txn.path) -m str /status }}
    http-after-response del-header x-origin if {{ var(txn.path) -m str /del }}
    http-after-response replace-value x-list ^b$ B
    http-after-response allow if {{ var(txn.path) -m str /allow }}
    http-after-response set-header X-Late 1
    use_backend dead if {{ path /dead }}
    default_backend be
frontend fe2
    bind 127.0.0.1:{port2}
    errorloc302 503 /sorry
    default_backend dead
frontend fe3
    bind 127.0.0.1:{port3}
    errorloc303 403 https://example.com/forbidden
    http-request deny
frontend fe4
    bind 127.0.0.1:{port4}
    errorfile 400 site-403.http
    http-error status 503 content-type text/plain string "busy now" hdr X-Err static hdr Retry-After 5
    http-error status 403 errorfile other-403.http
    http-error status 404 errorfiles site
    http-error status 429 content-type text/html file ret-200.http
    http-error status 400 default-errorfiles
    http-error status 500
    http-request deny if {{ path /deny }}
    http-request deny deny_status 404 if {{ path /deny404 }}
    http-request deny deny_status 429 if {{ path /deny429 }}
    http-request deny deny_status 400 if {{ path /deny400 }}
    http-request deny deny_status 500 if {{ path /deny500 }}
    default_backend lost
frontend fe5
    bind 127.0.0.1:{port5}
    http-error status 503 content-type text/plain lf-string "down for %[req.hdr(host)] %[path] %[var(txn.v)]" hdr X-Err "%[method]" hdr X-Empty "%[req.hdr(nope)]"
    http-error status 403 content-type text/plain lf-file lf-403.txt hdr X-Fe "%[fe_name]"
    http-error status 401 content-type text/plain lf-string "auth needed for %[path]"
    http-request set-var(txn.v) str(vv)
    http-request deny if {{ path /deny }}
    http-request auth realm Zone if {{ path /auth }} !{{ http_auth(users) }}
    default_backend lost
backend lost
    server s1 127.0.0.1:{dead}
backend be
    http-after-response set-header X-Be-After be
    http-response deny content-type text/plain string "response denied" if {{ res.hdr(x-origin) -m str deny-me }}
    http-response return status 202 content-type text/plain lf-string "replaced %[res.hdr(x-list)]" if {{ res.hdr(x-origin) -m str return-me }}
    http-response deny deny_status 404 if {{ res.hdr(x-origin) -m str page-me }}
    http-response redirect location /moved code 301 if {{ res.hdr(x-origin) -m str redirect-me }}
    http-response redirect location /moved-%[res.hdr(x-origin),word(1,-)] if {{ res.hdr(x-origin) -m str redirect-fmt }}
    server s1 127.0.0.1:{backend}
backend dead
    errorfile 503 site-503.http
    http-after-response set-header X-Dead 1
    server s1 127.0.0.1:{dead}
"""


# (port index, path, extra headers)
REQUESTS = [
    (0, "/", []), (0, "/status", []), (0, "/del", []), (0, "/allow", []),
    (0, "/deny-resp", []), (0, "/ret-resp", []), (0, "/page-resp", []), (0, "/mon", []),
    (0, "/redir-resp", []), (0, "/redir-fmt", []),
    (0, "/tarpit", []), (0, "/tarpit403", []), (0, "/tarpit-string", []), (0, "/deny", []), (0, "/deny404", []), (0, "/deny-file", []), (0, "/deny-errors", []),
    (0, "/deny-string", []), (0, "/ping", []), (0, "/ret-default", []),
    (0, "/ret-undeclared", []), (0, "/ret-body", []), (0, "/ret-empty", []), (0, "/redir", []),
    (0, "/dead", []),
    (1, "/", []), (2, "/", []),
    (3, "/", []), (3, "/deny", []), (3, "/deny404", []), (3, "/deny429", []), (3, "/deny400", []),
    (3, "/deny500", []),
    (4, "/", []), (4, "/deny", []), (4, "/auth", []), (4, "/page?x=1", []),
]


class OriginBackend(Backend):
    """Answers with headers the after-response rules edit."""

    def __init__(self):
        super().__init__(self._handle, "origin")

    def _handle(self, conn, backend):
        rest = b""
        while True:
            head, rest = read_head(conn, rest)
            if head is None:
                return
            line, fields = parse_headers(head)
            _, rest = read_body(conn, fields, rest)
            path = head.split(b" ", 2)[1]
            origin = {b"/deny-resp": b"deny-me", b"/ret-resp": b"return-me",
                      b"/page-resp": b"page-me", b"/redir-resp": b"redirect-me",
                      b"/redir-fmt": b"redirect-fmt"}.get(path, b"origin")
            conn.sendall(b"HTTP/1.1 200 OK\r\nx-origin: " + origin + b"\r\nx-list: a, b, c\r\n"
                         b"content-length: 2\r\n\r\nok")


def fetch(port: int, path: str, headers) -> tuple:
    """(status line, [(name, value)], body) of one request on its own connection."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        lines = [f"GET {path} HTTP/1.1", "Host: test"] + [f"{n}: {v}" for n, v in headers] + \
            ["Connection: close"]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = recv_until_eof(sock)
    finally:
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *fields = head.decode("latin-1").split("\r\n")
    pairs = [(n.strip().lower(), v.strip()) for n, v in (f.split(":", 1) for f in fields if f)]
    return status_line, pairs, body


# differ between two runs (or two programs) for reasons outside these features
IGNORED = {"date", "server", "connection"}


def run(cmd, ports, tmp_path, name):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, cwd=tmp_path,
                            stderr=open(tmp_path / f"{name}.err", "wb"))
    try:
        wait_until(lambda: all(listening_sockets(p) > 0 for p in ports),
                   message=f"{name} listening")
        answers = []
        for which, path, headers in REQUESTS:
            line, pairs, body = fetch(ports[which], path, headers)
            answers.append((f"{which}:{path}", line,
                            [(n, v) for n, v in pairs if n not in IGNORED], body))
        return answers
    finally:
        proc.terminate()
        proc.wait(5)


def test_error_pages_and_after_response_rules_as_haproxy(tmp_path):
    for name, content in FILES.items():
        (tmp_path / name).write_bytes(content)
    backend = OriginBackend()
    dead_port = free_port()                     # nothing listens: 503
    results = {}
    try:
        for name in ("haproxy", "fastlb"):
            ports = [free_port() for _ in range(5)]
            path = tmp_path / f"{name}.cfg"
            path.write_text(config(*ports, backend.port, dead_port))
            base = ["haproxy"] if name == "haproxy" else FASTLB
            check = subprocess.run(base + ["-c", "-f", str(path)], capture_output=True,
                                   text=True, cwd=tmp_path)
            assert check.returncode == 0, f"{name} -c: {check.stderr}"
            cmd = base + (["-db"] if name == "haproxy" else ["-d", "-n", "1"]) + ["-f", str(path)]
            results[name] = run(cmd, ports, tmp_path, name)
            time.sleep(0.1)
    finally:
        backend.close()
    differences = []
    for theirs, ours in zip(results["haproxy"], results["fastlb"]):
        what = theirs[0]
        if ours[1] != theirs[1]:
            differences.append(f"{what}: status line {ours[1]!r} != haproxy's {theirs[1]!r}")
        if ours[2] != theirs[2]:
            differences.append(f"{what}: headers {ours[2]} != haproxy's {theirs[2]}")
        if ours[3] != theirs[3]:
            differences.append(f"{what}: body {ours[3]!r} != haproxy's {theirs[3]!r}")
    assert not differences, "\n".join(differences)


@pytest.mark.parametrize("lines, message", [
    (["errorfiles nosuch"], "unknown http-errors section 'nosuch'"),
    (["errorfiles site 299"], "status code '299' not handled"),
    (["http-request deny status 299 errorfiles site"], "status code '299' not handled"),
    (["http-request deny deny_status 299"], "status code '299' not handled"),
    (["http-request return status 404 errorfiles nosuch"], "unknown http-errors section"),
    (["http-request return errorfile /no/such/file"], "failed to open file"),
    (["http-request deny string nope"], "a body needs a 'content-type'"),
    (["http-request return string a errorfile site-403.http"], "already defined"),
    (["errorloc 503"], "expects <status_code> and <url>"),
    (["errorloc303 299 /x"], "status code '299' not handled"),
    (["http-after-response deny"], "'http-after-response deny' is not supported"),
    (["http-after-response set-header X %[req.hdr(host)]"], "needs 'HTTP request headers'"),
])
def test_both_refuse_the_same_mistakes(tmp_path, lines, message):
    """A mistake in these keywords stops both at start-up; fastlb names the line.  (The
    same config without the lines is valid in both: see test_valid_base_config.)"""
    for name, content in FILES.items():
        (tmp_path / name).write_bytes(content)
    path = tmp_path / "bad.cfg"
    body = "".join(f"    {line}\n" for line in lines)
    path.write_text("http-errors site\n    errorfile 403 site-403.http\n"
                    "defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n"
                    "    timeout server 1s\nfrontend fe\n    bind 127.0.0.1:1\n"
                    f"{body}    default_backend be\nbackend be\n    server s1 127.0.0.1:1\n")
    haproxy = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True,
                             cwd=tmp_path)
    ours = subprocess.run(FASTLB + ["-c", "-f", str(path)], capture_output=True, text=True,
                          cwd=tmp_path)
    assert haproxy.returncode != 0, haproxy.stderr
    assert ours.returncode != 0
    assert message in ours.stderr, ours.stderr


def test_valid_base_config(tmp_path):
    for name, content in FILES.items():
        (tmp_path / name).write_bytes(content)
    path = tmp_path / "ok.cfg"
    path.write_text("http-errors site\n    errorfile 403 site-403.http\n"
                    "defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n"
                    "    timeout server 1s\nfrontend fe\n    bind 127.0.0.1:1\n"
                    "    errorfiles site\n    http-request deny errorfiles site\n"
                    "    http-after-response set-header X %[status]\n"
                    "    default_backend be\nbackend be\n    server s1 127.0.0.1:1\n")
    for cmd in (["haproxy"], FASTLB):
        result = subprocess.run(cmd + ["-c", "-f", str(path)], capture_output=True, text=True,
                                cwd=tmp_path)
        assert result.returncode == 0, result.stderr


def test_http_errors_section_mistakes_are_refused_by_both(tmp_path):
    (tmp_path / "p.http").write_bytes(FILES["site-403.http"])
    for text, message in [
        ("http-errors a\n    errorfile 403 p.http\n", None),
        ("http-errors a\n    errorfile 403 p.http\nhttp-errors a\n    errorfile 403 p.http\n",
         "http-errors section 'a' already exists"),
        ("http-errors a\n    errorloc 403 /x\n", "unknown keyword 'errorloc' in 'http-errors'"),
        ("http-errors a\n    errorfile 299 p.http\n", "cannot be overridden"),
        ("http-errors\n", "missing name for http-errors section"),
    ]:
        path = tmp_path / "bad.cfg"
        # a proxy that listens: without one haproxy -c fails on any config
        path.write_text(text + "defaults\n    mode http\n    timeout connect 1s\n"
                        "    timeout client 1s\n    timeout server 1s\nfrontend fe\n"
                        "    bind 127.0.0.1:1\n    default_backend be\nbackend be\n"
                        "    server s1 127.0.0.1:1\n")
        haproxy = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True,
                                 text=True, cwd=tmp_path)
        ours = subprocess.run(FASTLB + ["-c", "-f", str(path)], capture_output=True, text=True,
                              cwd=tmp_path)
        if message is None:                    # the valid one: both take it
            assert haproxy.returncode == 0 and ours.returncode == 0, (haproxy.stderr,
                                                                      ours.stderr)
            continue
        assert haproxy.returncode != 0, (text, haproxy.stderr)
        assert ours.returncode != 0 and message in ours.stderr and "bad.cfg:" in ours.stderr, \
            ours.stderr


def test_tarpit_holds_then_answers_and_logs_as_haproxy(tmp_path):
    """http-request tarpit: nothing for timeout tarpit, then the answer; the log line
    (timers masked) and the time held are haproxy's."""
    from conftest import SyslogReceiver, mask_log_line
    import re
    lines, held = {}, {}
    for name in ("haproxy", "fastlb"):
        syslog = SyslogReceiver()
        port = free_port()
        path = tmp_path / f"{name}.cfg"
        path.write_text(f"""
global
    log 127.0.0.1:{syslog.port} local0
defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    timeout tarpit 400ms
frontend fe
    bind 127.0.0.1:{port}
    http-request tarpit deny_status 403
""")
        base = ["haproxy"] if name == "haproxy" else FASTLB
        cmd = base + (["-db"] if name == "haproxy" else ["-d", "-n", "1"]) + ["-f", str(path)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                cwd=tmp_path)
        try:
            wait_until(lambda: listening_sockets(port) > 0, message=f"{name} listening")
            started = time.monotonic()
            status_line, _, body = fetch(port, "/", [])
            held[name] = time.monotonic() - started
            assert status_line.startswith("HTTP/1.1 403 ") and b"403 Forbidden" in body
            line = syslog.recv()
            # the timers as signs and magnitudes (held ~400ms: Tw and Ta), the connection
            # counts; the byte count is left out (fastlb counts its "connection: close")
            line = re.sub(r" (-?\d+)/(-?\d+)/(-?\d+)/(-?\d+)/(\d+) (\d+) \d+ ",
                          lambda m: " " + "/".join(
                              "-1" if v == "-1" else "HOLD" if int(v) >= 350 else "0"
                              for v in m.groups()[:5]) + f" {m.group(6)} BYTES ",
                          mask_log_line(line))
            lines[name] = line.split("]: ", 1)[-1]
        finally:
            proc.terminate()
            proc.wait(5)
            syslog.sock.close()
    assert lines["fastlb"] == lines["haproxy"], lines
    assert " PT-- " in lines["fastlb"]
    assert 0.35 < held["haproxy"] < 1.0 and 0.35 < held["fastlb"] < 1.0, held


RESPONSE_RULES_CONFIG = """
global
    log 127.0.0.1:{log} len 4096 local0
    stats socket {sock} level admin
defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
listen web
    bind 127.0.0.1:{port}
    http-request set-var(txn.p) path
    http-response deny if {{ var(txn.p) -m str /deny }}
    http-response redirect location /moved if {{ var(txn.p) -m str /redir }}
    http-response return status 200 content-type text/plain string replaced if {{ var(txn.p) -m str /ret }}
    server s1 127.0.0.1:{origin}
"""


def test_response_rules_replace_the_answer_in_logs_and_counters_as_haproxy(tmp_path, syslog):
    """http-response deny / redirect / return: the log shows no response time (%Tr -1) and
    the right termination, the server counts a denial and no failed response or status."""
    import csv
    origin = OriginBackend()
    seen = {}
    try:
        for name in ("haproxy", "fastlb"):
            port = free_port()
            sock = tmp_path / f"{name}.sock"
            path = tmp_path / f"{name}.cfg"
            path.write_text(RESPONSE_RULES_CONFIG.format(log=syslog.port, sock=sock, port=port,
                                                         origin=origin.port))
            cmd = ["haproxy", "-db", "-f", str(path)] if name == "haproxy" else \
                FASTLB + ["-d", "-n", "1", "-f", str(path)]
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    cwd=tmp_path)
            try:
                wait_until(lambda: listening_sockets(port) > 0, message=f"{name} listening")
                lines = []
                for target in ("/deny", "/redir", "/ret", "/"):
                    status = fetch(port, target, [])[0]
                    line = syslog.recv()
                    timers = line.split("] web web/s1 ")[1].split(" ")
                    tr = timers[0].split("/")[3]
                    lines.append((status, tr if tr == "-1" else "Tr", timers[1], timers[5]))
                time.sleep(0.3)
                with socket.socket(socket.AF_UNIX) as cli:
                    cli.connect(str(sock))
                    cli.sendall(b"show stat\n")
                    text = b""
                    while chunk := cli.recv(65536):
                        text += chunk
                rows = {r["svname"]: r for r in csv.DictReader(text.decode().lstrip("# ").splitlines())
                        if r["pxname"] == "web"}
                counters = {n: tuple(rows[n][k] for k in ("dresp", "eresp", "hrsp_2xx", "hrsp_3xx",
                                                          "hrsp_5xx"))
                            for n in ("s1", "BACKEND")}
                seen[name] = (lines, counters)
            finally:
                proc.terminate()
                proc.wait(5)
    finally:
        origin.close()
    lines, counters = seen["fastlb"]
    assert lines[0] == ("HTTP/1.1 502 Bad Gateway", "-1", "502", "PH--")
    assert lines[1][1:] == ("-1", "302", "LH--") and lines[2][1:] == ("-1", "200", "LH--")
    assert counters["s1"][2] == "4"         # the server's own 200s, whatever replaced them
    assert seen["fastlb"] == seen["haproxy"], (seen["fastlb"], seen["haproxy"])


def test_a_head_request_gets_the_page_head_alone_as_from_haproxy(tmp_path):
    """HEAD answered by a page of the proxy's (503, deny, an errorfile): no body follows
    the head, so the client's next request on the connection reads its own response
    (fastlb used to send the page's body, which that client took for the next answer)."""
    (tmp_path / "own-404.http").write_bytes(FILES["own-404.http"])
    backend = Backend(lambda conn, b: conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"), "web")
    answers = {}
    try:
        for program in ("haproxy", "fastlb"):
            port = free_port()
            cfg = tmp_path / f"head-{program}.cfg"
            cfg.write_text(f"""
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    errorfile 404 {tmp_path}/own-404.http
    http-request deny if {{ path /deny }}
    http-request deny deny_status 404 if {{ path /file }}
    use_backend dead if {{ path /dead }}
    default_backend web
backend web
    server s 127.0.0.1:{backend.port}
backend dead
    server s 127.0.0.1:1 disabled
""")
            cmd = ["haproxy", "-f", str(cfg)] if program == "haproxy" else \
                FASTLB + ["-f", str(cfg)]
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_until(lambda: listening_sockets(port) > 0, message="listening")
                got = []
                for path in ("/deny", "/file", "/dead"):
                    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                        # the HEAD and a GET behind it, pipelined on one connection
                        sock.sendall(f"HEAD {path} HTTP/1.1\r\nHost: t\r\n\r\n"
                                     f"GET / HTTP/1.1\r\nHost: t\r\n\r\n".encode())
                        head, rest = read_head(sock, b"")
                        status = head.split(b" ")[1]
                        # after the HEAD's head: the GET's response, or nothing (closed)
                        following = rest
                        sock.settimeout(0.5)
                        try:
                            while len(following) < 12:
                                chunk = sock.recv(4096)
                                if not chunk:
                                    break
                                following += chunk
                        except socket.timeout:
                            pass
                        got.append((status, following[:12]))
                answers[program] = got
            finally:
                proc.terminate()
                proc.wait(5)
    finally:
        backend.close()
    assert answers["fastlb"] == answers["haproxy"]
    assert [status for status, _ in answers["fastlb"]] == [b"403", b"404", b"503"]
    assert all(not following or following.startswith(b"HTTP/1.1 ")
               for _, following in answers["fastlb"])
