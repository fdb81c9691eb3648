"""Balancing over real sockets: weighted distributions, leastconn and first on shared
connection counts, maxconn across workers with queues, timeout queue, backups."""
from __future__ import annotations

import collections
import re
import socket
import threading
import time

import pytest

from conftest import (HTTP_DEFAULTS, HttpClient, free_port, http_response, name_handler,
                      wait_until)

REQUESTS = 10_000


def backend_block(algo: str, servers, weights, extra="") -> str:
    lines = "".join(f"        server {s.name} 127.0.0.1:{s.port} weight {w}{extra}\n"
                    for s, w in zip(servers, weights))
    return f"    backend be\n        balance {algo}\n{lines}"


def count_picks(port: int, total: int, clients: int = 4) -> collections.Counter:
    """``total`` keep-alive requests over ``clients`` parallel connections; body = server."""
    seen = collections.Counter()
    lock = threading.Lock()

    def run(n):
        client = HttpClient(port)
        local = collections.Counter()
        for _ in range(n):
            status, _, body = client.get("/")
            assert status == 200
            local[body.split()[0].decode()] += 1
        client.close()
        with lock:
            seen.update(local)

    threads = [threading.Thread(target=run, args=(total // clients,)) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(seen.values()) == total
    return seen


# random(1): one draw on the weighted ring (with 2 draws, the default, the less loaded of
# two wins, which is not meant to follow the weights exactly)
@pytest.mark.parametrize("algo", ["roundrobin", "static-rr", "random(1)"])
def test_weighted_distribution_within_2_percent(fastlb, http_backends, algo):
    servers = [http_backends(n) for n in ("s1", "s2", "s3")]
    weights = (1, 2, 5)
    port = free_port()
    fastlb(HTTP_DEFAULTS + f"""
    frontend fe
        bind 127.0.0.1:{port}
        default_backend be
""" + backend_block(algo, servers, weights), workers=2, ports=[port])
    seen = count_picks(port, REQUESTS)
    for server, weight in zip(servers, weights):
        share = seen[server.name] / REQUESTS
        assert abs(share - weight / sum(weights)) < 0.02, (algo, dict(seen))


def test_roundrobin_follows_weights_over_workers_in_haproxy_order(fastlb, http_backends):
    servers = [http_backends(n) for n in ("s1", "s2")]
    port = free_port()
    fastlb(HTTP_DEFAULTS + f"""
    frontend fe
        bind 127.0.0.1:{port}
        default_backend be
""" + backend_block("roundrobin", servers, (1, 3)), workers=4, ports=[port])
    order = []
    for _ in range(8):            # a new connection each time: any of the 4 workers
        client = HttpClient(port)
        order.append(client.get("/", headers=[("Connection", "close")])[2].split()[0].decode())
        client.close()
    # HAProxy's fwrr with weights 1:3 (checked against haproxy 2.6)
    assert order == ["s2", "s2", "s2", "s1", "s2", "s2", "s2", "s1"]


def hold(port: int, count: int) -> list[tuple[socket.socket, str]]:
    """Open ``count`` TCP sessions one after the other and keep them; each says its server."""
    held = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        name = sock.recv(64).decode().strip()
        held.append((sock, name))
    return held


TCP_DEFAULTS = """
    defaults
        mode tcp
        timeout connect 1s
        timeout client 10s
        timeout server 10s
"""


def test_leastconn_uses_connection_counts_shared_by_all_workers(fastlb, backends):
    a, b = backends(name_handler, "a"), backends(name_handler, "b")
    port = free_port()
    fastlb(TCP_DEFAULTS + f"""
    listen app
        bind 127.0.0.1:{port}
        balance leastconn
        server a 127.0.0.1:{a.port}
        server b 127.0.0.1:{b.port}
""", workers=4, ports=[port])
    held = hold(port, 10)
    assert collections.Counter(name for _, name in held) == {"a": 5, "b": 5}
    for sock, name in [h for h in held if h[1] == "a"][:4]:
        sock.close()
    wait_until(lambda: a.active == 1, message="a's sessions closed")
    time.sleep(0.1)
    # every new session goes to a until both carry the same load again, whichever
    # worker accepts it
    assert [name for _, name in hold(port, 4)] == ["a", "a", "a", "a"]


def test_first_fills_servers_in_id_order(fastlb, backends):
    s1, s2, s3 = (backends(name_handler, n) for n in ("s1", "s2", "s3"))
    port = free_port()
    fastlb(TCP_DEFAULTS + f"""
    listen app
        bind 127.0.0.1:{port}
        balance first
        server s3 127.0.0.1:{s3.port} maxconn 2 id 3
        server s1 127.0.0.1:{s1.port} maxconn 2 id 1
        server s2 127.0.0.1:{s2.port} maxconn 2 id 2
""", workers=2, ports=[port])
    assert [name for _, name in hold(port, 5)] == ["s1", "s1", "s2", "s2", "s3"]


class SlowCounter:
    """An HTTP server that answers after ``delay`` and records the highest concurrency."""

    def __init__(self, http_backends, delay):
        self.delay = delay
        self.lock = threading.Lock()
        self.current = self.peak = self.served = 0
        self.backend = http_backends("slow", self.respond)

    def respond(self, request):
        with self.lock:
            self.current += 1
            self.peak = max(self.peak, self.current)
        time.sleep(self.delay)
        with self.lock:
            self.current -= 1
            self.served += 1
        return http_response(body=b"slow done")


def test_maxconn_holds_across_four_workers_and_the_rest_queue(fastlb, http_backends):
    slow = SlowCounter(http_backends, 0.05)
    port = free_port()
    fastlb(HTTP_DEFAULTS + f"""
        timeout queue 20s
    frontend fe
        bind 127.0.0.1:{port}
        default_backend be
    backend be
        server slow 127.0.0.1:{slow.backend.port} maxconn 10
""", workers=4, ports=[port])
    statuses = collections.Counter()
    lock = threading.Lock()

    def client():
        for _ in range(3):
            c = HttpClient(port, timeout=30)
            status = c.get("/", headers=[("Connection", "close")])[0]
            c.close()
            with lock:
                statuses[status] += 1

    threads = [threading.Thread(target=client) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == {200: 120}
    assert slow.served == 120
    assert slow.peak == 10        # never an 11th at once, and the limit was reached


def test_timeout_queue_answers_503_at_the_configured_time(fastlb, http_backends, syslog):
    slow = SlowCounter(http_backends, 2.0)
    port = free_port()
    fastlb(HTTP_DEFAULTS + f"""
        timeout queue 500ms
        log 127.0.0.1:{syslog.port} local0
        option httplog
    frontend fe
        bind 127.0.0.1:{port}
        default_backend be
    backend be
        server slow 127.0.0.1:{slow.backend.port} maxconn 1
""", workers=2, ports=[port])
    first = HttpClient(port, timeout=10)
    first.request("GET", "/first")
    wait_until(lambda: slow.current == 1, message="the first request at the server")
    second = HttpClient(port, timeout=10)
    started = time.monotonic()
    status = second.get("/second")[0]
    waited = time.monotonic() - started
    assert status == 503
    assert 0.45 <= waited < 0.9
    assert first.response()[0] == 200
    lines = [syslog.recv() for _ in range(2)]
    queued = next(line for line in lines if "/second" in line)
    assert " fe be/<NOSRV> " in queued and " 503 " in queued and " sQ-- " in queued
    timers = re.search(r" (-?\d+)/(-?\d+)/(-?\d+)/(-?\d+)/(-?\d+) 503 ", queued).groups()
    tw = int(timers[1])                             # %TR/%Tw/%Tc/%Tr/%Ta
    assert 450 <= tw < 900
    assert slow.served == 1


def test_backup_takes_over_only_when_no_active_server_is_left(fastlb, backends):
    a, spare1, spare2 = (backends(name_handler, n) for n in ("a", "spare1", "spare2"))
    dead = free_port()
    port, port_all = free_port(), free_port()
    fastlb(TCP_DEFAULTS + f"""
    listen app
        bind 127.0.0.1:{port}
        server a 127.0.0.1:{a.port} check inter 100ms fall 1 rise 1
        server gone 127.0.0.1:{dead} check inter 100ms fall 1 rise 1
        server spare1 127.0.0.1:{spare1.port} backup
        server spare2 127.0.0.1:{spare2.port} backup
    listen app_all
        bind 127.0.0.1:{port_all}
        option allbackups
        server gone 127.0.0.1:{dead} check inter 100ms fall 1 rise 1
        server spare1 127.0.0.1:{spare1.port} backup
        server spare2 127.0.0.1:{spare2.port} backup
""", workers=2, ports=[port, port_all])
    time.sleep(0.5)                         # "gone" is found DOWN at its first check
    assert {name for _, name in hold(port, 6)} == {"a"}
    a.close()
    time.sleep(0.5)
    assert {name for _, name in hold(port, 4)} == {"spare1"}   # the first backup only
    assert {name for _, name in hold(port_all, 4)} == {"spare1", "spare2"}


def test_round_robin_reuses_idle_server_connections(fastlb, http_backends):
    """http-reuse safe: a session's later requests take idle connections other requests
    left to a server, instead of one new server connection per request."""
    s1, s2 = http_backends("s1"), http_backends("s2")
    closing = http_backends("closing", lambda req: http_response(
        body=b"closing", headers=[("Connection", "close")]))
    port, port2 = free_port(), free_port()
    fastlb(HTTP_DEFAULTS + f"""
    frontend fe
        bind 127.0.0.1:{port}
        default_backend be
    frontend fe2
        bind 127.0.0.1:{port2}
        default_backend be2
    backend be
        server s1 127.0.0.1:{s1.port}
        server s2 127.0.0.1:{s2.port}
    backend be2
        server s1 127.0.0.1:{s1.port}
        server closing 127.0.0.1:{closing.port}
""", workers=1, ports=[port, port2])
    client = HttpClient(port)
    names = [client.get("/")[2].split()[0].decode() for _ in range(20)]
    assert names == ["s1", "s2"] * 10
    assert (s1.accepted, s2.accepted) == (1, 1)
    # a server that closes after each answer: its connections never serve twice
    client = HttpClient(port2)
    answers = [client.get("/")[:3:2] for _ in range(10)]
    assert [status for status, _ in answers] == [200] * 10
    assert closing.accepted == 5


@pytest.mark.parametrize("delay", ["500ms", "0"])
def test_pool_purge_delay_closes_idle_server_connections(fastlb, http_backends, delay):
    """pool-purge-delay: each period half of a server's idle connections close, so a pool a
    burst filled empties once traffic stops; 0 keeps them (until the server closes)."""
    # s1 answers slowly: four requests at once need four connections
    s1 = http_backends("s1", lambda req: (time.sleep(0.3), http_response(body=b"s1"))[1])
    s2 = http_backends("s2")
    port = free_port()
    fastlb(HTTP_DEFAULTS + f"""
    frontend fe
        bind 127.0.0.1:{port}
        default_backend be
    backend be
        default-server pool-purge-delay {delay}
        use-server s1 if {{ path_beg /s1 }}
        use-server s2 if {{ path_beg /s2 }}
        server s1 127.0.0.1:{s1.port}
        server s2 127.0.0.1:{s2.port}
""", workers=1, ports=[port])
    clients = [HttpClient(port) for _ in range(4)]
    for client in clients:              # at once: four connections to s1
        client.request("GET", "/s1")
    assert [client.response()[0] for client in clients] == [200] * 4
    assert s1.accepted == 4
    for client in clients:              # each leaves its s1 connection in the idle pool
        assert client.get("/s2")[0] == 200
    for client in clients:
        client.close()
    assert wait_until(lambda: s2.active == 0, timeout=2)
    assert s1.active == 4
    if delay == "0":
        time.sleep(3)
        assert s1.active == 4
    else:
        assert wait_until(lambda: s1.active == 0, timeout=4)


def test_tcp_sessions_queue_for_a_full_server_and_maxqueue_refuses_the_rest(fastlb, backends):
    srv = backends(name_handler, "only")
    port = free_port()
    fastlb(TCP_DEFAULTS + f"""
        timeout queue 5s
    listen app
        bind 127.0.0.1:{port}
        balance source
        server only 127.0.0.1:{srv.port} maxconn 2 maxqueue 1
""", workers=2, ports=[port])
    held = hold(port, 2)                     # the server's two places
    assert [name for _, name in held] == ["only", "only"]
    waiting = socket.create_connection(("127.0.0.1", port), timeout=5)
    wait_until(lambda: srv.accepted == 2 and True, message="two sessions")
    time.sleep(0.2)
    refused = socket.create_connection(("127.0.0.1", port), timeout=5)
    assert refused.recv(64) == b""           # the queue is full and no other server: closed
    assert srv.accepted == 2 and srv.active == 2
    held[0][0].close()                       # a place frees: the queued session gets it
    assert waiting.recv(64) == b"only\n"
    assert srv.max_active == 2


def test_disabled_and_zero_weight_servers_get_no_traffic(fastlb, backends):
    a, off, zero = (backends(name_handler, n) for n in ("a", "off", "zero"))
    port = free_port()
    fastlb(TCP_DEFAULTS + f"""
    listen app
        bind 127.0.0.1:{port}
        server off 127.0.0.1:{off.port} disabled
        server zero 127.0.0.1:{zero.port} weight 0
        server a 127.0.0.1:{a.port}
""", workers=2, ports=[port])
    assert {name for _, name in hold(port, 6)} == {"a"}
    assert off.accepted == zero.accepted == 0
