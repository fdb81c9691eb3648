"""default-path: where relative file names (errorfiles, maps of converters, ACL files,
return files) are read from, compared with haproxy 2.6 on one tree holding the same names
in each candidate directory: the process's directory (the default, "current"), the
config's ("config"), its parent ("parent") and another one ("origin <dir>")."""
from __future__ import annotations

import shutil
import socket
import subprocess

import pytest

from conftest import FASTLB, free_port, listening_sockets, wait_until

pytestmark = pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")

PLACES = ("run", "tree/conf", "tree", "elsewhere")   # current, config, parent, origin


def make_tree(root):
    for place in PLACES:
        base = root / place
        (base / "errors").mkdir(parents=True, exist_ok=True)
        (base / "errors" / "503.http").write_bytes(
            b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\n" +
            f"503 from {place}\n".encode())
        (base / "maps").mkdir(exist_ok=True)
        (base / "maps" / "m.map").write_text(f"key {place.replace('/', '_')}\n")
        (base / "acl.lst").write_text(f"/{place.replace('/', '_')}\n")
        (base / "page.txt").write_text(f"page of {place}\n")


def config(port, policy):
    line = f"    default-path {policy}\n" if policy else ""
    return f"""global
{line}
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
    errorfile 503 errors/503.http
frontend fe
    bind 127.0.0.1:{port}
    acl listed path -f acl.lst
    http-request return status 200 content-type text/plain lf-string "%[str(key),map(maps/m.map)]" if {{ path /map }}
    http-request return status 200 content-type text/plain file page.txt if {{ path /page }}
    http-request return status 200 content-type text/plain string listed if listed
    default_backend none
backend none
"""


def answers(name, root, cfg, port):
    cmd = ["haproxy", "-db", "-f", str(cfg)] if name == "haproxy" else \
        FASTLB + ["-d", "-f", str(cfg), "-n", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            cwd=root / "run")
    try:
        wait_until(lambda: listening_sockets(port) > 0 or proc.poll() is not None,
                   message=f"{name} listening")
        assert proc.poll() is None, proc.stderr.read()
        out = []
        for path in ("/", "/map", "/page", "/run", "/tree_conf", "/tree", "/elsewhere"):
            with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
                sock.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
                data = b""
                while chunk := sock.recv(4096):
                    data += chunk
            out.append(data.split(b"\r\n", 1)[0].split(b" ")[1] + b" " +
                       data.split(b"\r\n\r\n", 1)[1])
        return out
    finally:
        proc.terminate()
        proc.wait(5)


@pytest.mark.parametrize("policy, place", [
    ("", "run"), ("current", "run"), ("config", "tree/conf"), ("parent", "tree"),
    ("origin {root}/elsewhere", "elsewhere")])
def test_relative_files_are_read_from_where_haproxy_reads_them(tmp_path, policy, place):
    make_tree(tmp_path)
    cfg = tmp_path / "tree" / "conf" / "haproxy.cfg"
    port = free_port()
    cfg.write_text(config(port, policy.format(root=tmp_path)))
    theirs = answers("haproxy", tmp_path, cfg, port)
    ours = answers("fastlb", tmp_path, cfg, port)
    assert ours == theirs
    flat = place.replace("/", "_")
    assert theirs[0] == f"503 503 from {place}\n".encode()
    assert theirs[1] == f"200 {flat}".encode()
    assert theirs[2] == f"200 page of {place}\n".encode()
    assert [a.startswith(b"200 listed") for a in theirs[3:]] == \
        [p == place for p in PLACES]


@pytest.mark.parametrize("line, message", [
    ("default-path", "missing default-path mode ''"),
    ("default-path nowhere", "unsupported default-path mode 'nowhere'"),
    ("default-path origin", "'default-path origin' expects a directory as an argument."),
])
def test_default_path_mistakes_as_haproxy(tmp_path, line, message):
    path = tmp_path / "bad.cfg"
    path.write_text(f"global\n    {line}\n")
    for cmd in (["haproxy", "-c", "-f", str(path)], FASTLB + ["-c", "-f", str(path)]):
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 1 and message in done.stderr, (cmd, done.stderr)
