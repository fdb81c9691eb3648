"""Differential test of the hash-based algorithms: for the same inputs, Debian's haproxy
and fastlb must send each request to the same server (uri with its options, url_param,
hdr() with and without use_domain_only, source, url_param in a POST body; hash-type
map-based, which is HAProxy's default, and consistent)."""
from __future__ import annotations

import shutil
import socket
import subprocess

import pytest

from conftest import FASTLB, HoldingServer, free_port, listening_sockets, read_head, \
    parse_headers, read_body, wait_until

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")

ALGORITHMS = {
    "uri": "balance uri",
    "uri_depth": "balance uri depth 2",
    "uri_len_whole": "balance uri len 6 whole",
    "url_param": "balance url_param id",
    "hdr": "balance hdr(X-Key)",
    "hdr_domain": "balance hdr(X-Host) use_domain_only",
    # a POST whose query lacks the parameter is hashed on its body's (check_post or not)
    "url_param_post": "balance url_param id check_post",
    "url_param_post_consistent": "balance url_param id\n    hash-type consistent",
    "source": "balance source",
    "uri_consistent": "balance uri\n    hash-type consistent",
    "source_consistent": "balance source\n    hash-type consistent",
}
WEIGHTS = (1, 2, 3, 1)

URIS = [f"/{a}/{b}/item{n}?id={n * 7}&x={n}" for a in ("shop", "img", "api")
        for b in ("v1", "v2") for n in range(5)] + ["/", "/?id=", "/a?x=1", "/item?id=abc"]
HOSTS = ["haproxy.1wt.eu", "www.shop.example.com", "nodot", "a.b.", "img.shop.example.org",
         "x.example", "cdn.example.net", "api.example.com", "example.com"]
BODIES = ["id=abc", "x=1&id=42", "id=7&x=2", "ida=1&id=9", "id= spaced", "id=\x01bin",
          "noparams", "", "x=1&id=", "id=;semi", "id=user%40x&z", "id=5\r\n"]


def config(ports: dict, servers: list) -> str:
    text = """
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
"""
    for name, algo in ALGORITHMS.items():
        text += f"frontend fe_{name}\n    bind 127.0.0.1:{ports[name]}\n" \
                f"    default_backend be_{name}\nbackend be_{name}\n    {algo}\n"
        for letter, port, weight in zip("abcd", servers, WEIGHTS):
            text += f"    server {letter} 127.0.0.1:{port} weight {weight}\n"
    return text


def ask(port: int, uri: str, n: int, source: str, post: bool) -> str:
    body = BODIES[n % len(BODIES)].encode() if post else b""
    if post and n % 3:
        uri = uri.split("?")[0]           # no query: the body decides
    with socket.create_connection(("127.0.0.1", port), timeout=5,
                                  source_address=(source, 0)) as sock:
        # head and body in one write, so both programs hold the body when they balance
        sock.sendall(f"{'POST' if post else 'GET'} {uri} HTTP/1.1\r\nHost: t\r\n"
                     f"X-Key: user{n % 9}\r\nX-Host: {HOSTS[n % len(HOSTS)]}\r\n"
                     f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                     + body)
        head, rest = read_head(sock, b"")
        _, fields = parse_headers(head)
        body, _ = read_body(sock, fields, rest)
        return body.decode().split()[0]


def picks(cmd, ports) -> dict:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for port in ports.values():
            wait_until(lambda: listening_sockets(port) > 0, message="listening")
        result = {}
        for name, port in ports.items():
            result[name] = [ask(port, uri, n, f"127.0.0.{2 + n}", "post" in name)
                            for n, uri in enumerate(URIS)]
        return result
    finally:
        proc.terminate()
        proc.wait(5)


def test_hashed_algorithms_pick_the_same_server_as_haproxy(tmp_path, http_backends):
    servers = [http_backends(letter) for letter in "abcd"]
    outcome = {}
    for name in ("haproxy", "fastlb"):
        ports = {algo: free_port() for algo in ALGORITHMS}
        cfg = tmp_path / f"{name}.cfg"
        cfg.write_text(config(ports, [s.port for s in servers]))
        cmd = ["haproxy", "-f", str(cfg)] if name == "haproxy" else \
            FASTLB + ["-n", "2", "-f", str(cfg)]
        outcome[name] = picks(cmd, ports)
    for algo in ALGORITHMS:
        used = set(outcome["haproxy"][algo])
        assert len(used) > 1, f"{algo}: the inputs should spread over servers"
        assert outcome["fastlb"][algo] == outcome["haproxy"][algo], algo


@pytest.mark.parametrize("balance, weights", [
    ("uri\n    hash-type consistent", (1, 1, 1, 1)),
    ("uri\n    hash-type consistent", (1, 2, 3, 1)),
    ("source\n    hash-type consistent", (2, 1, 1, 3)),
])
def test_hash_balance_factor_bounds_loads_as_haproxy(tmp_path, balance, weights):
    """Requests for one key are held open one after the other: with hash-balance-factor
    150, each goes to the key's server only while it serves less than its bounded share,
    else to the next server on the ring; both programs must make the same choices."""
    sequences = {}
    for name in ("haproxy", "fastlb"):
        arrivals = []
        servers = [HoldingServer(letter, arrivals) for letter in "abcd"]
        port = free_port()
        text = f"""
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
    balance {balance}
    hash-balance-factor 150
""" + "".join(f"    server {s.name} 127.0.0.1:{s.port} weight {w}\n"
              for s, w in zip(servers, weights))
        path = tmp_path / f"{name}.cfg"
        path.write_text(text)
        cmd = ["haproxy", "-db", "-f", str(path)] if name == "haproxy" else \
            FASTLB + ["-d", "-f", str(path), "-n", "1"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        clients = []
        try:
            wait_until(lambda: listening_sockets(port) > 0, message=f"{name} listening")
            for n in range(12):
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                sock.sendall(b"GET /same/key HTTP/1.1\r\nHost: t\r\n\r\n")
                clients.append(sock)
                wait_until(lambda: len(arrivals) == n + 1, message=f"request {n} held")
            sequences[name] = list(arrivals)
        finally:
            for sock in clients:
                sock.close()
            for server in servers:
                server.close()
            proc.terminate()
            proc.wait(5)
    assert sequences["fastlb"] == sequences["haproxy"]
    assert len(set(sequences["haproxy"])) > 1      # the bound moved some requests


@pytest.mark.parametrize("balance", [
    "uri foo", "uri len 0", "url_param a b", "url_param", "hash", "hash a b", "random(0)",
    "random(x)", "random(-1)", "hdr()", "hdr", "hdr(a) b", "wrong", "rdp-cookie()",
    # accepted by both: HAProxy reads no words after these, and random() draws twice
    "roundrobin x", "source x", "random()", "rdp-cookie(a)b", "url_param a check_post",
    "url_param a check_post x", "hdr(host) use_domain_only", "hdr(host) use_domain_only x",
    "hdr(host) domain", "url_param a b c",
])
def test_balance_arguments_are_checked_like_haproxy(tmp_path, balance):
    cfg = tmp_path / "b.cfg"
    cfg.write_text("defaults\n    timeout connect 1s\n    timeout client 1s\n"
                   "    timeout server 1s\nbackend be\n    mode http\n"
                   f"    balance {balance}\n    server a 127.0.0.1:1\n")
    answers = []
    for cmd in (["haproxy"], FASTLB):
        result = subprocess.run(cmd + ["-c", "-f", str(cfg)], capture_output=True, text=True)
        alerts = [line.split(" : config : ", 1)[1] for line in result.stderr.splitlines()
                  if "[ALERT]" in line and "b.cfg:7]" in line]
        answers.append((result.returncode == 0, alerts))
    assert answers[0] == answers[1]
