"""The PROXY protocol (v1 and v2) in, out, and through HAProxy, over real sockets.

Most tests run Debian's haproxy and fastlb on the same configuration and compare what the
clients, the backends and the logs see (ports and dates masked).
"""
from __future__ import annotations

import re
import shutil
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import (FASTLB, Backend, HttpBackend, SyslogReceiver, free_port,
                      listening_sockets, mask_log_line, name_handler, recv_until_eof, wait_until)

needs_haproxy = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def v2(cmd=0x21, fam=0x11, body=None, tlvs=b"", crc=None, length=None):
    if body is None:
        body = (socket.inet_aton("1.2.3.4") + socket.inet_aton("5.6.7.8") +
                struct.pack("!HH", 1111, 2222)) if fam == 0x11 else \
               (socket.inet_pton(socket.AF_INET6, "2001:db8::1") +
                socket.inet_pton(socket.AF_INET6, "2001:db8::2") + struct.pack("!HH", 3333, 4444))
    if cmd & 0x0F == 0:
        body = b""
    payload = body + tlvs
    if crc is not None:
        payload += b"\x03\x00\x04" + b"\x00\x00\x00\x00"
    head = SIG + bytes((cmd, fam)) + struct.pack("!H", len(payload) if length is None else length)
    header = head + payload
    if crc is not None:
        value = crc32c(header) if crc == "good" else 0x12345678
        header = header[:-4] + struct.pack("!I", value)
    return header


V1_TCP4 = b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 2222\r\n"
GOOD = {
    "v1-tcp4": V1_TCP4,
    "v1-tcp6": b"PROXY TCP6 2001:db8::1 2001:db8::2 3333 4444\r\n",
    "v1-unknown": b"PROXY UNKNOWN\r\n",
    "v2-tcp4": v2(),
    "v2-tcp6": v2(fam=0x21),
    "v2-local": v2(cmd=0x20, fam=0x00),
    "v2-tlvs-crc": v2(tlvs=b"\x02\x00\x0bexample.com\x04\x00\x02xx", crc="good"),
}
BAD = {
    "http": b"GET / HTTP/1.0\r\n\r\n",
    "v1-proto": b"PROXY TCP5 1.2.3.4 5.6.7.8 1111 2222\r\n",
    "v1-fields": b"PROXY TCP4 1.2.3.4 5.6.7.8 1111\r\n",
    "v1-v6-addr": b"PROXY TCP6 2001:db8::zz 2001:db8::2 3333 4444\r\n",
    "v2-version": SIG + b"\x11\x11\x00\x0c" + b"\x00" * 12,
    "v2-command": v2(cmd=0x2F),
    "v2-short-addr": v2(body=b"\x01\x02\x03\x04"),
    "v2-tlv-overrun": v2(tlvs=b"\x04\x00\x20abc"),
    "v2-bad-crc": v2(crc="bad"),
    "v2-authority-long": v2(tlvs=b"\x02\x01\x00" + b"a" * 256),
    "v2-unix": v2(fam=0x31, body=b"\x00" * 216),
    "v2-udp": v2(fam=0x12),
    "v2-unspec": v2(fam=0x00, body=b""),
}


def closed_output(sock) -> bytes:
    try:
        return recv_until_eof(sock)
    except ConnectionResetError:
        return b""            # closed with unread bytes: a reset, still no byte of answer


def send_and_read(port, data: bytes, pause_after=None) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            if pause_after:       # the header in two segments
                sock.sendall(data[:pause_after])
                time.sleep(0.1)
                data = data[pause_after:]
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        return closed_output(sock)


def normalize(line: str) -> str:
    line = mask_log_line(line)
    line = re.sub(r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3}\]", "[DATE]", line)
    line = re.sub(r" (-1|\d+)/(-1|\d+)/(\d+) ", " T ", line)
    # httplog: timers and byte counts (the answers' own headers differ, not what is tested)
    line = re.sub(r" (-1|\d+)(/(-1|\d+)){4} (\d{3}) \d+ ", r" T \4 B ", line)
    # concurrent connection counts (retries and queues kept): haproxy's threads may not have
    # counted the previous session out yet when the next one is logged
    return re.sub(r" \d+/\d+/\d+/\d+/(\+?\d+ \d+/\d+)(?= |$)", r" C/C/C/C/\1", line)


class Proxy:
    """haproxy or fastlb on a config, with the ports it must listen on."""

    def __init__(self, name, tmp_path, text, ports):
        cfg = tmp_path / f"{name}.cfg"
        cfg.write_text(text)
        cmd = ["haproxy", "-db", "-f", str(cfg)] if name == "haproxy" else \
            FASTLB + ["-d", "-n", "1", "-f", str(cfg)]
        self.err = tmp_path / f"{name}.err"
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(self.err, "wb"),
                                     cwd=tmp_path)
        for port in ports:
            wait_until(lambda: listening_sockets(port) > 0 or self.proc.poll() is not None,
                       message=f"{name} on {port}")
        assert self.proc.poll() is None, self.err.read_text()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)


def both(tmp_path, template, nports, scenario, **values):
    """Run scenario(ports, syslog) against haproxy, then fastlb: {name: (result, logs)}."""
    outcomes = {}
    for name in ("haproxy", "fastlb"):
        syslog = SyslogReceiver()
        ports = [free_port() for _ in range(nports)]
        text = template.format(log=syslog.port, **values,
                               **{f"p{i}": port for i, port in enumerate(ports)})
        proxy = Proxy(name, tmp_path, text, ports)
        try:
            syslog.drain(0.1)
            result = scenario(ports, syslog)
            time.sleep(0.2)
            logs = [normalize(line) for line in syslog.drain(0.4)]
            assert proxy.proc.poll() is None, f"{name} died"
        finally:
            proxy.stop()
            syslog.sock.close()
        outcomes[name] = (result, logs)
    return outcomes


TCP_CONFIG = """
global
    log 127.0.0.1:{log} local0
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 1s
    timeout client 1s
    timeout server 2s
frontend f_pp
    bind 127.0.0.1:{p0} accept-proxy name pp
    default_backend b
frontend f_quiet
    bind 127.0.0.1:{p1} accept-proxy
    option dontlognull
    default_backend b
backend b
    server s1 127.0.0.1:{s1}
"""


@needs_haproxy
def test_accept_proxy_matches_haproxy(tmp_path, backends):
    """Good headers: the session goes on with the proxied source in the log; bad ones:
    closed without a byte and HAProxy's embryonic log line."""
    s1 = backends(name_handler, name="s1")

    def scenario(ports, syslog):
        answers = {}
        for name, header in {**GOOD, **BAD}.items():
            answers[name] = send_and_read(ports[0], header + b"ping")
        for name, header in {"v1": V1_TCP4, "v2": GOOD["v2-tlvs-crc"]}.items():
            with socket.create_connection(("127.0.0.1", ports[0]), timeout=5) as sock:
                sock.sendall(header + b"ping")      # whole header, then the client's FIN later
                time.sleep(0.05)
                sock.shutdown(socket.SHUT_WR)
                answers[f"{name}-then-fin"] = closed_output(sock)
        answers["empty"] = send_and_read(ports[0], b"")
        answers["truncated"] = send_and_read(ports[0], b"PROXY TCP4 1.2")
        answers["quiet-empty"] = send_and_read(ports[1], b"")
        answers["quiet-bad"] = send_and_read(ports[1], b"PROXY TCP9\r\n")
        with socket.create_connection(("127.0.0.1", ports[0]), timeout=5) as sock:
            answers["timeout"] = closed_output(sock)   # nothing sent: timeout client
        return answers

    out = both(tmp_path, TCP_CONFIG, 2, scenario, s1=s1.port)
    (hap, hap_logs), (flb, flb_logs) = out["haproxy"], out["fastlb"]
    assert flb == hap
    for name in GOOD:
        assert flb[name] == b"s1\nping", name
    for name in BAD:
        assert flb[name] == b"", name
    assert sorted(flb_logs) == sorted(hap_logs), \
        "\n".join(sorted(flb_logs)) + "\n--- haproxy ---\n" + "\n".join(sorted(hap_logs))
    text = "\n".join(flb_logs)
    assert "1.2.3.4:1111 [DATE] f_pp b/s1" in text
    assert "2001:db8::1:3333 [DATE] f_pp b/s1" in text
    assert "f_pp/pp: Timeout while waiting for PROXY protocol header" in text
    assert "f_pp/pp: Received an invalid PROXY protocol header" in text
    assert "f_quiet/1: Received an unhandled protocol in the PROXY protocol header" in text
    assert "f_quiet/1: Connection closed" not in text        # dontlognull


def test_header_in_segments_and_abuse(tmp_path, fastlb, backends):
    """A header split over segments waits for the rest (HAProxy 2.6 gives up instead);
    garbage and oversized headers never cost the worker."""
    s1 = backends(name_handler, name="s1")
    port = free_port()
    lb = fastlb(f"""
        defaults
            mode tcp
            timeout connect 1s
            timeout client 2s
            timeout server 2s
        frontend f
            bind 127.0.0.1:{port} accept-proxy
            default_backend b
        backend b
            server s1 127.0.0.1:{s1.port}
        """, ports=[port])
    workers = lb.worker_pids()
    for split in (1, 5, 12, 20, len(V1_TCP4) - 1):
        assert send_and_read(port, V1_TCP4 + b"ping", pause_after=split) == b"s1\nping", split
    header = GOOD["v2-tlvs-crc"]
    for split in (3, 13, 16, len(header) - 2):
        assert send_and_read(port, header + b"ping", pause_after=split) == b"s1\nping", split
    # an octet or a port out of range: HAProxy's lenient parser takes them as some other
    # address, fastlb refuses the header
    assert send_and_read(port, b"PROXY TCP4 1.2.3.999 5.6.7.8 1111 2222\r\nping") == b""
    assert send_and_read(port, b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 70000\r\nping") == b""
    # a v1 line longer than 107 bytes, a v2 length beyond a buffer, random bytes
    assert send_and_read(port, b"PROXY UNKNOWN" + b" " * 200 + b"\r\n") == b""
    assert send_and_read(port, b"PROXY TCP6 " + b"1" * 120) == b""
    assert send_and_read(port, SIG + b"\x21\x11\xff\xff" + b"\x00" * 20000) == b""
    for seed in range(30):
        junk = bytes((seed * 37 + i * 11) % 256 for i in range(seed * 7 + 1))
        assert send_and_read(port, junk) == b""
    assert send_and_read(port, V1_TCP4 + b"ping") == b"s1\nping"
    assert lb.worker_pids() == workers
    assert "internal error" not in lb.stderr()


HTTP_CONFIG = """
global
    log 127.0.0.1:{log} local0
defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 2s
    timeout server 2s
frontend f_http
    bind 127.0.0.1:{p0} accept-proxy
    option forwardfor
    acl from_ten src 10.0.0.0/8
    http-request deny if from_ten
    http-request deny deny_status 403 if {{ dst_port 2222 }}
    default_backend b
frontend f_rules
    bind 127.0.0.1:{p1}
    tcp-request connection reject if {{ src 127.0.0.2 }}
    tcp-request connection expect-proxy layer4 if {{ src 127.0.0.1 }}
    option forwardfor
    default_backend b
backend b
    server s1 127.0.0.1:{s1}
"""


def http_get(port, header: bytes, source="127.0.0.1") -> bytes:
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5,
                                        source_address=(source, 0))
    except ConnectionResetError:
        return b""                # reset at once (HAProxy's tcp-request connection reject)
    with sock:
        try:
            sock.sendall(header + b"GET /x HTTP/1.1\r\nhost: h\r\nconnection: close\r\n\r\n")
        except OSError:
            return b""            # closed at accept (tcp-request connection reject)
        return closed_output(sock).split(b"\r\n", 1)[0]


@needs_haproxy
def test_http_addresses_from_header_match_haproxy(tmp_path, http_backends):
    """forwardfor, src and dst_port ACLs, the log and tcp-request connection rules all see
    the header's addresses."""
    s1 = http_backends("s1")

    def scenario(ports, syslog):
        s1.requests.clear()
        answers = [
            http_get(ports[0], V1_TCP4.replace(b"2222", b"80")),
            http_get(ports[0], v2(body=socket.inet_aton("10.1.1.1") + socket.inet_aton("5.6.7.8")
                                  + struct.pack("!HH", 5, 80))),
            http_get(ports[0], V1_TCP4),                            # dst_port 2222: 403
            http_get(ports[0], GOOD["v2-local"]),                   # the real addresses
            http_get(ports[1], GOOD["v2-tcp6"]),                    # expect-proxy
            http_get(ports[1], b"", source="127.0.0.2"),           # rejected, unlogged
            http_get(ports[1], b""),                                # no header: closed
        ]
        return answers, [r["headers"].get("x-forwarded-for") for r in s1.requests]

    out = both(tmp_path, HTTP_CONFIG, 2, scenario, s1=s1.port)
    (hap, hap_logs), (flb, flb_logs) = out["haproxy"], out["fastlb"]
    assert flb == hap
    assert flb[0] == [b"HTTP/1.1 200 OK", b"HTTP/1.1 403 Forbidden", b"HTTP/1.1 403 Forbidden",
                      b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK", b"", b""]
    assert flb[1] == ["1.2.3.4", "127.0.0.1", "2001:db8::1"]
    assert sorted(flb_logs) == sorted(hap_logs), \
        "\n".join(sorted(flb_logs)) + "\n--- haproxy ---\n" + "\n".join(sorted(hap_logs))


class Recorder(Backend):
    """Keeps the first bytes of each connection (up to "ping" or a request head), answers."""

    def __init__(self):
        self.received = []
        super().__init__(self._handle, "rec")

    def _handle(self, conn, backend):
        data = b""
        conn.settimeout(3)
        while b"ping" not in data and b"\r\n\r\n" not in data.split(b"\r\n", 1)[-1]:
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
        self.received.append(data)
        if b"HTTP/1.1" in data:
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        else:
            conn.sendall(b"ok")


SEND_CONFIG = """
defaults
    mode tcp
    timeout connect 1s
    timeout client 2s
    timeout server 2s
listen v1
    bind 127.0.0.1:{p0} accept-proxy
    server s 127.0.0.1:{rec} send-proxy
listen v2
    bind 127.0.0.1:{p1} accept-proxy
    server s 127.0.0.1:{rec} send-proxy-v2
listen v2opts
    bind 127.0.0.1:{p2} accept-proxy
    server s 127.0.0.1:{rec} send-proxy-v2 proxy-v2-options crc32c,authority
listen http
    mode http
    bind 127.0.0.1:{p3} accept-proxy
    default-server send-proxy-v2
    server s 127.0.0.1:{rec}
"""


@needs_haproxy
def test_send_proxy_bytes_match_haproxy(tmp_path):
    """The header a server receives, byte for byte, before the client's data."""
    rec = Recorder()
    try:
        def scenario(ports, syslog):
            rec.received.clear()
            cases = [(ports[0], V1_TCP4), (ports[0], GOOD["v1-tcp6"]), (ports[0], GOOD["v2-local"]),
                     (ports[1], V1_TCP4), (ports[1], GOOD["v2-tcp6"]),
                     (ports[2], GOOD["v2-tlvs-crc"]), (ports[2], V1_TCP4)]
            answers = [send_and_read(port, header + b"ping") for port, header in cases]
            answers.append(http_get(ports[3], V1_TCP4))
            wait_until(lambda: len(rec.received) == len(cases) + 1, message="recorded")
            # the LOCAL case carries the client's real port: masked; of the HTTP request,
            # the header and the request line (HAProxy drops "connection: close")
            seen = [re.sub(rb"127\.0\.0\.1 127\.0\.0\.1 \d+ \d+", b"LOCAL", r)
                    if i == 2 else r for i, r in enumerate(rec.received)]
            seen[-1] = seen[-1][:seen[-1].find(b" HTTP/1.1") + 9]
            return answers, seen

        out = both(tmp_path, SEND_CONFIG, 4, scenario, rec=rec.port)
    finally:
        rec.close()
    (hap, _), (flb, _) = out["haproxy"], out["fastlb"]
    assert flb[0] == hap[0]
    assert flb[1] == hap[1]
    assert flb[1][0] == V1_TCP4 + b"ping"
    assert flb[1][3] == GOOD["v2-tcp4"][:16 + 12] + b"ping"
    assert flb[1][7] == GOOD["v2-tcp4"] + b"GET /x HTTP/1.1"


@needs_haproxy
def test_chains_through_haproxy(tmp_path, http_backends):
    """haproxy send-proxy-v2 -> fastlb accept-proxy, and fastlb send-proxy -> haproxy
    accept-proxy: the backend sees the first client's address."""
    s1 = http_backends("s1")
    p_hap, p_flb, p_hap2 = free_port(), free_port(), free_port()
    hap = Proxy("haproxy", tmp_path, f"""
defaults
    mode http
    timeout connect 1s
    timeout client 2s
    timeout server 2s
listen front
    bind 127.0.0.1:{p_hap} accept-proxy
    server lb 127.0.0.1:{p_flb} send-proxy-v2
listen back
    bind 127.0.0.1:{p_hap2} accept-proxy
    option forwardfor
    server s1 127.0.0.1:{s1.port}
""", [p_hap, p_hap2])
    flb = Proxy("fastlb", tmp_path, f"""
defaults
    mode http
    timeout connect 1s
    timeout client 2s
    timeout server 2s
listen mid
    bind 127.0.0.1:{p_flb} accept-proxy
    option forwardfor header x-mid
    server hap 127.0.0.1:{p_hap2} send-proxy
""", [p_flb])
    try:
        assert http_get(p_hap, V1_TCP4) == b"HTTP/1.1 200 OK"
        assert http_get(p_hap, GOOD["v1-tcp6"]) == b"HTTP/1.1 200 OK"
    finally:
        flb.stop()
        hap.stop()
    seen = [(r["headers"].get("x-mid"), r["headers"].get("x-forwarded-for")) for r in s1.requests]
    assert seen == [("1.2.3.4", "1.2.3.4"), ("2001:db8::1", "2001:db8::1")]


@pytest.mark.parametrize("never_local", [False, True])
def test_send_proxy_before_spliced_data_and_checks(tmp_path, fastlb, never_local):
    """TCP: the header precedes a multi-megabyte upload (spliced); health checks with
    check-send-proxy open with a v2 LOCAL header, as HAProxy 2.6 does (checked against
    Debian's haproxy), or with their own addresses under pp2-never-send-local."""
    got = []
    checks = []
    lock = threading.Lock()

    def handler(conn, backend):
        data = b""
        conn.settimeout(3)
        while True:
            chunk = conn.recv(1 << 20)
            if not chunk:
                break
            data += chunk
        with lock:
            (got if len(data) > 1000 else checks).append(data)
        conn.close()

    sink = Backend(handler)
    port = free_port()
    try:
        lb = fastlb(f"""
            global
                {"pp2-never-send-local" if never_local else ""}
            defaults
                mode tcp
                timeout connect 1s
                timeout client 3s
                timeout server 3s
            frontend f
                bind 127.0.0.1:{port} accept-proxy
                default_backend b
            backend b
                server s 127.0.0.1:{sink.port} send-proxy-v2 check check-send-proxy inter 200
            """, ports=[port])
        payload = bytes(range(256)) * 16384          # 4 MiB
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(GOOD["v2-tcp4"] + payload)
            sock.shutdown(socket.SHUT_WR)
            closed_output(sock)
        wait_until(lambda: got and len(checks) >= 2, message="upload and checks")
        lb.stop()
    finally:
        sink.close()
    assert got[0] == GOOD["v2-tcp4"] + payload
    expected = SIG + (b"\x21\x11\x00\x0c\x7f\x00\x00\x01\x7f\x00\x00\x01" if never_local
                      else b"\x20\x00\x00\x00")
    assert all(c.startswith(expected) for c in checks), checks[:2]


def test_refused_keywords(tmp_path):
    for line, word in [("server s 127.0.0.1:1 send-proxy-v2-ssl", "send-proxy-v2-ssl"),
                       ("server s 127.0.0.1:1 send-proxy-v2-ssl-cn", "send-proxy-v2-ssl-cn"),
                       ("server s 127.0.0.1:1 proxy-v2-options ssl", "proxy-v2-options ssl"),
                       ("server s 127.0.0.1:1 proxy-v2-options unique-id", "unique-id"),
                       ("server s 127.0.0.1:1 proxy-v2-options bogus", "bogus"),
                       ("tcp-request connection track-sc0 src", "stick tables"),
                       ("tcp-request connection expect-proxy layer7", "layer4")]:
        cfg = tmp_path / "bad.cfg"
        cfg.write_text(f"defaults\n    mode tcp\nlisten l\n    bind 127.0.0.1:{free_port()}\n"
                       f"    {line}\n")
        proc = subprocess.run(FASTLB + ["-c", "-f", str(cfg)], capture_output=True, text=True,
                              timeout=30)
        assert proc.returncode != 0, line
        assert "bad.cfg:5" in proc.stderr and word in proc.stderr, proc.stderr
