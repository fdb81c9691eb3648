"""Variables' scopes and tune.vars.*-max-size, differentially: for each limit, the same
rules set the same variables in Debian's haproxy and in fastlb (which ones fit, a string
that does not fit, unset-var and replaced values giving room back, a session's
transactions given back between requests); and req. variables are gone once the server
is chosen, as res. ones exist only in the response."""
from __future__ import annotations

import shutil
import socket
import subprocess

import pytest

from conftest import FASTLB, free_port, read_head, parse_headers, read_body, serving

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")

# (global lines, request rules, variables reported); each variable costs 80 bytes plus a
# string's length in HAProxy 2.6
CASES = {
    "txn": ("tune.vars.txn-max-size 170",
            ["set-var(txn.a) str(abc)", "set-var(txn.b) str(defg)", "set-var(txn.c) str(x)"],
            ["txn.a", "txn.b", "txn.c"]),
    "reqres": ("tune.vars.reqres-max-size 100",
               ["set-var(req.a) str(abc)", "set-var(req.b) int(1)", "set-var(txn.c) str(zz)"],
               ["req.a", "req.b", "txn.c"]),
    "sess": ("tune.vars.sess-max-size 200",
             ["set-var(sess.a) str(aaaa)", "set-var(txn.b) str(bb)", "set-var(txn.c) int(7)"],
             ["sess.a", "txn.b", "txn.c"]),
    "proc": ("tune.vars.proc-max-size 250\n    set-var proc.p str(xyz)",
             ["set-var(txn.a) str(abcdefghij)", "set-var(txn.b) str(k)"],
             ["proc.p", "txn.a", "txn.b"]),
    "global": ("tune.vars.global-max-size 169",
               ["set-var(sess.a) str(abcdefghij)", "set-var(txn.b) str(k)"],
               ["sess.a", "txn.b"]),
    "unset": ("tune.vars.txn-max-size 170",
              ["set-var(txn.a) str(abc)", "unset-var(txn.a)", "set-var(txn.b) str(abcd)",
               "set-var(txn.c) str(ab)"],
              ["txn.a", "txn.b", "txn.c"]),
    "replace": ("tune.vars.txn-max-size 90",
                ["set-var(txn.a) str(abcdefghij)", "set-var(txn.a) int(5)",
                 "set-var(txn.b) int(1)", "set-var(txn.a) str(abcdefghij)"],
                ["txn.a", "txn.b"]),
    # the string does not fit: the variable exists, its value is undefined in HAProxy
    "too_long": ("tune.vars.txn-max-size 85",
                 ["set-var(txn.a) str(abcdefgh)", "set-var(txn.b) int(1)"],
                 ["txn.b"]),
    "no_limit": ("", ["set-var(txn.a) str(abc)", "set-var(req.b) str(def)"],
                 ["txn.a", "req.b"]),
}


def config(port: int, case: str) -> str:
    glob, rules, report = CASES[case]
    text = f"global\n    {glob}\n" if glob else ""
    text += ("defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n"
             f"    timeout server 5s\nfrontend f\n    bind 127.0.0.1:{port}\n")
    text += "".join(f"    http-request {rule}\n" for rule in rules)
    text += "    http-request set-header x-a-found 1 if { var(txn.a) -m found }\n"
    values = "|".join(f"%[var({name})]" for name in report)
    text += (f'    http-request return status 200 hdr x-vars "{values}" '
             f'hdr x-found "%[req.hdr(x-a-found)]"\n')
    return text


def requests(port: int, count: int) -> list:
    """(x-vars, x-found) of ``count`` requests on one connection."""
    out = []
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        rest = b""
        for _ in range(count):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            head, rest = read_head(sock, rest)
            _, fields = parse_headers(head)
            _, rest = read_body(sock, fields, rest)
            out.append((fields.get("x-vars"), fields.get("x-found")))
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_variable_limits_match_haproxy(tmp_path, case):
    seen = {}
    for program in ("haproxy", "fastlb"):
        port = free_port()
        cfg = tmp_path / f"{program}.cfg"
        cfg.write_text(config(port, case))
        with serving(program, cfg, [port]):
            seen[program] = requests(port, 3)
    assert seen["fastlb"] == seen["haproxy"]
    if case != "no_limit":          # the limit left something out
        assert any(not v or "||" in v or v.endswith("|") or v.startswith("|")
                   for v, _ in seen["haproxy"]), seen


SCOPES = """
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend f
    bind 127.0.0.1:{port}
    http-request set-var(req.a) str(abc)
    http-request set-var(res.early) str(no)
    http-request set-var(txn.b) str(def)
    http-request set-header x-in "%[var(req.a)]|%[var(res.early)]"
    http-response set-var(res.c) str(ghi)
    http-response set-var(req.late) str(no)
    http-response set-header x-out "%[var(req.a)]|%[var(txn.b)]|%[var(res.c)]|%[var(req.late)]"
    http-after-response set-header x-after "%[var(res.c)]|%[var(req.a)]"
    default_backend b
backend b
    balance hash var(req.a)
    server s 127.0.0.1:{server}
listen srv
    bind 127.0.0.1:{server}
    http-request return status 200 hdr x-got "%[req.hdr(x-in)]"
"""


def test_request_variables_end_when_the_server_is_chosen(tmp_path):
    seen = {}
    for program in ("haproxy", "fastlb"):
        port, server = free_port(), free_port()
        cfg = tmp_path / f"{program}.cfg"
        cfg.write_text(SCOPES.format(port=port, server=server))
        with serving(program, cfg, [port, server]):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                head, _ = read_head(sock, b"")
                _, fields = parse_headers(head)
        seen[program] = [fields.get(h) for h in ("x-got", "x-out", "x-after")]
    assert seen["haproxy"] == ["abc|", "|def|ghi|", "ghi|"]
    assert seen["fastlb"] == seen["haproxy"]


@pytest.mark.parametrize("value, ok", [("100", True), ("", True), ("10k", False),
                                       ("-1", True), ("x", False)])
def test_vars_max_size_values_are_read_like_haproxy(tmp_path, value, ok):
    cfg = tmp_path / "v.cfg"
    cfg.write_text(f"global\n    tune.vars.sess-max-size {value}\n"
                   f"listen l\n    mode http\n    bind 127.0.0.1:{free_port()}\n"
                   "    timeout client 1s\n    timeout server 1s\n    timeout connect 1s\n"
                   "    server s 127.0.0.1:1\n")
    for cmd in (["haproxy"], FASTLB):
        result = subprocess.run(cmd + ["-c", "-f", str(cfg)], capture_output=True, text=True)
        assert (result.returncode == 0) == ok, (cmd, result.stderr)
        if not ok:
            assert f"tune.vars.sess-max-size: '{value}' is an invalid size" in result.stderr
