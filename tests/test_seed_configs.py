"""The tutorials' configs (../shared/seed-configs) run unchanged: `fastlb -c` accepts them
as `haproxy -c` does, and they serve with only their ports and backend addresses
substituted.  Where a config makes fastlb do something visible (the stats socket's owner
and mode, the stats page's realm), HAProxy runs the same text and the two are compared."""
from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from conftest import FASTLB, HttpClient, free_port, stats_cli, wait_until

# ../shared/seed-configs beside the checkout; a worktree (/work/wt/<name>) is one level
# deeper, so the nearest ancestor holding it counts
SEEDS = next((parent / "shared" / "seed-configs" for parent in Path(__file__).resolve().parents
              if (parent / "shared" / "seed-configs").is_dir()), Path("/nonexistent"))
pytestmark = pytest.mark.skipif(not SEEDS.is_dir(), reason="../shared/seed-configs is absent")
HAPROXY = shutil.which("haproxy")


def check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(FASTLB + ["-c", "-f", str(path)], capture_output=True, text=True,
                          timeout=30)


@pytest.mark.parametrize("name", ["l7-roundrobin.cfg", "l7-uri-routing.cfg", "ha-pair-web.cfg",
                                  "production-style.cfg"])
def test_seed_config_passes_check_unchanged(name):
    result = check(SEEDS / name)
    assert result.returncode == 0, result.stderr
    assert "Configuration file is valid" in result.stdout + result.stderr


def localised(text: str, ports: dict, backends: dict) -> str:
    """The substitutions the seed README allows: bind ports and backend addresses."""
    for old, new in ports.items():
        text = re.sub(rf"bind \*?{re.escape(old)}\b", f"bind 127.0.0.1:{new}", text)
    for old, new in backends.items():
        text = text.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}")
    return text


def socket_facts(path: str) -> tuple:
    info = os.stat(path)
    return stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid


def answer(path: str, command: str) -> str:
    """A stats socket's answer, or "" while nobody listens there yet (a socket file left
    by an earlier run refuses connections until the new process binds it again)."""
    try:
        return stats_cli(path, command, timeout=1.0)
    except OSError:
        return ""


def start(cmd: list, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="the config chowns its socket to haproxy: root only")
def test_l7_roundrobin_serves_and_owns_its_socket_as_haproxy_does(tmp_path, fastlb,
                                                                  http_backends):
    """l7-roundrobin.cfg: round robin over three servers, the stats page, and the admin
    socket at /var/run/api.sock, owned by haproxy:haproxy with mode 660 (HAProxy's own
    socket is compared, from the same text)."""
    try:
        pwd.getpwnam("haproxy")
    except KeyError:
        pytest.skip("no haproxy user (Debian's haproxy package creates it)")
    servers = [http_backends(f"s{i}") for i in (1, 2, 3)]
    front, page = free_port(), free_port()
    text = localised((SEEDS / "l7-roundrobin.cfg").read_text(), {":80": front, ":8404": page},
                     {9000 + i: s.port for i, s in enumerate(servers, 1)})
    config = tmp_path / "l7-roundrobin.cfg"
    config.write_text(text)
    sock_path = "/var/run/api.sock"

    lb = fastlb(text, workers=1, ports=(front, page))
    try:
        wait_until(lambda: "Name: fastlb" in answer(sock_path, "show info"), timeout=10,
                   message="the stats socket")
        fastlb_socket = socket_facts(sock_path)
        names = []
        for _ in range(6):
            client = HttpClient(front)
            status, _, body = client.get("/")
            client.close()
            assert status == 200
            names.append(body.split()[0].decode())
        assert names == ["s1", "s2", "s3", "s1", "s2", "s3"]
        client = HttpClient(page)
        status, _, body = client.get("/")
        client.close()
        assert status == 200 and b"Statistics Report" in body
    finally:
        lb.stop()

    if HAPROXY is None:
        pytest.skip("haproxy not installed: the socket is not compared")
    proc = start([HAPROXY, "-f", str(config)], tmp_path)
    try:
        wait_until(lambda: "Name: HAProxy" in answer(sock_path, "show info"), timeout=10,
                   message="haproxy's socket")
        haproxy_socket = socket_facts(sock_path)
    finally:
        stop(proc)
    haproxy_user = pwd.getpwnam("haproxy")
    assert fastlb_socket == haproxy_socket == (0o660, haproxy_user.pw_uid, haproxy_user.pw_gid)


def test_stats_realm_of_several_words_answers_as_haproxy(tmp_path):
    """production-style.cfg writes `stats realm HAProxy Statistics` unquoted: HAProxy keeps
    the first word, and so does fastlb."""
    text = """
defaults
    mode http
    timeout client 5s
    timeout server 5s
    timeout connect 5s
listen stats_page
    bind 127.0.0.1:{port}
    stats enable
    stats realm HAProxy Statistics
    stats uri /
    stats auth admin:admin
"""
    answers = {}
    for name, cmd in (("fastlb", FASTLB), ("haproxy", [HAPROXY] if HAPROXY else None)):
        if cmd is None:
            continue
        port = free_port()
        config = tmp_path / f"{name}.cfg"
        config.write_text(text.format(port=port))
        proc = start(cmd + ["-f", str(config)], tmp_path)
        try:
            wait_until(lambda: _connects(port), timeout=10, message=f"{name} on {port}")
            client = HttpClient(port)
            status, headers, _ = client.get("/")
            client.close()
            answers[name] = (status, headers.get("www-authenticate"))
        finally:
            stop(proc)
    assert answers["fastlb"] == (401, 'Basic realm="HAProxy"')
    if "haproxy" in answers:
        assert answers["haproxy"] == answers["fastlb"]


@pytest.mark.skipif(os.geteuid() != 0, reason="chroot, user haproxy and /run/haproxy: root only")
def test_production_style_keeps_clients_on_their_server_as_haproxy_does(tmp_path, http_backends):
    """production-style.cfg: `cookie SVID insert indirect nocache maxlife 10m` gives a new
    client `SVID=<server>|<now>|<now>; path=/`, and a client sending it back stays on its
    server without a new cookie, as with haproxy on the same text."""
    try:
        pwd.getpwnam("haproxy")
    except KeyError:
        pytest.skip("no haproxy user (Debian's haproxy package creates it)")
    servers = [http_backends(f"web0{i}") for i in (1, 2)]
    seen = {}
    for name, cmd in (("fastlb", FASTLB + ["-d"]), ("haproxy", [HAPROXY, "-db"] if HAPROXY else None)):
        if cmd is None:
            continue
        front, page = free_port(), free_port()
        text = localised((SEEDS / "production-style.cfg").read_text(),
                         {":80": front, ":8080": page},
                         {9000 + i: s.port for i, s in enumerate(servers, 1)})
        config = tmp_path / f"{name}.cfg"
        config.write_text(text)
        proc = start(cmd + ["-f", str(config)], tmp_path)
        try:
            wait_until(lambda: _connects(front), timeout=10, message=f"{name} on {front}")
            answers = []
            for _ in range(2):                 # round robin: one new client per server
                client = HttpClient(front)
                status, headers, body = client.get("/")
                client.close()
                now = time.time()
                value, _, attributes = headers["set-cookie"].partition(";")
                served, dates = value.split("|", 1)[0], value.split("|")[1:]
                assert len(dates) == 2 and dates[0] == dates[1]
                assert abs(_date(dates[0]) - now) <= 8
                client = HttpClient(front)     # back with its cookie: same server
                status2, headers2, body2 = client.get("/", headers=[("Cookie", value)])
                client.close()
                answers.append((status, served, body.split()[0].decode(), attributes,
                                status2, body2.split()[0].decode(),
                                headers2.get("set-cookie")))
            seen[name] = sorted(answers)
        finally:
            stop(proc)
    assert seen["fastlb"] == [(200, "SVID=web01", "web01", " path=/", 200, "web01", None),
                              (200, "SVID=web02", "web02", " path=/", 200, "web02", None)]
    if "haproxy" in seen:
        assert seen["haproxy"] == seen["fastlb"]


def _date(text: str) -> int:
    """Unix seconds of a cookie date (HAProxy's 30-bit base64 of seconds >> 2)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    value = 0
    for char in text:
        value = value * 64 + alphabet.index(char)
    return value << 2


def _connects(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        time.sleep(0.05)
        return False


@pytest.mark.parametrize("line, message", [
    ("stats socket {path} user nosuchuser", "'stats socket' : ''user' : unknown user name 'nosuchuser''"),
    ("stats socket {path} group nosuchgroup", "'stats socket' : ''group' : unknown group name 'nosuchgroup''"),
    ("ca-base", "global statement 'ca-base' expects a directory path as an argument."),
    ("ssl-default-bind-options bogus", "unknown option 'bogus' on global statement 'ssl-default-bind-options'."),
    ("ssl-default-bind-options ssl-min-ver TLSv9", "'TLSv9' : unknown ssl/tls version on global statement 'ssl-default-bind-options'."),
])
def test_global_refusals_say_what_haproxy_says(tmp_path, line, message):
    config = tmp_path / "bad.cfg"
    config.write_text("global\n    " + line.format(path=tmp_path / "s.sock") + "\n"
                      "frontend f\n    bind 127.0.0.1:1\n")
    result = check(config)
    assert result.returncode != 0
    assert f"parsing [{config}:2] : {message}" in result.stderr
    if HAPROXY:
        theirs = subprocess.run([HAPROXY, "-c", "-f", str(config)], capture_output=True, text=True)
        assert f"parsing [{config}:2] : {message}" in theirs.stdout + theirs.stderr
