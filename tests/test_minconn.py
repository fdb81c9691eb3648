"""server ... minconn with fullconn, differentially: a server's limit grows with its
backend's sessions (HAProxy's srv_dynamic_maxconn), so as requests pile up on a server
that holds them, the same number reach it in Debian's haproxy and in fastlb, and the
same number are let in as the held ones end."""
from __future__ import annotations

import shutil
import socket
import time

import pytest

from conftest import HoldingServer, free_port, serving

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")


CASES = {
    # limit = max(minconn, sessions x maxconn / fullconn): 2 until the 6th session
    "fullconn": ("", "fullconn 20", "maxconn 10 minconn 2", 5),
    # the limit keeps ahead of the sessions until it reaches maxconn
    "grows_to_maxconn": ("", "fullconn 4", "maxconn 6 minconn 2", 8),
    # minconn alone is a static maxconn
    "minconn_alone": ("", "", "minconn 3", 5),
    # no fullconn: a tenth of the frontends' maxconn (here 200)
    "default_fullconn": ("maxconn 200", "", "maxconn 10 minconn 2", 5),
}


def run(program: str, tmp_path, case: str) -> tuple:
    fe_line, be_line, server_line, requests = CASES[case]
    arrivals = []
    server = HoldingServer("a", arrivals)
    port = free_port()
    cfg = tmp_path / f"{program}.cfg"
    cfg.write_text(f"""
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    timeout queue 10s
frontend f
    bind 127.0.0.1:{port}
    {fe_line}
    default_backend b
backend b
    {be_line}
    server a 127.0.0.1:{server.port} {server_line}
""")
    clients, arriving, after_release = [], [], []
    try:
        with serving(program, cfg, [port]):
            for _ in range(requests):
                client = socket.create_connection(("127.0.0.1", port), timeout=5)
                client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                clients.append(client)
                time.sleep(0.1)
                arriving.append(len(arrivals))
            for _ in range(3):
                server.release_one()
                time.sleep(0.15)
                after_release.append(len(arrivals))
    finally:
        for client in clients:
            client.close()
        server.close()
    return arriving, after_release


@pytest.mark.parametrize("case", sorted(CASES))
def test_dynamic_server_limit_matches_haproxy(tmp_path, case):
    seen = {program: run(program, tmp_path, case) for program in ("haproxy", "fastlb")}
    assert seen["fastlb"] == seen["haproxy"]
    arriving = seen["haproxy"][0]
    assert arriving[-1] < len(arriving), arriving          # some requests waited
