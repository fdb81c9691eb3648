"""balance rdp-cookie and persist rdp-cookie, differentially: the same RDP connection
requests (a TPKT + X.224 connection request carrying "Cookie: <name>=<value>\\r\\n") must
reach the same servers through Debian's haproxy and through fastlb."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest

from conftest import FASTLB, free_port, listening_sockets, name_handler, wait_until

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")

INSPECT = """    tcp-request inspect-delay 1s
    tcp-request content accept if RDP_COOKIE
"""
# name -> the proxy's settings (its servers are added after them)
PROXIES = {
    "hash": "balance rdp-cookie",
    "consistent": "balance rdp-cookie\n    hash-type consistent",
    "named": "balance rdp-cookie(user)",
    # a TCP backend's other choices read the held bytes too
    "expr": "balance hash req.rdp_cookie(mstshash)",
    "use_server": "use-server c if { req.rdp_cookie(mstshash) -m str user3 user5 }",
    "persist": "balance roundrobin\n    persist rdp-cookie",
    "persist_down": "balance roundrobin\n    persist rdp-cookie",
    "persist_forced": "balance roundrobin\n    persist rdp-cookie\n    option persist",
}
WEIGHTS = (1, 2, 3)


def rdp_request(cookie: bytes) -> bytes:
    """A TPKT header, an X.224 connection request (its 7 bytes) and the cookie line."""
    body = bytes([6 + len(cookie), 0xE0, 0, 0, 0, 0, 0]) + cookie
    return bytes([3, 0]) + (4 + len(body)).to_bytes(2, "big") + body


def msts(port: int, host: str = "127.0.0.1") -> bytes:
    """The routing token Windows' connection broker writes: the address and port in network
    byte order, read as little-endian integers."""
    address = int.from_bytes(socket.inet_aton(host), "little")
    port_value = int.from_bytes(port.to_bytes(2, "big"), "little")
    return f"Cookie: msts={address}.{port_value}.0000\r\n".encode()


def config(ports: dict, servers: list) -> str:
    text = """
defaults
    mode tcp
    timeout connect 1s
    timeout client 5s
    timeout server 5s
"""
    for name, settings in PROXIES.items():
        text += f"listen {name}\n    bind 127.0.0.1:{ports[name]}\n{INSPECT}    {settings}\n"
        for letter, port, weight in zip("abc", servers, WEIGHTS):
            down = " disabled" if letter == "c" and name.startswith("persist_") else ""
            text += f"    server {letter} 127.0.0.1:{port} weight {weight}{down}\n"
    return text


def ask(port: int, payload: bytes, split: bool) -> str:
    """The name of the server that answered a connection sending ``payload`` (in two
    writes when ``split``: the cookie line arrives late)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        if split:
            sock.sendall(payload[:15])
            time.sleep(0.05)
            payload = payload[15:]
        sock.sendall(payload)
        data = b""
        while b"\n" not in data:       # the server's name line (its echo follows)
            chunk = sock.recv(100)
            if not chunk:
                break
            data += chunk
        return data.split(b"\n")[0].decode()


def scenario(servers) -> dict:
    """name -> [payload]: what each proxy is asked."""
    users = [rdp_request(f"Cookie: mstshash=user{n}\r\n".encode()) for n in range(12)]
    named = [rdp_request(f"Cookie: user=u{n}\r\n".encode()) for n in range(12)]
    to_b, to_c = rdp_request(msts(servers[1].port)), rdp_request(msts(servers[2].port))
    stray = rdp_request(b"Cookie: msts=2130706433.1.0000\r\n")     # no such server
    return {
        "hash": users + [rdp_request(b"Cookie: other=user1\r\n")],   # not its name: balanced
        "consistent": users,
        "named": named + [users[0]],
        "expr": users,
        "use_server": users[:8],
        "persist": [to_b, to_c, to_b, stray, stray, to_c],
        "persist_down": [to_c, to_c, to_b, to_c],
        "persist_forced": [to_c, to_c, to_b],
    }


def picks(cmd, ports, asked) -> dict:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for port in ports.values():
            wait_until(lambda: listening_sockets(port) > 0, message="listening")
        return {name: [ask(ports[name], payload, n % 3 == 1)
                       for n, payload in enumerate(asked[name])] for name in PROXIES}
    finally:
        proc.terminate()
        proc.wait(5)


def test_rdp_cookie_balancing_and_persistence_match_haproxy(tmp_path, backends):
    servers = [backends(name_handler, name=letter) for letter in "abc"]
    asked = scenario(servers)
    outcome = {}
    for program in ("haproxy", "fastlb"):
        ports = {name: free_port() for name in PROXIES}
        cfg = tmp_path / f"{program}.cfg"
        cfg.write_text(config(ports, [s.port for s in servers]))
        cmd = ["haproxy", "-f", str(cfg)] if program == "haproxy" else \
            FASTLB + ["-n", "2", "-f", str(cfg)]
        outcome[program] = picks(cmd, ports, asked)
    for name in PROXIES:
        if name != "expr":
            assert outcome["fastlb"][name] == outcome["haproxy"][name], name
    # HAProxy 2.6 evaluates 'balance hash' after the inspected bytes were scheduled for
    # forwarding, so a payload fetch finds nothing there and it balances round robin;
    # fastlb hashes what the client sent (README, "Differences from HAProxy")
    assert len(set(outcome["haproxy"]["expr"])) > 1
    got = outcome["fastlb"]
    assert len(set(got["hash"])) > 1 and len(set(got["named"])) > 1
    assert got["expr"] == got["hash"][:12]
    assert got["use_server"][3] == got["use_server"][5] == "c"
    assert got["persist"][0] == got["persist"][2] == "b" and got["persist"][1] == "c"
    assert "c" not in got["persist_down"] and got["persist_down"][2] == "b"
    assert got["persist_forced"][:2] == ["c", "c"]


@pytest.mark.parametrize("line, message", [
    ("balance rdp-cookie()", "balance rdp-cookie : missing cookie name."),
    ("balance rdp-cookie(abc", "balance rdp-cookie : missing cookie name."),
    ("persist", "missing persist method."),
    ("persist cookie", "unknown persist method."),
    ("persist rdp-cookiex", "persist rdp-cookie(name)' requires an rdp cookie name."),
    ("persist rdp-cookie(a) b", "'persist' cannot handle unexpected argument 'b'."),
])
def test_rdp_cookie_mistakes_are_refused_like_haproxy(tmp_path, line, message):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text("defaults\n    timeout connect 1s\n    timeout client 1s\n"
                   "    timeout server 1s\nbackend be\n    mode tcp\n"
                   f"    {line}\n    server a 127.0.0.1:1\n")
    for cmd in (["haproxy"], FASTLB):
        result = subprocess.run(cmd + ["-c", "-f", str(cfg)], capture_output=True, text=True)
        assert result.returncode != 0 and f"bad.cfg:7] : {message}" in result.stderr, \
            (cmd, result.stderr)


def test_backend_keywords_in_a_frontend_are_warned_and_ignored_like_haproxy(tmp_path):
    """HAProxy only warns about balance, cookie, hash-type, retries, ... in a frontend."""
    cfg = tmp_path / "fe.cfg"
    cfg.write_text("defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n"
                   "    timeout server 1s\nfrontend fe\n    bind 127.0.0.1:1\n"
                   "    balance rdp-cookie\n    persist rdp-cookie\n    retries 2\n"
                   "    hash-type consistent\n    fullconn 10\n    default_backend be\n"
                   "backend be\n    server a 127.0.0.1:1\n")
    outputs = []
    for cmd in (["haproxy"], FASTLB):
        result = subprocess.run(cmd + ["-c", "-f", str(cfg)], capture_output=True, text=True)
        assert result.returncode == 0, (cmd, result.stderr)
        outputs.append(sorted(line.split(" : config : ", 1)[1] for line in
                              result.stderr.splitlines() if "[WARNING]" in line))
    assert outputs[0] == outputs[1] and len(outputs[0]) == 4
