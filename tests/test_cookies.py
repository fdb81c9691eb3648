"""Cookie persistence in insert, rewrite and prefix modes, compared with Debian's haproxy:
the same server for the same cookie, the same Set-Cookie and Cache-Control headers to the
client, the same Cookie header at the server, the same cookie letters in the httplog."""
from __future__ import annotations

import re
import shutil
import subprocess
import time

import pytest

from conftest import (FASTLB, HttpClient, SyslogReceiver, free_port, http_response,
                      listening_sockets, wait_until)

CONFIG = """
global
    log 127.0.0.1:{log} local0
defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe_insert
    bind 127.0.0.1:{p_insert}
    default_backend insert
frontend fe_rewrite
    bind 127.0.0.1:{p_rewrite}
    default_backend rewrite
frontend fe_prefix
    bind 127.0.0.1:{p_prefix}
    default_backend prefix
backend insert
    cookie SRVID insert indirect nocache httponly
    server s1 127.0.0.1:{s1} cookie one
    server s2 127.0.0.1:{s2} cookie two
backend rewrite
    cookie SRVID rewrite
    server s1 127.0.0.1:{s1} cookie one
    server s2 127.0.0.1:{s2} cookie two
backend prefix
    cookie JSESSIONID prefix nocache
    server s1 127.0.0.1:{s1} cookie one
    server s2 127.0.0.1:{s2} cookie two
"""

# (cookie header sent by the client or None)
CASES = [None, "SRVID=two", "SRVID=nobody", "a=1; SRVID=two; b=2", "SRVID=one",
         "JSESSIONID=two~abc123", "JSESSIONID=one~zz; x=y", "JSESSIONID=plain"]


def server(name):
    def respond(request):
        headers = [("X-Seen-Cookie", request["headers"].get("cookie", "-"))]
        if request["path"].endswith("/cacheable"):
            headers.append(("Cache-Control", "max-age=60"))
        if request["path"].startswith("/rewrite"):
            headers.append(("Set-Cookie", "SRVID=from-app; path=/app"))
        if request["path"].startswith("/prefix"):
            headers.append(("Set-Cookie", "JSESSIONID=sess42; path=/"))
        return http_response(body=name.encode(), headers=headers)
    return respond


def exercise(cmd, ports, syslog):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    answers = []
    try:
        for port in ports.values():
            wait_until(lambda: listening_sockets(port) > 0, message="listening")
        for mode, port in ports.items():
            for cookie in CASES:
                client = HttpClient(port)
                headers = [("Connection", "close")] + ([("Cookie", cookie)] if cookie else [])
                path = f"/{mode}/cacheable" if cookie and "nobody" in cookie else f"/{mode}/x"
                status, fields, body = client.get(path, headers=headers)
                client.close()
                answers.append((mode, cookie, status, body.decode(), fields.get("set-cookie"),
                                fields.get("cache-control"), fields.get("x-seen-cookie")))
        time.sleep(0.3)
        lines = syslog.drain(0.3)
    finally:
        proc.terminate()
        proc.wait(5)
    # the %tsc field (4 letters) of each request, in request order
    letters = {re.search(r'"GET (\S+) ', l).group(1) + str(i): re.search(r" (\S{4}) \d+/", l).group(1)
               for i, l in enumerate(sorted(lines, key=lambda l: l.split("]: ", 1)[1]))}
    return answers, sorted(letters.values()), lines


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")
def test_cookie_persistence_matches_haproxy(tmp_path, http_backends):
    s1, s2 = http_backends("s1", server("s1")), http_backends("s2", server("s2"))
    results = {}
    for name in ("haproxy", "fastlb"):
        syslog = SyslogReceiver()
        ports = {m: free_port() for m in ("insert", "rewrite", "prefix")}
        cfg = tmp_path / f"{name}.cfg"
        cfg.write_text(CONFIG.format(log=syslog.port, s1=s1.port, s2=s2.port,
                                     **{f"p_{m}": p for m, p in ports.items()}))
        cmd = ["haproxy", "-f", str(cfg)] if name == "haproxy" else \
            FASTLB + ["-n", "2", "-f", str(cfg)]
        results[name] = exercise(cmd, ports, syslog)
        syslog.sock.close()
    h_answers, h_letters, _ = results["haproxy"]
    f_answers, f_letters, f_lines = results["fastlb"]
    for h, f in zip(h_answers, f_answers):
        if h[1] is None:          # no cookie: round robin, any first server is fine
            h, f = h[:3] + h[4:6], f[:3] + f[4:6]
            h = tuple(x.replace("one", "N").replace("two", "N") if isinstance(x, str) else x
                      for x in h)
            f = tuple(x.replace("one", "N").replace("two", "N") if isinstance(x, str) else x
                      for x in f)
        assert f == h
    assert f_letters == h_letters, "\n".join(f_lines)


def test_insert_keeps_a_client_on_its_server_across_workers(fastlb, http_backends):
    s1, s2 = http_backends("s1", server("s1")), http_backends("s2", server("s2"))
    port = free_port()
    fastlb(f"""
    defaults
        mode http
        timeout connect 1s
        timeout client 5s
        timeout server 5s
    listen app
        bind 127.0.0.1:{port}
        cookie SRVID insert indirect nocache
        server s1 127.0.0.1:{s1.port} cookie one
        server s2 127.0.0.1:{s2.port} cookie two
""", workers=4, ports=[port])
    client = HttpClient(port)
    status, fields, body = client.get("/")
    value = fields["set-cookie"].split(";")[0]
    assert fields["set-cookie"] == f"{value}; path=/"
    first = body.decode()
    for _ in range(10):                    # new connections: any worker, same server
        c = HttpClient(port)
        status, fields, body = c.get("/", headers=[("Cookie", value), ("Connection", "close")])
        c.close()
        assert (status, body.decode(), fields.get("set-cookie")) == (200, first, None)
        assert fields["x-seen-cookie"] == "-"      # indirect: the server never sees it
