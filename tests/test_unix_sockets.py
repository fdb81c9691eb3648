"""UNIX-socket binds and servers (unix@, abns@, /path), their mode and owner, and the
ipv4@/ipv6@ prefixes, side by side with Debian's haproxy."""
from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import stat
import threading
import time

import pytest

from conftest import free_port, wait_until
from test_proxy_protocol import SIG, V1_TCP4, Proxy, closed_output

needs_haproxy = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")


class UnixBackend:
    """A threaded server on a UNIX path or abstract name: records the first bytes of each
    connection (up to "ping"), answers with its name and what it read, then closes."""

    def __init__(self, address, name="us"):
        self.name = name
        self.received = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(address)
        self.sock.listen(64)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn):
        with conn:
            data = b""
            conn.settimeout(3)
            try:
                while b"ping" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.received.append(data)
                conn.sendall(self.name.encode() + b"\n" + data[data.find(b"ping"):])
            except OSError:
                pass

    def close(self):
        self.sock.close()


def abns(name: str) -> str:
    """An abstract address as HAProxy writes it: the name padded to the whole sun_path."""
    return "\0" + name + "\0" * (107 - len(name))


def unix_exchange(path, data=b"ping") -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(path)
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        return closed_output(sock)


CONFIG = """
global
    log 127.0.0.1:{log} local0
defaults
    mode tcp
    log global
    option tcplog
    timeout connect 1s
    timeout client 2s
    timeout server 2s
listen u_path
    bind unix@{dir}/{tag}-a.sock mode 640 user {user} group {group}
    server s1 unix@{dir}/back.sock
listen u_abns
    bind abns@{tag}-b
    server s1 abns@fastlb-test-back-{tag}
listen u_v1
    bind {dir}/{tag}-c.sock
    server s1 {dir}/back.sock send-proxy
listen u_v2
    bind unix@{dir}/{tag}-d.sock
    server s1 unix@{dir}/back.sock send-proxy-v2
listen tcp_to_unix
    bind ipv4@127.0.0.1:{p0} accept-proxy
    server s1 unix@{dir}/back.sock send-proxy
listen u_to_tcp
    bind unix@{dir}/{tag}-e.sock accept-proxy
    server s1 ipv4@127.0.0.1:{tcp}
"""


@needs_haproxy
def test_unix_binds_and_servers_match_haproxy(tmp_path, backends):
    from conftest import name_handler
    tcp = backends(name_handler, name="tcp")
    back = UnixBackend(str(tmp_path / "back.sock"), "path")
    abstract = {}
    user = pwd.getpwnam("nobody")
    group = grp.getgrgid(user.pw_gid)
    results = {}
    try:
        for tag in ("haproxy", "fastlb"):
            abstract[tag] = UnixBackend(abns(f"fastlb-test-back-{tag}"), "abns")

        def scenario_for(tag):
            def scenario(ports, syslog):
                wait_until(lambda: os.path.exists(tmp_path / f"{tag}-e.sock"), message="sockets")
                back.received.clear()
                st = os.stat(tmp_path / f"{tag}-a.sock")
                out = {
                    "mode": (stat.S_ISSOCK(st.st_mode), oct(st.st_mode & 0o777),
                             st.st_uid == user.pw_uid, st.st_gid == group.gr_gid),
                    "path": unix_exchange(str(tmp_path / f"{tag}-a.sock")),
                    "abns": unix_exchange(abns(f"{tag}-b")),
                    "v1": unix_exchange(str(tmp_path / f"{tag}-c.sock")),
                    "v2": unix_exchange(str(tmp_path / f"{tag}-d.sock")),
                    "proxied-to-unix": closed_output_tcp(ports[0], V1_TCP4 + b"ping"),
                    "unix-proxied-to-tcp": unix_exchange(str(tmp_path / f"{tag}-e.sock"),
                                                         V1_TCP4 + b"ping"),
                }
                time.sleep(0.2)
                out["received"] = sorted(back.received)
                return out
            return scenario

        for tag in ("haproxy", "fastlb"):
            # one run each: the socket names carry the program's name
            results[tag] = run_one(tmp_path, tag, CONFIG, scenario_for(tag), dir=tmp_path,
                                   tag=tag, user=user.pw_name, group=group.gr_name, tcp=tcp.port)
    finally:
        back.close()
        for b in abstract.values():
            b.close()
    (hap, hap_logs), (flb, flb_logs) = results["haproxy"], results["fastlb"]
    assert flb == hap
    assert flb["mode"] == (True, "0o640", True, True)
    assert flb["path"] == b"path\nping"
    assert flb["abns"] == b"abns\nping"
    assert flb["received"] == sorted([b"ping", b"PROXY UNKNOWN\r\nping",
                                      SIG + b"\x20\x00\x00\x00ping", V1_TCP4 + b"ping"])
    assert flb["unix-proxied-to-tcp"] == b"tcp\nping"
    assert sorted(flb_logs) == sorted(hap_logs), \
        "\n".join(sorted(flb_logs)) + "\n--- haproxy ---\n" + "\n".join(sorted(hap_logs))
    assert any(" unix:1 [DATE] u_abns u_abns/s1 " in line for line in flb_logs), flb_logs


def closed_output_tcp(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        return closed_output(sock)


def run_one(tmp_path, name, template, scenario, **values):
    """As test_proxy_protocol.both(), for one program."""
    from conftest import SyslogReceiver
    from test_proxy_protocol import normalize
    syslog = SyslogReceiver()
    ports = [free_port()]
    text = template.format(log=syslog.port, p0=ports[0], **values)
    proxy = Proxy(name, tmp_path, text, ports)
    try:
        syslog.drain(0.1)
        result = scenario(ports, syslog)
        time.sleep(0.2)
        logs = [normalize(line).replace(f"{name}-", "TAG-") for line in syslog.drain(0.4)]
        assert proxy.proc.poll() is None, f"{name} died"
    finally:
        proxy.stop()
        syslog.sock.close()
    return result, logs


def test_unix_addresses_refused_forms(tmp_path):
    import subprocess
    from conftest import FASTLB
    for line, word in [("bind unix@" + "x" * 120, "invalid UNIX socket address"),
                       ("bind unix@/tmp/x.sock mode 9z", "invalid value '9z'"),
                       ("bind unix@/tmp/x.sock user no-such-user-here", "no-such-user-here"),
                       ("server s fd@3", "fd@ server addresses are not supported")]:
        cfg = tmp_path / "bad.cfg"
        cfg.write_text(f"defaults\n    mode tcp\nlisten l\n    bind 127.0.0.1:{free_port()}\n"
                       f"    {line}\n")
        proc = subprocess.run(FASTLB + ["-c", "-f", str(cfg)], capture_output=True, text=True,
                              timeout=30)
        assert proc.returncode != 0, line
        assert "bad.cfg:5" in proc.stderr and word in proc.stderr, proc.stderr


def test_unix_bind_sets_the_prefix_and_mode_of_unix_binds(tmp_path, fastlb):
    """global unix-bind prefix/mode: the socket is created at <prefix><path> with that
    mode unless the bind says otherwise; the path exists as haproxy would create it."""
    import stat
    port = free_port()
    fastlb(f"""
        global
            unix-bind prefix {tmp_path}/ mode 600
        defaults
            mode http
            timeout connect 1s
            timeout client 5s
            timeout server 5s
        frontend fe
            bind unix@a.sock
            bind unix@b.sock mode 640
            bind 127.0.0.1:{port}
            http-request return status 200
        """, ports=[port])
    for name, mode in (("a.sock", 0o600), ("b.sock", 0o640)):
        path = tmp_path / name
        wait_until(path.exists, message=f"{path}")
        assert stat.S_IMODE(path.stat().st_mode) == mode
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(5)
        sock.connect(str(tmp_path / "a.sock"))
        sock.sendall(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 200")
