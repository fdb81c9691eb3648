"""The NetScaler Client IP insertion protocol (bind accept-netscaler-cip <magic>,
tcp-request connection expect-netscaler-cip layer4): the header's addresses become the
client's for logs, forwardfor and ACLs; a bad header closes the connection with HAProxy's
log line.  haproxy and fastlb run the same configuration; the clients' answers and the
log lines are compared (ports and dates masked)."""
from __future__ import annotations

import re
import socket
import struct
import time

import shutil
import subprocess

import pytest

from conftest import FASTLB, name_handler
from test_proxy_protocol import V1_TCP4, both, closed_output, needs_haproxy, send_and_read

MAGIC = 0x1234ABCD


def ipv4_tcp(src: str, sport: int, dst: str, dport: int, proto: int = 6,
             options: bytes = b"") -> bytes:
    """The client's last IP and TCP headers of the handshake, as the NetScaler copies them."""
    ihl = 5 + len(options) // 4
    ip = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 40 + len(options), 1, 0, 64, proto, 0,
                     socket.inet_aton(src), socket.inet_aton(dst)) + options
    return ip + struct.pack("!HHIIBBHHH", sport, dport, 1, 1, 0x50, 0x10, 512, 0, 0)


def ipv6_tcp(src: str, sport: int, dst: str, dport: int, next_header: int = 6) -> bytes:
    ip = struct.pack("!IHBB16s16s", 0x60000000, 20, next_header, 64,
                     socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst))
    return ip + struct.pack("!HHIIBBHHH", sport, dport, 1, 1, 0x50, 0x10, 512, 0, 0)


def standard(headers: bytes, magic: int = MAGIC) -> bytes:
    """NetScaler >= 10.5: magic, CIP length, type 1, header length, the headers."""
    return struct.pack("!IIHH", magic, 12 + len(headers), 1, len(headers)) + headers


def legacy(headers: bytes, magic: int = MAGIC) -> bytes:
    """NetScaler < 10.5: magic, header length, the headers."""
    return struct.pack("!II", magic, len(headers)) + headers


V4 = ipv4_tcp("192.0.2.10", 4567, "198.51.100.1", 80)
GOOD = {
    "standard-v4": standard(V4),
    "legacy-v4": legacy(V4),
    "standard-v4-ip-options": standard(ipv4_tcp("192.0.2.11", 4568, "198.51.100.1", 80,
                                                options=b"\x01\x01\x01\x00")),
    "standard-v6": standard(ipv6_tcp("2001:db8::5", 6000, "2001:db8::1", 443)),
    "legacy-v6": legacy(ipv6_tcp("2001:db8::6", 6001, "2001:db8::1", 443)),
}
BAD = {
    "bad-magic": standard(V4, magic=0x0BADF00D),
    "truncated": standard(V4)[:10],
    "unknown-cip-type": standard(V4)[:8] + b"\x11" + standard(V4)[9:],
    "udp": standard(ipv4_tcp("192.0.2.10", 4567, "198.51.100.1", 80, proto=17)),
    "ipv6-udp": standard(ipv6_tcp("2001:db8::5", 6000, "2001:db8::1", 443, next_header=17)),
    "ip-version-5": standard(b"\x50" + V4[1:]),
    "short-for-v4": standard(V4)[:30],
    "http": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
}

CONFIG = """
global
    log 127.0.0.1:{log} local0
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 1s
    timeout client 1s
    timeout server 2s
frontend f_cip
    bind 127.0.0.1:{p0} accept-netscaler-cip {magic} name cip
    default_backend b
frontend f_rule
    bind 127.0.0.1:{p1}
    tcp-request connection expect-netscaler-cip layer4 if {{ src 127.0.0.2 }}
    default_backend b
frontend f_both
    bind 127.0.0.1:{p2} accept-netscaler-cip {magic} accept-proxy
    default_backend b
frontend f_http
    mode http
    option httplog
    option forwardfor
    bind 127.0.0.1:{p3} accept-netscaler-cip {magic}
    http-request return status 200 content-type text/plain lf-string "%[src] %[src_port] %[dst] %[dst_port]" if {{ path /addr }}
frontend f_quiet
    option dontlognull
    bind 127.0.0.1:{p4} accept-netscaler-cip {magic} name quiet
    default_backend b
backend b
    server s1 127.0.0.1:{s1}
"""


def from_source(port: int, source: str, data: bytes) -> bytes:
    with socket.socket() as sock:
        sock.bind((source, 0))
        sock.settimeout(5)
        sock.connect(("127.0.0.1", port))
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass                    # already refused and closed
        return closed_output(sock)


@needs_haproxy
def test_cip_headers_as_haproxy(tmp_path, backends):
    s1 = backends(name_handler, name="s1")

    def scenario(ports, syslog):
        answers = {}
        for name, header in {**GOOD, **BAD}.items():
            answers[name] = send_and_read(ports[0], header + b"ping")
        # the header, then the client's bytes in a later segment
        with socket.create_connection(("127.0.0.1", ports[0]), timeout=5) as sock:
            sock.sendall(GOOD["standard-v4"])
            time.sleep(0.1)
            sock.sendall(b"ping")
            sock.shutdown(socket.SHUT_WR)
            answers["later-segment"] = closed_output(sock)
        answers["empty"] = send_and_read(ports[0], b"")
        with socket.create_connection(("127.0.0.1", ports[0]), timeout=5) as sock:
            answers["timeout"] = closed_output(sock)            # nothing sent: timeout client
        # the rule: only 127.0.0.2 must send the header
        answers["rule-plain"] = from_source(ports[1], "127.0.0.1", b"ping")
        # the rule's magic number is the bind line's, which has none here: 0, as in HAProxy
        answers["rule-cip"] = from_source(ports[1], "127.0.0.2", legacy(V4, magic=0) + b"ping")
        answers["rule-cip-magic"] = from_source(ports[1], "127.0.0.2",
                                                GOOD["legacy-v4"] + b"ping")
        answers["rule-missing"] = from_source(ports[1], "127.0.0.2", b"ping")
        # CIP first, then PROXY, as HAProxy reads them: the PROXY header's addresses win
        answers["cip-then-proxy"] = send_and_read(ports[2], GOOD["standard-v6"] + V1_TCP4 +
                                                  b"ping")
        answers["proxy-alone"] = send_and_read(ports[2], V1_TCP4 + b"ping")
        # dontlognull: a client that closed at once is not logged (a bad header still is)
        answers["quiet-empty"] = send_and_read(ports[4], b"")
        answers["quiet-bad"] = send_and_read(ports[4], BAD["bad-magic"])
        # HTTP: the header's addresses are the client's for the fetches and X-Forwarded-For
        answers["http-addr"] = send_and_read(
            ports[3], GOOD["standard-v4"] + b"GET /addr HTTP/1.1\r\nHost: x\r\n\r\n")
        answers["http-addr-v6"] = send_and_read(
            ports[3], GOOD["legacy-v6"] + b"GET /addr HTTP/1.1\r\nHost: x\r\n\r\n")
        return answers

    out = both(tmp_path, CONFIG, 5, scenario, s1=s1.port, magic=MAGIC)
    (hap, hap_logs), (flb, flb_logs) = [
        (answers, sorted(re.sub(r"127\.0\.0\.2:\d+", "127.0.0.2:PORT", line) for line in logs))
        for answers, logs in (out["haproxy"], out["fastlb"])]
    assert flb == hap
    for name in GOOD:
        assert flb[name] == b"s1\nping", name
    assert [name for name in BAD if flb[name] != b""] == []
    assert [flb["later-segment"], flb["rule-plain"], flb["rule-cip"]] == [b"s1\nping"] * 3
    assert flb["rule-missing"] == flb["rule-cip-magic"] == b""
    assert flb["cip-then-proxy"] == b"s1\nping"
    assert flb["http-addr"].endswith(b"\r\n\r\n192.0.2.10 4567 198.51.100.1 80")
    assert flb["http-addr-v6"].endswith(b"\r\n\r\n2001:db8::6 6001 2001:db8::1 443")
    assert sorted(flb_logs) == sorted(hap_logs), \
        "\n".join(sorted(flb_logs)) + "\n--- haproxy ---\n" + "\n".join(sorted(hap_logs))
    text = "\n".join(flb_logs)
    assert "192.0.2.10:4567 [DATE] f_cip b/s1" in text
    assert "2001:db8::5:6000 [DATE] f_cip b/s1" in text
    assert "1.2.3.4:1111 [DATE] f_both b/s1" in text               # the PROXY header's
    assert "f_quiet/quiet: Received an invalid NetScaler" in text
    assert "f_quiet/quiet: Connection closed" not in text          # dontlognull
    for message in ("Received an invalid NetScaler Client IP magic number",
                    "Truncated NetScaler Client IP header received",
                    "Received an unhandled protocol in the NetScaler Client IP header",
                    "Timeout while waiting for a NetScaler Client IP header",
                    "Connection closed while waiting for NetScaler Client IP header"):
        assert f"f_cip/cip: {message}" in text, message


def test_forwardfor_carries_the_cip_source(tmp_path, fastlb, http_backends):
    from conftest import free_port
    backend = http_backends("web")
    port = free_port()
    fastlb(f"""
    defaults
        mode http
        timeout connect 1s
        timeout client 2s
        timeout server 2s
    frontend f
        option forwardfor
        bind 127.0.0.1:{port} accept-netscaler-cip {MAGIC}
        default_backend b
    backend b
        server s 127.0.0.1:{backend.port}
    """, ports=[port])
    reply = send_and_read(port, GOOD["standard-v4"] + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200")
    assert backend.requests[-1]["headers"]["x-forwarded-for"] == "192.0.2.10"


@pytest.mark.parametrize("line, message", [
    ("bind 127.0.0.1:18443 accept-netscaler-cip", "'bind 127.0.0.1:18443' in section "
     "'frontend' : 'accept-netscaler-cip' : missing value"),
    ("bind 127.0.0.1:18443 accept-netscaler-cip x", "'accept-netscaler-cip' : invalid value 0, "
     "must be >= 0"),
    ("bind 127.0.0.1:18443 accept-netscaler-cip -1", None),    # a uint32_t: 4294967295
    ("tcp-request connection expect-netscaler-cip layer7", "'tcp-request connection "
     "expect-netscaler-cip' only supports 'layer4' in frontend 'f' (got 'layer7')"),
    ("tcp-request content expect-netscaler-cip layer4", "'expect-netscaler-cip layer4' is not "
     "allowed in 'tcp-request content' rules in frontend 'f'"),
    ("tcp-request session expect-proxy layer4", "'expect-proxy layer4' is not allowed in "
     "'tcp-request session' rules in frontend 'f'"),
])
def test_cip_keywords_are_checked_as_haproxy(tmp_path, line, message):
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text("defaults\n    mode tcp\n    timeout client 1s\n    timeout server 1s\n"
                   "    timeout connect 1s\nfrontend f\n    bind 127.0.0.1:18444\n"
                   f"    {line}\n    default_backend b\nbackend b\n    server s 127.0.0.1:1\n")
    for program in [FASTLB] + ([["haproxy"]] if shutil.which("haproxy") else []):
        run = subprocess.run([*program, "-c", "-f", str(cfg)], capture_output=True, text=True,
                             timeout=30)
        assert run.returncode == (1 if message else 0), (program, run.stderr)
        if message:
            assert message in run.stderr and "haproxy.cfg:8]" in run.stderr, (program, run.stderr)
