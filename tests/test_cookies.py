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
        if request["path"].startswith(("/prefix", "/pfx")):
            headers.append(("Set-Cookie", "JSESSIONID=sess42; path=/"))
        if request["path"].startswith("/pass"):
            headers.append(("Set-Cookie", "SRVID=from-app; path=/"))
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


# -- maxidle / maxlife, attr, domain, dynamic: side by side with haproxy ---------------------

DATED_CONFIG = """
global
    log 127.0.0.1:{log} local0
defaults
    mode http
    log global
    option httplog
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    use_backend dated if {{ path_beg /dated/ }}
    use_backend idle if {{ path_beg /idle/ }}
    use_backend plain if {{ path_beg /plain/ }}
    use_backend cookieless if {{ path_beg /cookieless/ }}
    use_backend dyn if {{ path_beg /dyn/ }}
    use_backend passive if {{ path_beg /passive/ }}
    use_backend passind if {{ path_beg /passind/ }}
    use_backend pfxind if {{ path_beg /pfxind/ }}
    use_backend pfxkeep if {{ path_beg /pfxkeep/ }}
    use_backend down if {{ path_beg /down/ }}
backend dated
    cookie SRVID insert indirect nocache maxidle 30m maxlife 2h
    server s1 127.0.0.1:{s1} cookie one
    server s2 127.0.0.1:{s2} cookie two
backend idle
    cookie SRVID insert maxidle 30m httponly secure domain .example.com domain .example.org attr SameSite=Lax attr Max-Age=60
    server s1 127.0.0.1:{s1} cookie one
    server s2 127.0.0.1:{s2} cookie two
backend plain
    cookie SRVID insert attr SameSite=Strict
    server s1 127.0.0.1:{s1} cookie one
    server s2 127.0.0.1:{s2} cookie two
backend cookieless
    cookie SRVID insert
    server s1 127.0.0.1:{s1}
backend dyn
    dynamic-cookie-key s3cr3t
    cookie DYN insert indirect dynamic
    server s1 127.0.0.1:{s1}
    server s2 127.0.0.1:{s2}
    server s3 127.0.0.1:{s1} cookie fixed
backend passive
    cookie SRVID
    server s1 127.0.0.1:{s1} cookie one
    server s2 127.0.0.1:{s2} cookie two
backend passind
    cookie SRVID indirect
    server s1 127.0.0.1:{s1} cookie one
    server s2 127.0.0.1:{s2} cookie two
backend pfxind
    cookie JSESSIONID prefix indirect
    server s1 127.0.0.1:{s1} cookie one
    server s2 127.0.0.1:{s2} cookie two
backend down
    cookie SRVID insert maxidle 30m maxlife 2h
    server s1 127.0.0.1:{s1} cookie one
    server s2 127.0.0.1:{s2} cookie two disabled
backend pfxkeep
    cookie JSESSIONID prefix indirect preserve postonly
    server s1 127.0.0.1:{s1} cookie one
    server s2 127.0.0.1:{s2} cookie two
"""


def encode_date(seconds: int) -> str:
    """HAProxy's 30-bit date: seconds >> 2, 6 bits a character, most significant first."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    quarters = seconds >> 2
    return "".join(alphabet[(quarters >> shift) & 63] for shift in (24, 18, 12, 6, 0))


def decode_date(text: str) -> int:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    value = 0
    for char in text:
        value = value * 64 + alphabet.index(char)
    return value << 2


MIN = 60
# (backend, cookie the client sends: a function of now, or None)
DATED_CASES = [
    ("dated", None),
    ("dated", lambda t: f"SRVID=two|{encode_date(t - 5 * MIN)}|{encode_date(t - 60 * MIN)}"),
    ("dated", lambda t: f"SRVID=two|{encode_date(t - 40 * MIN)}|{encode_date(t - 60 * MIN)}"),
    ("dated", lambda t: f"SRVID=two|{encode_date(t)}|{encode_date(t - 3 * 60 * MIN)}"),
    ("dated", lambda t: f"SRVID=two|{encode_date(t + 2 * 86400)}|{encode_date(t - MIN)}"),
    ("dated", lambda t: f"SRVID=two|{encode_date(t)}|{encode_date(t + 2 * 86400)}"),
    ("dated", lambda t: f"SRVID=two|{encode_date(t + 60)}|{encode_date(t - MIN)}"),
    ("dated", lambda t: f"SRVID=two|{encode_date(t - MIN)}"),
    ("dated", lambda t: "SRVID=two|%%%%%"),
    ("dated", lambda t: "SRVID=two"),
    ("dated", lambda t: f"SRVID=|{encode_date(t)}"),
    ("dated", lambda t: f"SRVID=nobody|{encode_date(t)}|{encode_date(t - MIN)}"),
    ("idle", None),
    ("idle", lambda t: "a=b; SRVID=one"),
    ("idle", lambda t: f"SRVID=one|{encode_date(t - MIN)}"),
    ("idle", lambda t: f"SRVID=one|{encode_date(t - 31 * MIN)}"),
    ("idle", lambda t: f"SRVID=one|{encode_date(t + 60)}|{encode_date(t - MIN)}"),
    ("plain", lambda t: "SRVID=two"),
    ("plain", lambda t: "SRVID=two|AAAAB"),
    ("plain", lambda t: f"SRVID=two|{encode_date(t + 60)}|{encode_date(t - MIN)}"),
    ("cookieless", None),
    ("cookieless", lambda t: "SRVID=one"),
    ("passive", None),
    ("passive", lambda t: "SRVID=two"),
    ("passive", lambda t: f"SRVID=two|{encode_date(t - MIN)}"),
    ("passind", None),
    ("passind", lambda t: "SRVID=two"),
    ("passind", lambda t: "SRVID=nobody"),
    ("pfxind", None),
    ("pfxind", lambda t: "JSESSIONID=two~abc"),
    ("pfxind", lambda t: "JSESSIONID=nobody~abc"),
    ("pfxkeep", None),
    ("pfxkeep", lambda t: "JSESSIONID=two~abc"),
    ("down", lambda t: f"SRVID=two|{encode_date(t - MIN)}|{encode_date(t - 30 * MIN)}"),
]


def normalised(set_cookie, now: int):
    """A Set-Cookie with each date as its distance from the request: "now" within the
    4-second quantum, else in whole minutes."""
    if set_cookie is None:
        return None

    def date(match):
        delta = decode_date(match.group(1)) - now
        if abs(delta) > 86400:          # a date near the epoch: its distance moves with now
            return "|far"
        return "|now" if -8 <= delta <= 8 else f"|{round(delta / MIN)}m"
    return re.sub(r"\|([A-Za-z0-9+/]{5})(?=[|;]|$)", date, set_cookie)


def run_dated(cmd, port, syslog):
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    answers = []
    try:
        wait_until(lambda: listening_sockets(port) > 0, message="listening")
        for number, (backend, cookie) in enumerate(DATED_CASES):
            now = int(time.time())
            sent = cookie(now) if cookie else None
            headers = [("Connection", "close")] + ([("Cookie", sent)] if sent else [])
            client = HttpClient(port)
            status, fields, body = client.get(f"/{backend}/{number}", headers=headers)
            client.close()
            answers.append((number, backend, sent and sent.split("|")[0], status,
                            body.decode() if cookie else "any",
                            normalised(fields.get("set-cookie"), now),
                            fields.get("cache-control"),
                            normalised(fields.get("x-seen-cookie"), now)))
        dynamic = {}
        for number in range(3):               # round robin: each server once
            client = HttpClient(port)
            status, fields, body = client.get("/dyn/x", headers=[("Connection", "close")])
            client.close()
            dynamic[fields["set-cookie"]] = body.decode()
        for set_cookie, name in list(dynamic.items()):
            client = HttpClient(port)
            status, fields, body = client.get("/dyn/y", headers=[
                ("Connection", "close"), ("Cookie", set_cookie.split(";")[0])])
            client.close()
            assert (body.decode(), fields.get("set-cookie")) == (name, None)
        time.sleep(0.3)
        lines = syslog.drain(0.3)
    finally:
        proc.terminate()
        proc.wait(5)
    letters = {}
    for line in lines:
        path = re.search(r'"GET /(\S+) ', line).group(1)
        letters[path] = re.search(r" (\S{4}) \d+/", line).group(1)
    return answers, sorted(dynamic.items()), letters


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")
def test_dates_attributes_and_dynamic_cookies_match_haproxy(tmp_path, http_backends):
    """maxidle/maxlife: the same dates (as distances from the request) in the same
    Set-Cookie, the same refreshes, the same E and O letters and the same server; attr and
    every domain in HAProxy's order; dynamic cookies of the same value as haproxy's."""
    s1, s2 = http_backends("s1", server("s1")), http_backends("s2", server("s2"))
    results = {}
    for name in ("haproxy", "fastlb"):
        syslog = SyslogReceiver()
        port = free_port()
        cfg = tmp_path / f"{name}.cfg"
        cfg.write_text(DATED_CONFIG.format(log=syslog.port, port=port, s1=s1.port, s2=s2.port))
        cmd = ["haproxy", "-f", str(cfg)] if name == "haproxy" else \
            FASTLB + ["-n", "2", "-f", str(cfg)]
        results[name] = run_dated(cmd, port, syslog)
        syslog.sock.close()
    (h_answers, h_dynamic, h_letters), (f_answers, f_dynamic, f_letters) = \
        results["haproxy"], results["fastlb"]
    for h, f in zip(h_answers, f_answers):
        if h[4] == "any":          # no cookie: round robin, any first server
            h = tuple(x.replace("one", "N").replace("two", "N") if isinstance(x, str) else x
                      for x in h)
            f = tuple(x.replace("one", "N").replace("two", "N") if isinstance(x, str) else x
                      for x in f)
        assert f == h
    assert f_dynamic == h_dynamic
    assert f_letters == h_letters
    # the letters this test is about, as haproxy wrote them
    assert {h_letters[f"dated/{n}"][2:] for n in (2, 3, 4, 5)} == {"EI", "OI"}
    assert h_letters["dated/1"][2:] == "VU" and h_letters["cookieless/20"][2:] == "NI"
    assert h_letters[f"down/{len(DATED_CASES) - 1}"][2:] == "DI"   # first date kept


REFUSED = [
    ('cookie S insert attr "SameSite=Lax;Secure"', "character '%x3B' is not permitted in attribute value."),
    ('cookie S insert attr "a\\rb"', "character '%x0D' is not permitted in attribute value."),
    ('cookie S insert attr "a\\nb"', "character '%x0A' is not permitted in attribute value."),
    ('cookie S insert attr "a\x01b"', "character '%x01' is not permitted in attribute value."),
    ("cookie S insert attr", "'attr' expects <value> as argument."),
    ('cookie S insert domain "a b.com"', "character ' ' is not permitted in domain name 'a b.com'."),
    ("cookie S insert domain a/b.com", "character '/' is not permitted in domain name 'a/b.com'."),
    ("cookie S insert domain", "'domain' expects <domain> as argument."),
    ("cookie S insert maxidle", "'maxidle' expects <idletime> in seconds as argument."),
    ("cookie S insert maxlife 10x", "unexpected character"),
    ("cookie S rewrite indirect", "cookie 'rewrite' and 'indirect' modes are incompatible."),
    ("cookie S insert frob", "'cookie' supports 'rewrite', 'insert', 'prefix', 'indirect', "
                             "'nocache', 'postonly', 'domain', 'maxidle', 'dynamic', 'maxlife' "
                             "and 'attr' options."),
    ("cookie S prefix preserve", "cookie 'preserve' requires at least 'insert' or 'indirect'."),
    ("dynamic-cookie-key", "expects"),
]
# accepted by haproxy, refused by fastlb: a header never carries CR, LF or NUL
REFUSED_BY_FASTLB_ONLY = [
    ('cookie "S\\rX" insert', "'cookie' : the cookie name may not hold CR, LF or NUL"),
    ('server s2 127.0.0.1:9 cookie "o\\nne"\n cookie S insert',
     "'cookie' may not hold CR, LF or NUL"),
]


@pytest.mark.parametrize("line, message", REFUSED + REFUSED_BY_FASTLB_ONLY)
def test_bad_cookie_options_are_refused_at_the_line_as_haproxy_does(tmp_path, line, message):
    """Each refusal names the file and line; haproxy refuses the same text (but for CR,
    LF or NUL in a name or server value: haproxy takes them, fastlb never writes them)."""
    text = ("defaults\n mode http\n timeout client 1s\n timeout server 1s\n timeout connect 1s\n"
            f"listen app\n bind 127.0.0.1:{free_port()}\n {line}\n"
            " server s1 127.0.0.1:9 cookie one\n")
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text)
    ours = subprocess.run(FASTLB + ["-c", "-f", str(cfg)], capture_output=True, text=True,
                          timeout=30)
    assert ours.returncode == 1
    assert f"[{cfg}:8]" in ours.stderr and message in ours.stderr, ours.stderr
    if shutil.which("haproxy") and (line, message) in REFUSED:
        theirs = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True,
                                text=True, timeout=30)
        assert theirs.returncode == 1 and ":8]" in theirs.stderr, theirs.stderr
        if message != "expects":
            assert message in theirs.stdout + theirs.stderr


def test_accepted_cookie_options_check_as_haproxy_does(tmp_path):
    """Every option HAProxy 2.6 takes, together, with time units and several attr/domain."""
    text = ("defaults\n mode http\n timeout client 1s\n timeout server 1s\n timeout connect 1s\n"
            f"listen app\n bind 127.0.0.1:{free_port()}\n dynamic-cookie-key k\n"
            " cookie S insert indirect nocache postonly preserve httponly secure dynamic"
            " maxidle 500ms maxlife 1d domain .a.com domain .b.org attr SameSite=None"
            " attr Partitioned\n server s1 127.0.0.1:9\n")
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text)
    ours = subprocess.run(FASTLB + ["-c", "-f", str(cfg)], capture_output=True, text=True,
                          timeout=30)
    assert ours.returncode == 0, ours.stderr
    if shutil.which("haproxy"):
        assert subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True,
                              timeout=30).returncode == 0
