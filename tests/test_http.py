"""mode http over real sockets: proxying, keep-alive and reuse, framing, errors, timeouts, logs."""
from __future__ import annotations

import re
import time

import pytest

from conftest import (HTTP_DEFAULTS, HttpClient, free_port, http_response, raw_backend, read_head,
                      recv_until_eof)

DEFAULTS = """
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
"""


def http_config(port, servers, frontend="", backend="", defaults="", global_=""):
    lines = "\n".join(f"    server {name} 127.0.0.1:{p}" for name, p in servers)
    return f"""
global
{global_}
{DEFAULTS}
{defaults}
frontend fe
    bind 127.0.0.1:{port}
{frontend}
    default_backend be
backend be
{backend}
{lines}
"""


def start(fastlb, http_backends, names=("s1",), **kwargs):
    servers = [http_backends(name) for name in names]
    port = free_port()
    lb = fastlb(http_config(port, [(s.name, s.port) for s in servers], **kwargs), ports=[port])
    return lb, port, servers


# -- proxying and balancing ---------------------------------------------------------------------
def test_three_servers_round_robin_per_request_over_keep_alive(fastlb, http_backends):
    _, port, servers = start(fastlb, http_backends, names=("s1", "s2", "s3"))
    client = HttpClient(port)
    bodies = [client.get(f"/r{i}")[2] for i in range(6)]
    assert bodies == [b"s1 GET /r0", b"s2 GET /r1", b"s3 GET /r2",
                      b"s1 GET /r3", b"s2 GET /r4", b"s3 GET /r5"]
    # ... and with one connection per request
    for i, expected in enumerate([b"s1", b"s2", b"s3"]):
        c = HttpClient(port)
        status, fields, body = c.get("/x", headers=[("Connection", "close")])
        assert body.startswith(expected) and fields["connection"] == "close"
        assert c.closed()


def test_server_connection_is_reused_for_the_same_server(fastlb, http_backends):
    _, port, (server,) = start(fastlb, http_backends)
    client = HttpClient(port)
    for i in range(5):
        assert client.get(f"/{i}")[0] == 200
    assert [r["conn"] for r in server.requests] == [server.requests[0]["conn"]] * 5
    assert server.accepted == 1


def test_ten_thousand_requests_on_one_keep_alive_connection(fastlb, http_backends):
    _, port, (server,) = start(fastlb, http_backends)
    client = HttpClient(port, timeout=10)
    request = b"GET /k HTTP/1.1\r\nHost: test\r\n\r\n"
    expected = http_response(body=b"s1 GET /k")
    started = time.monotonic()
    for batch in range(100):
        client.send(request * 100)                 # pipelined, 100 at a time
        data = b""
        while len(data) < len(expected) * 100:
            chunk = client.sock.recv(1 << 20)
            assert chunk, "connection closed"
            data += chunk
        assert data == expected * 100
    assert len(server.requests) == 10_000 and server.accepted == 1
    assert time.monotonic() - started < 60


def test_request_split_across_packets_and_pipelined(fastlb, http_backends):
    _, port, (server,) = start(fastlb, http_backends)
    client = HttpClient(port)
    raw = b"POST /split HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello"
    for byte in raw:
        client.send(bytes([byte]))
        time.sleep(0.001)
    assert client.response()[2] == b"s1 POST /split"
    client.send(b"GET /p1 HTTP/1.1\r\nHost: t\r\n\r\nGET /p2 HTTP/1.1\r\nHost: t\r\n\r\n")
    assert client.response()[2] == b"s1 GET /p1"
    assert client.response()[2] == b"s1 GET /p2"
    assert server.requests[0]["body"] == b"hello"


def test_chunked_bodies_both_ways(fastlb, http_backends):
    def respond(req):
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (b"ab", b"cdef"))
        return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n")

    server = http_backends("c", respond)
    port = free_port()
    fastlb(http_config(port, [("c", server.port)]), ports=[port])
    client = HttpClient(port)
    client.send(b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nX-Trailer: 1\r\n\r\n")
    status, fields, body = client.response()
    assert status == 200 and body == b"abcdef"
    assert server.requests[0]["body"] == b"abcdefg"
    assert client.get("/after")[0] == 200       # framing ended exactly: connection reusable


def test_head_response_never_carries_a_body(fastlb, http_backends):
    def respond(req):
        # a broken server: announces 10 bytes and sends them even for HEAD
        return http_response(body=b"0123456789")

    server = http_backends("h", respond)
    port = free_port()
    fastlb(http_config(port, [("h", server.port)]), ports=[port])
    client = HttpClient(port)
    client.request("HEAD", "/")
    status, fields, _ = client.response(head_only=True)
    assert status == 200 and fields["content-length"] == "10"
    status, _, body = client.get("/next")
    assert status == 200 and body == b"0123456789"   # not the stray HEAD bytes
    assert server.accepted == 2                       # the HEAD connection was not reused


def test_connection_close_and_junk_after_it(fastlb, http_backends):
    _, port, (server,) = start(fastlb, http_backends)
    client = HttpClient(port)
    client.send(b"GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nJUNK NOT A REQUEST\r\n\r\n")
    status, fields, body = client.response()
    assert status == 200 and fields["connection"] == "close"
    assert client.closed()
    assert [r["path"] for r in server.requests] == ["/last"]


def test_http10_client(fastlb, http_backends):
    _, port, _ = start(fastlb, http_backends)
    client = HttpClient(port)
    client.send(b"GET /old HTTP/1.0\r\n\r\n")
    status, fields, body = client.response()
    assert status == 200 and body == b"s1 GET /old"
    assert client.closed()


def test_expect_100_continue(fastlb, http_backends):
    def handler(conn, backend):
        head, rest = read_head(conn)
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        while len(rest) < 4:
            rest += conn.recv(100)
        conn.sendall(http_response(body=b"got " + rest))

    from conftest import Backend
    server = Backend(handler)
    port = free_port()
    fastlb(http_config(port, [("s", server.port)]), ports=[port])
    client = HttpClient(port)
    client.send(b"PUT /c HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    assert client.response(head_only=True)[0] == 100
    client.send(b"data")
    assert client.response()[:3:2] == (200, b"got data")
    server.close()


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(fastlb, http_backends, status):
    server = http_backends("n", lambda req: f"HTTP/1.1 {status} X\r\n\r\n".encode())
    port = free_port()
    fastlb(http_config(port, [("n", server.port)]), ports=[port])
    client = HttpClient(port)
    assert client.get("/")[0] == status
    assert client.get("/")[0] == status           # still in step on the same connection


def test_close_delimited_response(fastlb, http_backends):
    server = raw_backend(b"HTTP/1.0 200 OK\r\n\r\nuntil the end")
    port = free_port()
    fastlb(http_config(port, [("s", server.port)]), ports=[port])
    client = HttpClient(port)
    status, fields, body = client.get("/")
    assert status == 200 and body == b"until the end" and fields["connection"] == "close"
    server.close()


def test_stale_kept_connection_is_retried_on_a_fresh_one(fastlb, http_backends):
    """The server drops its kept-alive connection as the second request arrives."""
    seen = []

    def respond(req):
        seen.append(req["conn"])
        if req["path"] == "/second" and seen.count(req["conn"]) == 2:
            return None                            # close without answering
        return http_response(body=req["path"].encode())

    server = http_backends("r", respond)
    port = free_port()
    fastlb(http_config(port, [("r", server.port)]), ports=[port])
    client = HttpClient(port)
    assert client.get("/first")[2] == b"/first"
    assert client.get("/second")[2] == b"/second"
    assert server.accepted == 2


def test_option_forwardfor(fastlb, http_backends):
    _, port, (server,) = start(fastlb, http_backends, frontend="    option forwardfor")
    HttpClient(port).get("/")
    assert server.requests[-1]["headers"]["x-forwarded-for"] == "127.0.0.1"
    _, port2, (server2,) = start(fastlb, http_backends,
                                 frontend="    option forwardfor header X-Client if-none")
    c = HttpClient(port2)
    c.get("/", headers=[("X-Client", "1.2.3.4")])
    c.get("/")
    assert [r["headers"]["x-client"] for r in server2.requests] == ["1.2.3.4", "127.0.0.1"]
    _, port3, (server3,) = start(fastlb, http_backends,
                                 frontend="    option forwardfor except 127.0.0.0/8")
    HttpClient(port3).get("/")
    assert "x-forwarded-for" not in server3.requests[-1]["headers"]


def test_tcp_frontend_to_http_backend(fastlb, http_backends):
    server = http_backends("h")
    port = free_port()
    fastlb(f"""
    defaults
        timeout connect 1s
        timeout client 5s
        timeout server 5s
    frontend fe
        mode tcp
        bind 127.0.0.1:{port}
        default_backend be
    backend be
        mode http
        server h 127.0.0.1:{server.port}
    """, ports=[port])
    assert HttpClient(port).get("/t")[2] == b"h GET /t"


# -- errors ---------------------------------------------------------------------------------------
BAD_REQUESTS = [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: b\nY: c\r\n\r\n",              # bare LF
    b"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n",                   # bare CR
    b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",                   # obs-fold
    b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"GET /\x01 HTTP/1.1\r\n\r\n",
]


@pytest.mark.parametrize("raw", BAD_REQUESTS)
def test_malformed_and_smuggling_requests_get_400(fastlb, http_backends, raw):
    _, port, (server,) = start(fastlb, http_backends)
    client = HttpClient(port)
    client.send(raw)
    status, fields, body = client.response()
    assert status == 400 and b"Your browser sent an invalid request." in body
    assert client.closed()
    assert server.requests == []


def test_invalid_chunk_size_is_400_and_not_forwarded_further(fastlb, http_backends):
    _, port, (server,) = start(fastlb, http_backends)
    client = HttpClient(port)
    client.send(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n")
    status, _, _ = client.response()
    assert status == 400 and client.closed()


def test_oversized_head_is_400(fastlb, http_backends):
    _, port, _ = start(fastlb, http_backends)
    client = HttpClient(port)
    client.send(b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    assert client.response()[0] == 400


def test_slowloris_gets_408(fastlb, http_backends):
    _, port, _ = start(fastlb, http_backends, defaults="    timeout http-request 300ms")
    client = HttpClient(port)
    started = time.monotonic()
    client.send(b"GET / HTTP/1.1\r\nHost: t\r\n")
    for _ in range(3):
        time.sleep(0.1)
        client.send(b"X-Slow: 1\r\n")            # trickling headers does not extend the timer
    status, fields, body = client.response()
    assert status == 408 and fields["connection"] == "close"
    assert 0.25 < time.monotonic() - started < 1.5


def test_keep_alive_timeout_closes_quietly(fastlb, http_backends):
    _, port, _ = start(fastlb, http_backends, defaults="    timeout http-keep-alive 300ms")
    client = HttpClient(port)
    assert client.get("/")[0] == 200
    started = time.monotonic()
    assert client.closed(timeout=3)              # no 408 page, just a close
    assert 0.25 < time.monotonic() - started < 1.5


def test_no_server_503_and_bad_response_502_and_timeout_504(fastlb, http_backends):
    from conftest import Backend
    port = free_port()
    fastlb(http_config(port, [("dead", free_port())], backend="    retries 0"), ports=[port])
    status, _, body = HttpClient(port).get("/")
    assert status == 503 and b"No server is available" in body

    bad = raw_backend(b"NOT HTTP AT ALL\r\n\r\n")
    port = free_port()
    fastlb(http_config(port, [("bad", bad.port)]), ports=[port])
    status, _, body = HttpClient(port).get("/")
    assert status == 502 and b"invalid or incomplete response" in body

    slow = Backend(lambda conn, b: (read_head(conn), time.sleep(3)))
    port = free_port()
    fastlb(http_config(port, [("slow", slow.port)], defaults="    timeout server 300ms"),
           ports=[port])
    started = time.monotonic()
    status, _, body = HttpClient(port).get("/")
    assert status == 504 and 0.25 < time.monotonic() - started < 1.5
    for b in (bad, slow):
        b.close()


def test_server_closing_mid_response_aborts_the_client(fastlb, http_backends):
    server = raw_backend(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
    port = free_port()
    fastlb(http_config(port, [("s", server.port)]), ports=[port])
    client = HttpClient(port)
    client.request("GET", "/")
    status, fields, _ = client.response(head_only=True)
    assert status == 200
    data = client.rest + recv_until_eof(client.sock)
    assert data == b"partial"                     # then closed: the client knows it is short
    server.close()


# -- logs -----------------------------------------------------------------------------------------
def test_httplog_line(fastlb, http_backends, syslog):
    _, port, _ = start(fastlb, http_backends,
                       global_=f"    log 127.0.0.1:{syslog.port} local0",
                       defaults="    log global\n    option httplog")
    client = HttpClient(port)
    client.get("/logged?q=1")
    line = syslog.recv()
    assert re.search(
        r"fastlb\[\d+\]: 127\.0\.0\.1:\d+ \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\] fe be/s1 "
        r"\d+/0/\d+/\d+/\d+ 200 \d+ - - ---- 1/1/0/0/0 0/0 \"GET /logged\?q=1 HTTP/1\.1\"\n$", line), line
    client.send(b"BROKEN\r\n\r\n")
    line = syslog.recv()
    assert re.search(r" fe fe/<NOSRV> -1/-1/-1/-1/\d+ 400 \d+ - - PR-- .* \"<BADREQ>\"\n$", line) \
        or re.search(r" 400 \d+ - - PR-- .*\"<BADREQ>\"\n$", line), line


def test_errorfile_inheritance_and_empty_file(fastlb, http_backends, tmp_path):
    (tmp_path / "503-default.http").write_bytes(
        b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\ndefaults says no\n")
    (tmp_path / "503-fe.http").write_bytes(
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 12\r\n\r\nfrontend no\n")
    port, port2 = free_port(), free_port()
    fastlb(HTTP_DEFAULTS + f"""
        timeout http-request 300ms
        errorfile 503 {tmp_path}/503-default.http
        errorfile 408 /dev/null
    frontend fe
        bind 127.0.0.1:{port}
        errorfile 503 {tmp_path}/503-fe.http
    frontend fe2
        bind 127.0.0.1:{port2}
        errorfile 503 {tmp_path}/503-fe.http
        default_backend none
    backend none
    """, ports=[port, port2])
    # no backend: the frontend's own file for 503, sent as written
    assert HttpClient(port).get("/")[2] == b"frontend no\n"
    # with a backend, HAProxy looks there first: its file is inherited from defaults
    client = HttpClient(port2)
    client.request("GET", "/")
    assert client.response()[2] == b"defaults says no\n"   # close-delimited
    # 408 from /dev/null: nothing is sent, the connection is just closed
    slow = HttpClient(port)
    slow.send(b"GET / HTTP/1.1\r\n")
    started = time.monotonic()
    assert recv_until_eof(slow.sock) == b""
    assert 0.2 < time.monotonic() - started < 1.5


def test_errorfile_must_exist(tmp_path):
    import subprocess
    from conftest import FASTLB
    (tmp_path / "haproxy.cfg").write_text("defaults\n    mode http\n    errorfile 503 /no/such\n")
    result = subprocess.run(FASTLB + ["-c", "-f", "haproxy.cfg"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=30)
    assert result.returncode == 1
    assert "parsing [haproxy.cfg:3] : 'errorfile' : error opening file </no/such>" in result.stderr


@pytest.mark.parametrize("target, answered", [
    ("/health", True),
    ("http://www.haproxy.org/health", True),     # absolute form: path part compared
    ("/health?x=1", False),
    ("/healthz", False),
])
def test_monitor_uri(fastlb, http_backends, target, answered):
    _, port, (server,) = start(fastlb, http_backends, frontend="    monitor-uri /health")
    client = HttpClient(port)
    status, fields, body = client.get(target)
    if answered:
        assert status == 200 and b"Service ready." in body and server.requests == []
        assert client.get("/after")[0] == 200          # still kept alive
    else:
        assert status == 200 and body.startswith(b"s1 GET")


def test_websocket_upgrade_becomes_a_tunnel(fastlb, http_backends, syslog):
    from conftest import Backend, echo_handler

    def handler(conn, backend):
        head, rest = read_head(conn)
        assert b"upgrade: websocket" in head.lower()
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                     b"Upgrade: websocket\r\n\r\nserver-hello")
        if rest:
            conn.sendall(rest)
        echo_handler(conn, backend)

    server = Backend(handler)
    port = free_port()
    fastlb(http_config(port, [("ws", server.port)], global_=f"    log 127.0.0.1:{syslog.port} local0",
                       defaults="    log global\n    option httplog\n    timeout tunnel 400ms\n"
                                "    timeout client 100ms\n    timeout server 100ms"),
           ports=[port])
    client = HttpClient(port)
    client.send(b"GET /chat HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
                b"early-frame")
    status, fields, _ = client.response(head_only=True)
    assert status == 101 and fields["upgrade"] == "websocket"
    data = client.rest
    while len(data) < len(b"server-helloearly-frame"):
        data += client.sock.recv(100)
    assert data == b"server-helloearly-frame"
    for _ in range(3):                 # 150 ms gaps: longer than client/server timeouts,
        time.sleep(0.15)               # shorter than timeout tunnel
        client.send(b"ping")
        assert client.sock.recv(100) == b"ping"
    started = time.monotonic()
    assert recv_until_eof(client.sock) == b""     # idle: timeout tunnel ends it
    assert 0.3 < time.monotonic() - started < 1.5
    line = syslog.recv()
    assert ' 101 ' in line and '"GET /chat HTTP/1.1"' in line
    server.close()


@pytest.mark.parametrize("option, client_closed, server_conns", [
    ("option http-keep-alive", False, 1),
    ("option http-server-close", False, 3),
    ("option httpclose", True, 1),
])
def test_connection_modes(fastlb, http_backends, option, client_closed, server_conns):
    _, port, (server,) = start(fastlb, http_backends, backend="    " + option)
    client = HttpClient(port)
    for i in range(3 if not client_closed else 1):
        status, fields, _ = client.get(f"/{i}")
        assert status == 200
    if client_closed:
        assert fields["connection"] == "close" and client.closed()
    assert server.accepted == server_conns
    if option != "option http-keep-alive":
        assert server.requests[0]["headers"]["connection"] == "close"


def test_http_reuse_accepted(fastlb, http_backends):
    _, port, (server,) = start(fastlb, http_backends, backend="    http-reuse always")
    client = HttpClient(port)
    assert [client.get("/")[0] for _ in range(2)] == [200, 200] and server.accepted == 1


def test_log_format_and_captures(fastlb, http_backends, syslog):
    _, port, _ = start(fastlb, http_backends,
                       global_=f"    log 127.0.0.1:{syslog.port} local0",
                       defaults="    log global",
                       frontend=('    capture request header User-Agent len 5\n'
                                 '    log-format "%ci %ft %b/%s %ST %HM %HP %HQ %{+Q}r %hr %%"'))
    HttpClient(port).get("/p?q=1", headers=[("User-Agent", "curl/8.0")])
    line = syslog.recv()
    assert line.endswith(': 127.0.0.1 fe be/s1 200 GET /p ?q=1 "GET /p?q=1 HTTP/1.1" {curl/} %\n'), line


def test_bad_log_format_is_refused(tmp_path):
    import subprocess
    from conftest import FASTLB
    (tmp_path / "haproxy.cfg").write_text('frontend fe\n    mode http\n    log-format "%zz"\n')
    result = subprocess.run(FASTLB + ["-c", "-f", "haproxy.cfg"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=30)
    assert result.returncode == 1 and "no such format variable 'zz'" in result.stderr


def test_absurd_content_length_is_400_and_the_worker_survives(fastlb, http_backends):
    lb, port, _ = start(fastlb, http_backends)
    workers = lb.worker_pids()
    client = HttpClient(port)
    client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999\r\n\r\n")
    assert client.response()[0] == 400
    assert HttpClient(port).get("/")[0] == 200 and lb.worker_pids() == workers


@pytest.mark.parametrize("dontlognull", [False, True])
def test_empty_connections_are_logged_unless_dontlognull(fastlb, http_backends, syslog, dontlognull):
    _, port, _ = start(fastlb, http_backends, global_=f"    log 127.0.0.1:{syslog.port} local0",
                       defaults="    log global\n    option httplog\n    timeout http-request 300ms"
                                + ("\n    option dontlognull" if dontlognull else ""))
    HttpClient(port).close()                           # connects, sends nothing, leaves
    idle = HttpClient(port)                            # sends nothing, times out
    assert recv_until_eof(idle.sock).startswith(b"HTTP/1.1 408 Request Time-out\r\n")
    lines = syslog.drain(0.5)
    if dontlognull:
        assert lines == []
    else:
        assert len(lines) == 2, lines
        assert any(re.search(r' fe fe/<NOSRV> -1/-1/-1/-1/\d+ 400 0 - - CR-- .*"<BADREQ>"\n$', l) for l in lines)
        assert any(re.search(r' fe fe/<NOSRV> -1/-1/-1/-1/\d+ 408 0 - - cR-- .*"<BADREQ>"\n$', l) for l in lines)
