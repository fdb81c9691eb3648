"""http-request / http-response silent-drop and reject, against haproxy 2.6: what the client
sees (a connection that stays open and silent, or one closed without an answer), what the
server received, and how the frontend counts them (dreq)."""
from __future__ import annotations

import csv
import socket
import subprocess
import time

from conftest import FASTLB, Backend, free_port, listening_sockets, wait_until
from test_tcp_rules import HAPROXY, needs_haproxy


class Answering(Backend):
    """Answers each request with its path in X-Path, and remembers the paths."""

    def __init__(self):
        self.paths = []
        super().__init__(self._handle, "web")

    def _handle(self, conn, backend):
        conn.settimeout(2)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            path = data.split(b" ", 2)[1]
            self.paths.append(path.decode())
            conn.sendall(b"HTTP/1.1 200 OK\r\nX-Path: " + path +
                         b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        except OSError:
            pass


def config(port, sock, web):
    return f"""
global
    stats socket {sock} level admin
defaults
    mode http
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:{port}
    http-request silent-drop if {{ path /sd }}
    http-request reject if {{ path /rej }}
    http-response silent-drop if {{ res.hdr(x-path) -m str /rsd }}
    default_backend be
backend be
    server web 127.0.0.1:{web}
"""


def ask(port: int, path: str) -> str:
    """The first bytes of the answer, "closed" (FIN or reset, no byte) or "open" (nothing
    at all within a second: the connection is still there as far as the client knows)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(1.0)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        try:
            data = sock.recv(12)
        except socket.timeout:
            return "open"
        except ConnectionResetError:
            return "closed"
        return data.decode() if data else "closed"


@needs_haproxy
def test_silent_drop_and_reject_as_haproxy(tmp_path):
    seen = {}
    for name in ("haproxy", "fastlb"):
        web = Answering()
        port = free_port()
        sock = tmp_path / f"{name}.sock"
        path = tmp_path / f"{name}.cfg"
        path.write_text(config(port, sock, web.port))
        cmd = [HAPROXY, "-db", "-f", str(path)] if name == "haproxy" else \
            FASTLB + ["-d", "-f", str(path), "-n", "1"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                stderr=open(tmp_path / f"{name}.err", "wb"), cwd=tmp_path)
        try:
            wait_until(lambda: listening_sockets(port) > 0, message=f"{name} listening")
            answers = [ask(port, p) for p in ("/ok", "/sd", "/rej", "/rsd", "/ok")]
            time.sleep(0.2)
            with socket.socket(socket.AF_UNIX) as cli:
                cli.connect(str(sock))
                cli.sendall(b"show stat\n")
                text = b""
                while chunk := cli.recv(65536):
                    text += chunk
            rows = {(r["pxname"], r["svname"]): r
                    for r in csv.DictReader(text.decode().lstrip("# ").splitlines())}
            seen[name] = (answers, list(web.paths), rows[("fe", "FRONTEND")]["dreq"],
                          rows[("be", "BACKEND")]["dreq"], rows[("be", "BACKEND")]["dresp"])
        finally:
            proc.terminate()
            proc.wait(5)
            web.close()
    answers, paths, fe_dreq, be_dreq, be_dresp = seen["fastlb"]
    assert answers == ["HTTP/1.1 200", "open", "closed", "open", "HTTP/1.1 200"]
    assert paths == ["/ok", "/rsd", "/ok"]          # /sd and /rej never reach the server
    assert seen["fastlb"] == seen["haproxy"]
