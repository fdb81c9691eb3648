"""tcp-request connection / session / content rules, inspect-delay and the layer-6
fetches (req.len, req.payload, req.ssl_sni, ...): the same configs through haproxy 2.6
and fastlb, compared on what matters at this layer: which backend received which bytes,
and what the client got back (an answer, or a close).
"""
from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time

import pytest

from conftest import FASTLB, Backend, free_port, listening_sockets, wait_until

HAPROXY = shutil.which("haproxy")
needs_haproxy = pytest.mark.skipif(HAPROXY is None, reason="haproxy not installed")


class Recorder(Backend):
    """Records the bytes of each connection (until the client's FIN or a quiet 0.3 s),
    then answers its name and closes."""

    def __init__(self, name):
        self.received = []
        super().__init__(self._handle, name)

    def _handle(self, conn, backend):
        conn.settimeout(0.3)
        data = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
        self.received.append(data)
        try:
            conn.sendall(self.name.encode())
        except OSError:
            pass


def client_hello(sni: str | None) -> bytes:
    """A real TLS ClientHello (Python's ssl module writes it; no handshake is finished)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=sni)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def exchange(port: int, chunks: list, pause: float = 0.0, half_close: bool = False,
             wait: float = 2.0) -> str:
    """Send the chunks (``pause`` seconds apart), then read: the answer, "closed" when
    the proxy closed without a byte, "reset", or "open" when nothing came in ``wait``."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(wait)
    answer = b""
    try:
        for i, chunk in enumerate(chunks):
            if i and pause:
                time.sleep(pause)
            sock.sendall(chunk)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        while True:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    except socket.timeout:
        return answer.decode() if answer else "open"
    except ConnectionResetError:
        return answer.decode() if answer else "reset"
    finally:
        sock.close()
    return answer.decode() if answer else "closed"


def run_both(tmp_path, make_config, scenarios, programs=("haproxy", "fastlb")):
    """{program: [(answer, {backend: [bytes]})]} for each scenario (exchange kwargs)."""
    results = {}
    for name in programs:
        backends = [Recorder("be1"), Recorder("be2")]
        port = free_port()
        path = tmp_path / f"{name}.cfg"
        path.write_text(make_config(port, backends[0].port, backends[1].port))
        cmd = [HAPROXY, "-db", "-f", str(path)] if name == "haproxy" else \
            FASTLB + ["-d", "-f", str(path), "-n", "1"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                stderr=open(tmp_path / f"{name}.err", "wb"), cwd=tmp_path)
        try:
            wait_until(lambda: listening_sockets(port) > 0, message=f"{name} listening")
            out = []
            for scenario in scenarios:
                for be in backends:
                    be.received.clear()
                answer = exchange(port, **scenario)
                time.sleep(0.05)
                out.append((answer, {be.name: list(be.received) for be in backends
                                     if be.received}))
            results[name] = out
        finally:
            proc.terminate()
            proc.wait(5)
            for be in backends:
                be.close()
    return results


def assert_same(results, scenarios):
    if "haproxy" not in results:
        return
    differences = []
    for scenario, theirs, ours in zip(scenarios, results["haproxy"], results["fastlb"]):
        if theirs != ours:
            differences.append(f"{scenario}: haproxy {theirs!r} fastlb {ours!r}")
    assert not differences, "\n".join(differences)


BASE = """
defaults
    mode tcp
    timeout connect 2s
    timeout client 5s
    timeout server 5s
"""


def sni_config(port, be1, be2):
    return BASE + f"""
frontend fe
    bind 127.0.0.1:{port}
    tcp-request inspect-delay 2s
    tcp-request content accept if {{ req.ssl_hello_type 1 }}
    use_backend be1 if {{ req.ssl_sni -i example.com }}
    use_backend be1 if {{ req.ssl_ver 3.2:3.3 }} !{{ req.ssl_sni -m found }}
    default_backend be2

backend be1
    server s1 127.0.0.1:{be1}

backend be2
    server s2 127.0.0.1:{be2}
"""


@needs_haproxy
def test_sni_routing_forwards_the_exact_client_hello(tmp_path):
    hello, other = client_hello("example.com"), client_hello("other.org")
    scenarios = [
        dict(chunks=[hello]),
        dict(chunks=[other]),
        dict(chunks=[hello[:3], hello[3:20], hello[20:]], pause=0.2),   # in pieces
        dict(chunks=[client_hello(None)]),                              # no SNI
        dict(chunks=[b"GET / HTTP/1.0\r\n\r\n"]),                     # not TLS: no wait
    ]
    results = run_both(tmp_path, sni_config, scenarios)
    ours = results["fastlb"]
    assert ours[0] == ("be1", {"be1": [hello]})
    assert ours[1] == ("be2", {"be2": [other]})
    assert ours[2] == ("be1", {"be1": [hello]})
    assert ours[3][0] == "be1"            # no SNI, a TLS 1.2+ hello: req.ssl_ver 3.2:3.3
    assert_same(results, scenarios)


def test_sni_routing_with_openssl_s_client(tmp_path, fastlb):
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    backends = [Recorder("be1"), Recorder("be2")]
    port = free_port()
    try:
        fastlb(sni_config(port, backends[0].port, backends[1].port), ports=[port])
        for name, expected in (("example.com", backends[0]), ("www.other.org", backends[1])):
            subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                            "-servername", name], input=b"", capture_output=True, timeout=10)
            wait_until(lambda: expected.received, message=f"{name} reached {expected.name}")
            hello = expected.received[-1]
            assert hello[:1] == b"\x16" and name.encode() in hello
            # the record header's length covers exactly what was received: unchanged bytes
            assert len(hello) == 5 + int.from_bytes(hello[3:5], "big")
        assert len(backends[0].received) == 1 and len(backends[1].received) == 1
    finally:
        for be in backends:
            be.close()


# an RDP connection request: TPKT, X.224, then the load-balancing cookie
RDP = b"\x03\x00\x00\x2a\x25\xe0\x00\x00\x00\x00\x00Cookie: mstshash=NAME\r\n\x01\x00\x08\x00"


def payload_config(port, be1, be2):
    return BASE + f"""
frontend fe
    bind 127.0.0.1:{port}
    tcp-request inspect-delay 1s
    acl magic req.payload(0,4) -m bin 4d414749
    acl long req.len ge 10
    tcp-request content reject if {{ req.payload(0,3) -m str BAD }}
    tcp-request content accept if magic || long
    tcp-request content reject if WAIT_END
    use_backend be1 if magic
    use_backend be1 if {{ req.payload_lv(0,1) -m str hello }}
    use_backend be1 if {{ req.rdp_cookie(mstshash) -m str alice }} RDP_COOKIE
    default_backend be2

backend be1
    server s1 127.0.0.1:{be1}

backend be2
    server s2 127.0.0.1:{be2}
"""


@needs_haproxy
def test_payload_fetches_and_wait_end_as_haproxy(tmp_path):
    scenarios = [
        dict(chunks=[b"MAGIC and more"]),
        dict(chunks=[b"MA", b"GIC"], pause=0.2),          # waits for the 4 bytes
        dict(chunks=[b"BAD request"]),                     # reject: closed, nothing sent
        dict(chunks=[b"0123456789abc"]),                   # long: accepted, be2
        dict(chunks=[b"\x05hello", b"....."], pause=0.2),  # payload_lv once 10 bytes came
        dict(chunks=[b"short"]),                           # WAIT_END: rejected at 1 s
        dict(chunks=[b"short"], half_close=True),          # the FIN ends the wait at once
        dict(chunks=[RDP.replace(b"NAME", b"alice")]),
        dict(chunks=[RDP.replace(b"NAME", b"bob")]),
    ]
    results = run_both(tmp_path, payload_config, scenarios)
    ours = results["fastlb"]
    assert ours[0] == ("be1", {"be1": [b"MAGIC and more"]})
    assert ours[2][1] == {} and ours[2][0] in ("closed", "reset")
    assert ours[5][1] == {}
    assert ours[7][0] == "be1" and ours[8][0] == "be2"      # req.rdp_cookie(mstshash)
    assert_same(results, scenarios)


def rules_config(port, be1, be2):
    return BASE + f"""
frontend fe
    bind 127.0.0.1:{port}
    tcp-request connection set-var(sess.origin) str(conn)
    tcp-request connection reject if {{ src 127.0.0.2 }}
    tcp-request session set-var(sess.stage) str(session)
    tcp-request session reject if {{ src 127.0.0.3 }}
    tcp-request inspect-delay 1s
    tcp-request content set-var(txn.first) req.payload(0,1)
    tcp-request content accept if {{ req.len ge 2 }}
    acl conn var(sess.origin) -m str conn
    acl session var(sess.stage) -m str session
    use_backend be1 if conn session {{ var(txn.first) -m str A }}
    default_backend be2

backend be1
    server s1 127.0.0.1:{be1}

backend be2
    server s2 127.0.0.1:{be2}
"""


def nice_config(port, be1, be2):
    return BASE + f"""
frontend fe
    bind 127.0.0.1:{port}
    tcp-request inspect-delay 1s
    tcp-request content set-nice 100
    tcp-request content accept if {{ req.len ge 2 }}
    default_backend be1

backend be1
    server s1 127.0.0.1:{be1}
"""


@needs_haproxy
def test_set_nice_changes_nothing_the_client_sees(tmp_path):
    """tcp-request content set-nice: warned about as without effect (fastlb has no task
    scheduler), and the session goes on as haproxy's does."""
    scenarios = [dict(chunks=[b"AB"]), dict(chunks=[b"A", b"B"], pause=0.2)]
    results = run_both(tmp_path, nice_config, scenarios)
    assert results["fastlb"] == [("be1", {"be1": [b"AB"]})] * 2
    assert_same(results, scenarios)
    assert "'tcp-request content set-nice' has no effect in fastlb" in \
        (tmp_path / "fastlb.err").read_text()


@needs_haproxy
def test_variables_carry_from_connection_to_session_to_content(tmp_path):
    scenarios = [dict(chunks=[b"AB"]), dict(chunks=[b"BA"]),
                 dict(chunks=[b"A", b"x"], pause=0.2)]
    results = run_both(tmp_path, rules_config, scenarios)
    ours = results["fastlb"]
    assert ours[0] == ("be1", {"be1": [b"AB"]})
    assert ours[1] == ("be2", {"be2": [b"BA"]})
    assert ours[2] == ("be1", {"be1": [b"Ax"]})
    assert_same(results, scenarios)


def http_config(port, be1, be2):
    return BASE + f"""
frontend fe
    bind 127.0.0.1:{port}
    tcp-request inspect-delay 1s
    tcp-request content reject if HTTP
    tcp-request content accept if {{ req.proto_http }}
    default_backend be1

backend be1
    server s1 127.0.0.1:{be1}
"""


def test_proto_http_and_the_http_acl(tmp_path):
    scenarios = [dict(chunks=[b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"]),
                 dict(chunks=[b"GET / HTTP/1.1\r\n", b"Host: x\r\n\r\n"], pause=0.2),
                 dict(chunks=[b"\x16\x03\x01 not http"])]
    results = run_both(tmp_path, http_config, scenarios,
                       programs=("haproxy", "fastlb") if HAPROXY else ("fastlb",))
    ours = results["fastlb"]
    assert ours[0][1] == {} and ours[1][1] == {}
    assert ours[2] == ("be1", {"be1": [b"\x16\x03\x01 not http"]})
    assert_same(results, scenarios)


def silent_config(port, be1, be2):
    return BASE + f"""
frontend fe
    bind 127.0.0.1:{port}
    tcp-request inspect-delay 1s
    tcp-request content silent-drop if {{ req.payload(0,4) -m str DROP }}
    default_backend be1

backend be1
    server s1 127.0.0.1:{be1}
"""


def test_silent_drop_sends_nothing_to_the_server(tmp_path):
    scenarios = [dict(chunks=[b"DROP me"], wait=1.0), dict(chunks=[b"KEEP me"])]
    results = run_both(tmp_path, silent_config, scenarios,
                       programs=("haproxy", "fastlb") if HAPROXY else ("fastlb",))
    ours = results["fastlb"]
    assert ours[0][1] == {}
    assert ours[1] == ("be1", {"be1": [b"KEEP me"]})
    assert_same(results, scenarios)


@pytest.mark.parametrize("line, message", [
    ("tcp-request content track-sc0 src", "needs stick tables"),
    ("tcp-request connection track-sc1 src", "needs stick tables"),
    ("tcp-request session sc-inc-gpc0(0)", "needs stick tables"),
    ("tcp-request content use-service prometheus-exporter",
     "Prometheus exporter service only available on 'http-request' rulesets"),
    ("tcp-request content use-service lua.echo", "needs Lua"),
    ("tcp-request content set-fc-mark 1", "unknown action"),      # not in HAProxy 2.6
    ("tcp-request content do-resolve(txn.ip,dns) str(x)", "resolvers"),
    ("tcp-request content frobnicate", "unknown action"),
    ("tcp-response content accept", "only allowed in a backend"),
])
def test_refused_by_name(tmp_path, line, message):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text(BASE + f"frontend fe\n    bind 127.0.0.1:{free_port()}\n    {line}\n"
                   "    default_backend be\nbackend be\n    server s 127.0.0.1:1\n")
    check = subprocess.run(FASTLB + ["-c", "-f", str(cfg)], capture_output=True, text=True)
    assert check.returncode != 0
    assert message in check.stderr and "bad.cfg:9]" in check.stderr, check.stderr


class HttpEcho(Backend):
    """Answers each request with its request line and its x-stage header."""

    def __init__(self, name):
        self.received = []
        super().__init__(self._handle, name)

    def _handle(self, conn, backend):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head = data.split(b"\r\n\r\n", 1)[0]
        self.received.append(head.split(b"\r\n", 1)[0])
        stage = [line for line in head.split(b"\r\n") if line.lower().startswith(b"x-stage:")]
        body = head.split(b"\r\n", 1)[0] + b"|" + b"".join(stage)
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
                     % len(body) + body)


def http_mode_config(port, be1, be2):
    return f"""
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s

frontend fe
    bind 127.0.0.1:{port}
    tcp-request inspect-delay 1s
    tcp-request content set-var(sess.stage) str(content)
    tcp-request content reject if {{ req.payload(0,4) -m str POST }}
    tcp-request content reject if {{ method PUT }}
    tcp-request content accept if HTTP
    http-request set-header x-stage %[var(sess.stage)]
    default_backend be1

backend be1
    server s1 127.0.0.1:{be1}
"""


@pytest.mark.parametrize("program", ["haproxy", "fastlb"])
def test_content_rules_in_an_http_frontend(tmp_path, program):
    """In mode http, HAProxy runs content rules on each request once its head is parsed:
    they see its method and headers but no raw bytes (req.payload finds nothing), and the
    variables they set are the request's."""
    if program == "haproxy" and HAPROXY is None:
        pytest.skip("haproxy not installed")
    backend = HttpEcho("be1")
    port = free_port()
    path = tmp_path / "cfg"
    path.write_text(http_mode_config(port, backend.port, 0))
    cmd = [HAPROXY, "-db", "-f", str(path)] if program == "haproxy" else \
        FASTLB + ["-d", "-f", str(path), "-n", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=tmp_path)
    try:
        wait_until(lambda: listening_sockets(port) > 0, message=f"{program} listening")
        answer = exchange(port, [b"GET /a HTTP/1.1\r\n", b"Host: x\r\n\r\n"], pause=0.2)
        assert answer.startswith("HTTP/1.1 200"), answer
        assert answer.endswith("GET /a HTTP/1.1|x-stage: content"), answer
        answer = exchange(port, [b"POST /b HTTP/1.1\r\nHost: x\r\n\r\n"])
        assert answer.endswith("POST /b HTTP/1.1|x-stage: content"), answer
        assert exchange(port, [b"PUT /c HTTP/1.1\r\nHost: x\r\n\r\n"]) in ("closed", "reset")
        assert backend.received == [b"GET /a HTTP/1.1", b"POST /b HTTP/1.1"]
    finally:
        proc.terminate()
        proc.wait(5)
        backend.close()


def addresses_config(port, port2, be1, be2):
    return BASE + f"""
frontend fe
    bind 127.0.0.1:{port}
    tcp-request connection set-src ipv4(10.1.2.3) if {{ src 127.0.0.1 }}
    tcp-request connection silent-drop if {{ src 10.9.9.9 }}
    tcp-request session reject if {{ src 10.1.2.3 }} {{ dst_port {port} }}
    default_backend be1

frontend fe2
    bind 127.0.0.1:{port2}
    tcp-request connection set-src ipv4(10.1.2.4)
    tcp-request session set-dst ipv4(127.0.0.9)
    use_backend be1 if {{ src 10.1.2.4 }} {{ dst 127.0.0.9 }}
    default_backend be2

backend be1
    server s1 127.0.0.1:{be1}

backend be2
    server s2 127.0.0.1:{be2}
"""


@needs_haproxy
def test_connection_set_src_and_session_reject_as_haproxy(tmp_path):
    """set-src at connection time is what the session rules see (and reject on); in the
    second frontend the addresses set route the session."""
    results = {}
    for name in ("haproxy", "fastlb"):
        backends = [Recorder("be1"), Recorder("be2")]
        port, port2 = free_port(), free_port()
        path = tmp_path / f"{name}.cfg"
        path.write_text(addresses_config(port, port2, backends[0].port, backends[1].port))
        cmd = [HAPROXY, "-db", "-f", str(path)] if name == "haproxy" else \
            FASTLB + ["-d", "-f", str(path), "-n", "1"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                cwd=tmp_path)
        try:
            wait_until(lambda: listening_sockets(port) > 0 and listening_sockets(port2) > 0,
                       message=f"{name} listening")
            first = exchange(port, [b"one"])
            second = exchange(port2, [b"two"])
            results[name] = (first in ("closed", "reset"), second,
                             [list(be.received) for be in backends])
        finally:
            proc.terminate()
            proc.wait(5)
            for be in backends:
                be.close()
    assert results["fastlb"] == (True, "be1", [[b"two"], []])
    assert results["haproxy"] == results["fastlb"]


def logged_config(log):
    def make(port, be1, be2):
        return f"""
defaults
    mode tcp
    log 127.0.0.1:{log} local0
    option tcplog
    timeout connect 2s
    timeout client 5s
    timeout server 5s

frontend fe
    bind 127.0.0.1:{port}
    tcp-request inspect-delay 500ms
    tcp-request content reject if {{ req.payload(0,3) -m str BAD }}
    tcp-request content accept if {{ req.len ge 4 }}
    tcp-request content reject if WAIT_END
    default_backend be1

backend be1
    server s1 127.0.0.1:{be1}
"""
    return make


@needs_haproxy
def test_log_lines_of_inspected_sessions_as_haproxy(tmp_path):
    """The backend, server, bytes and termination state of a session a content rule
    refused (PR), one that waited in vain, and one let through."""
    from conftest import SyslogReceiver
    scenarios = [dict(chunks=[b"BAD!"]), dict(chunks=[b"ab"]), dict(chunks=[b"good"])]
    lines = {}
    for name in ("haproxy", "fastlb"):
        syslog = SyslogReceiver()
        try:
            run_both(tmp_path, logged_config(syslog.port), scenarios, programs=(name,))
            time.sleep(0.2)
            # "fe be1/s1 0/0/12 4 -- 1/1/0/0/0 0/0": backend/server, bytes, state
            lines[name] = [line.split(" fe ", 1)[1].split()[:4] for line in syslog.drain()
                           if " fe " in line]
            for fields in lines[name]:
                fields[1] = "/".join(str(int(t) >= 0) for t in fields[1].split("/")[:2])
        finally:
            syslog.sock.close()
    assert lines["fastlb"] == [["fe/<NOSRV>", "False/False", "0", "PR"],
                               ["fe/<NOSRV>", "False/False", "0", "PR"],
                               ["be1/s1", "True/True", "3", "--"]]
    assert lines["haproxy"] == lines["fastlb"]


def switch_config(port, be1, be2):
    return f"""
defaults
    timeout connect 2s
    timeout client 5s
    timeout server 5s

frontend fe
    mode tcp
    bind 127.0.0.1:{port}
    tcp-request inspect-delay 1s
    tcp-request content switch-mode http if HTTP
    tcp-request content reject
    default_backend web

frontend fe2
    mode tcp
    bind 127.0.0.1:{be2}
    tcp-request inspect-delay 1s
    tcp-request content accept if HTTP
    default_backend web

backend web
    mode http
    http-request set-header x-stage switched
    server s1 127.0.0.1:{be1}
"""


@pytest.mark.parametrize("program", ["haproxy", "fastlb"])
def test_switch_mode_http_and_an_http_backend_after_inspection(tmp_path, program):
    """The bytes held for inspection are the HTTP request that the session, turned HTTP
    (switch-mode http, or a tcp frontend's http backend), then parses."""
    if program == "haproxy" and HAPROXY is None:
        pytest.skip("haproxy not installed")
    backend = HttpEcho("be1")
    port, port2 = free_port(), free_port()
    path = tmp_path / "cfg"
    path.write_text(switch_config(port, backend.port, port2))   # fe2 listens on port2
    cmd = [HAPROXY, "-db", "-f", str(path)] if program == "haproxy" else \
        FASTLB + ["-d", "-f", str(path), "-n", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=tmp_path)
    try:
        wait_until(lambda: listening_sockets(port) > 0 and listening_sockets(port2) > 0,
                   message=f"{program} listening")
        for p in (port, port2):
            answer = exchange(p, [b"GET /a HTTP/1.1\r\n", b"Host: x\r\n\r\n"], pause=0.2)
            assert answer.startswith("HTTP/1.1 200"), answer
            assert answer.endswith("GET /a HTTP/1.1|x-stage: switched"), answer
        assert exchange(port, [b"\x16\x03\x01 not http"]) in ("closed", "reset")
    finally:
        proc.terminate()
        proc.wait(5)
        backend.close()


class Speaker(Backend):
    """Sends ``parts`` (``pause`` apart), then waits for the client to close."""

    def __init__(self, name, parts, pause=0.2):
        self.parts, self.pause = parts, pause
        super().__init__(self._handle, name)

    def _handle(self, conn, backend):
        for i, part in enumerate(self.parts):
            if i:
                time.sleep(self.pause)
            conn.sendall(part)
        conn.settimeout(3)
        try:
            while conn.recv(65536):
                pass
        except OSError:
            pass


def response_config(port, be1, be2):
    return BASE + f"""
frontend fe
    bind 127.0.0.1:{port}
    default_backend be1

backend be1
    tcp-response inspect-delay 1s
    tcp-response content reject if {{ res.payload(0,3) -m str BAD }}
    tcp-response content close if {{ res.payload(0,3) -m str BYE }}
    tcp-response content accept if {{ res.len ge 6 }}
    tcp-response content reject if WAIT_END
    server s1 127.0.0.1:{be1}
"""


@needs_haproxy
@pytest.mark.parametrize("parts, expected", [
    ([b"hel", b"lo world"], "hello world"),   # waits for 6 bytes, then relays all of it
    ([b"BAD news"], "closed"),                # reject: nothing reaches the client
    ([b"BYE now"], "BYE now"),                # close: forwarded, then the server is gone
    ([b"hi"], "closed"),                      # WAIT_END at the inspect-delay
])
def test_tcp_response_content_as_haproxy(tmp_path, parts, expected):
    answers = {}
    for name in ("haproxy", "fastlb"):
        speaker = Speaker("be1", parts)
        port = free_port()
        path = tmp_path / f"{name}.cfg"
        path.write_text(response_config(port, speaker.port, 0))
        cmd = [HAPROXY, "-db", "-f", str(path)] if name == "haproxy" else \
            FASTLB + ["-d", "-f", str(path), "-n", "1"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                stderr=open(tmp_path / f"{name}.err", "wb"), cwd=tmp_path)
        try:
            wait_until(lambda: listening_sockets(port) > 0, message=f"{name} listening")
            answers[name] = exchange(port, [], wait=2.5)
        finally:
            proc.terminate()
            proc.wait(5)
            speaker.close()
    reset = {"reset": "closed"}
    assert reset.get(answers["fastlb"], answers["fastlb"]) == expected
    assert reset.get(answers["haproxy"], answers["haproxy"]) == expected


@needs_haproxy
def test_tcp_response_log_lines_as_haproxy(tmp_path):
    """A refused response is logged PD with the bytes the server sent, as HAProxy's."""
    from conftest import SyslogReceiver
    lines = {}
    for name in ("haproxy", "fastlb"):
        lines[name] = []
        for parts in ([b"BAD news"], [b"BYE now"], [b"hi"]):
            syslog, speaker, port = SyslogReceiver(), Speaker("be1", parts), free_port()
            path = tmp_path / f"{name}.cfg"
            path.write_text(response_config(port, speaker.port, 0).replace(
                "defaults\n", f"defaults\n    log 127.0.0.1:{syslog.port} local0\n"
                              "    option tcplog\n"))
            cmd = [HAPROXY, "-db", "-f", str(path)] if name == "haproxy" else \
                FASTLB + ["-d", "-f", str(path), "-n", "1"]
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    cwd=tmp_path)
            try:
                wait_until(lambda: listening_sockets(port) > 0, message=f"{name} listening")
                exchange(port, [], wait=2.5)
                time.sleep(0.2)
                for line in syslog.drain():
                    if " fe " in line:
                        fields = line.split(" fe ", 1)[1].split()
                        lines[name].append([fields[0], fields[2], fields[3]])
            finally:
                proc.terminate()
                proc.wait(5)
                speaker.close()
                syslog.sock.close()
    assert lines["fastlb"] == [["be1/s1", "8", "PD"], ["be1/s1", "7", "--"],
                               ["be1/s1", "2", "PD"]]
    assert lines["haproxy"] == lines["fastlb"]


@needs_haproxy
def test_timeout_client_shorter_than_inspect_delay_as_haproxy(tmp_path):
    """timeout client expires first: the session ends cR, nothing reaches the server."""
    from conftest import SyslogReceiver
    results = {}
    for name in ("haproxy", "fastlb"):
        syslog, backend, port = SyslogReceiver(), Recorder("be1"), free_port()
        path = tmp_path / f"{name}.cfg"
        path.write_text(f"""
defaults
    mode tcp
    log 127.0.0.1:{syslog.port} local0
    option tcplog
    timeout connect 2s
    timeout client 300ms
    timeout server 5s

frontend fe
    bind 127.0.0.1:{port}
    tcp-request inspect-delay 3s
    tcp-request content accept if {{ req.len ge 10 }}
    default_backend be1

backend be1
    server s1 127.0.0.1:{backend.port}
""")
        cmd = [HAPROXY, "-db", "-f", str(path)] if name == "haproxy" else \
            FASTLB + ["-d", "-f", str(path), "-n", "1"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                cwd=tmp_path)
        try:
            wait_until(lambda: listening_sockets(port) > 0, message=f"{name} listening")
            started = time.monotonic()
            answer = exchange(port, [b"abc"], wait=2.5)
            elapsed = time.monotonic() - started
            time.sleep(0.2)
            states = [line.split(" fe ", 1)[1].split()[3] for line in syslog.drain()
                      if " fe " in line]
            results[name] = (answer in ("closed", "reset"), elapsed < 1.5, states,
                             list(backend.received))
        finally:
            proc.terminate()
            proc.wait(5)
            backend.close()
            syslog.sock.close()
    assert results["fastlb"] == (True, True, ["cR"], [])
    assert results["haproxy"] == results["fastlb"]


def proxy_header_config(port, be1, be2):
    return BASE + f"""
frontend fe
    bind 127.0.0.1:{port} accept-proxy
    tcp-request connection reject if {{ src 10.0.0.1 }}
    tcp-request session reject if {{ src 10.0.0.1 }}
    tcp-request inspect-delay 1s
    tcp-request content accept if {{ req.len ge 5 }}
    use_backend be1 if {{ src 10.0.0.2 }} {{ req.payload(0,5) -m str hello }}
    default_backend be2

backend be1
    server s1 127.0.0.1:{be1}

backend be2
    server s2 127.0.0.1:{be2}
"""


@needs_haproxy
def test_session_rules_see_the_proxy_header_addresses(tmp_path):
    """Connection rules run on the real address, session and content rules on the PROXY
    header's; the bytes after the header are what content rules inspect and forward."""
    header = "PROXY TCP4 {} 127.0.0.1 1234 80\r\n"
    scenarios = [dict(chunks=[header.format("10.0.0.1").encode() + b"hello"]),
                 dict(chunks=[header.format("10.0.0.2").encode(), b"hello"], pause=0.2),
                 dict(chunks=[header.format("10.0.0.3").encode() + b"hello"])]
    results = run_both(tmp_path, proxy_header_config, scenarios)
    ours = results["fastlb"]
    assert ours[0][1] == {}
    assert ours[1] == ("be1", {"be1": [b"hello"]})
    assert ours[2] == ("be2", {"be2": [b"hello"]})
    assert_same(results, scenarios)


def denied_config(ports, sock, speaker):
    return f"""
global
    stats socket {sock} level admin
""" + BASE + f"""
frontend fcon
    bind 127.0.0.1:{ports[0]}
    tcp-request connection reject if {{ src 127.0.0.1 }}
    default_backend bspeak

frontend fses
    bind 127.0.0.1:{ports[1]}
    tcp-request session reject
    default_backend bspeak

frontend freq
    bind 127.0.0.1:{ports[2]}
    tcp-request inspect-delay 1s
    tcp-request content reject if {{ req.payload(0,3) -m str BAD }}
    tcp-request content silent-drop if {{ req.payload(0,3) -m str SIL }}
    default_backend bspeak

frontend fres
    bind 127.0.0.1:{ports[3]}
    default_backend bres

backend bspeak
    server s1 127.0.0.1:{speaker}

backend bres
    tcp-response inspect-delay 1s
    tcp-response content reject if {{ res.payload(0,3) -m str BAD }}
    server s1 127.0.0.1:{speaker}
"""


DENIED_COLUMNS = ("dreq", "dresp", "dcon", "dses")


@needs_haproxy
def test_denied_counters_of_tcp_rules_as_haproxy(tmp_path):
    """Each family's reject counts where HAProxy counts it (dcon, dses, dreq, dresp on the
    frontend, dresp on the backend and server); a silent-drop is a denied request, whatever
    rule set asked for it."""
    import csv
    tables = {}
    for name in ("haproxy", "fastlb"):
        speaker = Speaker("s", [b"BAD answer"])
        ports = [free_port() for _ in range(4)]
        sock = tmp_path / f"{name}.sock"
        path = tmp_path / f"{name}.cfg"
        path.write_text(denied_config(ports, sock, speaker.port))
        cmd = [HAPROXY, "-db", "-f", str(path)] if name == "haproxy" else \
            FASTLB + ["-d", "-f", str(path), "-n", "2"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                stderr=open(tmp_path / f"{name}.err", "wb"), cwd=tmp_path)
        try:
            wait_until(lambda: all(listening_sockets(p) > 0 for p in ports),
                       message=f"{name} listening")
            for _ in range(3):
                exchange(ports[0], [b"x"], wait=1)
                exchange(ports[1], [b"x"], wait=1)
                exchange(ports[2], [b"BAD request"], wait=1)
                exchange(ports[3], [b"hello"], wait=2)
            exchange(ports[2], [b"SILENT"], wait=0.5)
            time.sleep(0.3)
            with socket.socket(socket.AF_UNIX) as cli:
                cli.connect(str(sock))
                cli.sendall(b"show stat\n")
                text = b""
                while chunk := cli.recv(65536):
                    text += chunk
            rows = csv.DictReader(text.decode().lstrip("# ").splitlines())
            tables[name] = {(r["pxname"], r["svname"]): tuple(r[c] for c in DENIED_COLUMNS)
                            for r in rows if r["pxname"]}
        finally:
            proc.terminate()
            proc.wait(5)
            speaker.close()
    assert tables["fastlb"][("fcon", "FRONTEND")][2] == "3"
    assert tables["fastlb"][("fses", "FRONTEND")][3] == "3"
    assert tables["fastlb"][("freq", "FRONTEND")][0] == "4"     # 3 rejects, 1 silent-drop
    assert tables["fastlb"][("bres", "s1")][1] == "3"
    assert tables["fastlb"] == tables["haproxy"]
