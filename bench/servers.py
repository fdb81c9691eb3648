"""Processes a benchmark run needs: the nginx origin and the proxies under test.

Every contender gets the same shape of configuration (one frontend, one backend,
one server: the nginx origin) and the same number of workers/threads.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
BODY_SIZES = {"1mb.bin": 1 << 20, "100mb.bin": 100 << 20}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


# --pin: the proxy under test gets a core of its own; the load generator and the origin
# share the others.  Without it, where the scheduler puts three busy processes on two
# cores moves results by +-20 % or more.
PINNING = {"proxy": None, "load": None}


def pin_cores(enabled: bool) -> None:
    cores = sorted(os.sched_getaffinity(0))
    if enabled and len(cores) >= 2:
        PINNING["proxy"] = {cores[-1]}
        PINNING["load"] = set(cores[:-1])


def _pinned(cores):
    return (lambda: os.sched_setaffinity(0, cores)) if cores else None


class Process:
    def __init__(self, name: str, cmd: list[str], port: int, workdir: Path, role: str = "proxy"):
        self.name = name
        self.port = port
        self.log = open(workdir / f"{name}.log", "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=_pinned(PINNING[role]))
        wait_port(port)

    def memory(self) -> tuple[int, int]:
        """(RSS, PSS) of the process and all its children (master and workers), bytes.  The
        RSS sum counts twice the pages a forked worker still shares with its master; PSS
        splits each shared page between the processes that map it."""
        import psutil
        rss = pss = 0
        try:
            root = psutil.Process(self.proc.pid)
            for proc in [root] + root.children(recursive=True):
                info = proc.memory_full_info()
                rss += info.rss
                pss += info.pss
        except psutil.NoSuchProcess:
            pass
        return rss, pss

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def _nginx_common(workdir: Path, workers: int) -> str:
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (f"{user}worker_processes {workers};\nworker_rlimit_nofile 65536;\ndaemon off;\npid {workdir}/nginx-{os.getpid()}-{time.monotonic_ns()}.pid;\n"
            f"error_log {workdir}/nginx-error.log;\nevents {{ worker_connections 30000; }}\n")


def start_origin(workdir: Path, workers: int = 1) -> Process:
    """nginx serving static 200 responses: /small (3 bytes) and files of BODY_SIZES."""
    www = workdir / "www"
    www.mkdir(exist_ok=True)
    for name, size in BODY_SIZES.items():
        path = www / name
        if not path.exists() or path.stat().st_size != size:
            with open(path, "wb") as handle:
                handle.truncate(size)
    port = free_port()
    conf = workdir / "origin.conf"
    conf.write_text(_nginx_common(workdir, workers) + f"""
http {{
    access_log off;
    sendfile on;
    keepalive_requests 10000000;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {www};
        location = /small {{ return 200 "ok\\n"; }}
    }}
}}
""")
    return Process("origin", ["nginx", "-c", str(conf)], port, workdir, role="load")


def haproxy_style_config(port: int, origin_port: int, workers: int, mode: str = "tcp",
                         maxconn: int = 4000, backend: str = "", frontend: str = "") -> str:
    """backend: the backend section's lines (default: one server, the origin); frontend:
    more lines for the frontend."""
    backend = backend or f"    server origin 127.0.0.1:{origin_port}\n"
    return f"""
global
    nbthread {workers}
    maxconn {maxconn}

defaults
    mode {mode}
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend fe
    bind 127.0.0.1:{port}
{frontend}    default_backend be

backend be
{backend}"""


def start_fastlb(workdir: Path, origin_port: int, workers: int, mode: str = "tcp",
                 maxconn: int = 4000, backend: str = "") -> Process:
    port = free_port()
    conf = workdir / "fastlb.cfg"
    conf.write_text(haproxy_style_config(port, origin_port, workers, mode, maxconn, backend))
    return Process("fastlb", [sys.executable, "-P", "-m", "fastlb", "-f", str(conf), "-n", str(workers)],
                   port, workdir)


def start_haproxy(workdir: Path, origin_port: int, workers: int, mode: str = "tcp",
                  maxconn: int = 4000, backend: str = "") -> Process:
    port = free_port()
    conf = workdir / "haproxy.cfg"
    conf.write_text(haproxy_style_config(port, origin_port, workers, mode, maxconn, backend))
    return Process("haproxy", ["haproxy", "-f", str(conf)], port, workdir)


def start_nginx_proxy(workdir: Path, origin_port: int, workers: int, mode: str = "tcp",
                      maxconn: int = 4000) -> Process:
    # nginx has no maxconn; worker_connections (30000) is above every scenario's need
    port = free_port()
    conf = workdir / "nginx-proxy.conf"
    if mode == "http":
        # HTTP proxy with kept-alive upstream connections, like HAProxy's default
        conf.write_text(_nginx_common(workdir, workers) + f"""
http {{
    access_log off;
    upstream origin {{ server 127.0.0.1:{origin_port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        keepalive_requests 10000000;
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
""")
        return Process("nginx", ["nginx", "-c", str(conf)], port, workdir)
    conf.write_text(f"load_module {NGINX_STREAM_MODULE};\n" + _nginx_common(workdir, workers) + f"""
stream {{
    upstream origin {{ server 127.0.0.1:{origin_port}; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        proxy_pass origin;
        proxy_connect_timeout 5s;
        proxy_timeout 30s;
    }}
}}
""")
    return Process("nginx", ["nginx", "-c", str(conf)], port, workdir)


CONTENDERS = {
    "fastlb": start_fastlb,
    "haproxy": start_haproxy,
    "nginx": start_nginx_proxy,
}


def available(name: str) -> bool:
    if name == "haproxy":
        return shutil.which("haproxy") is not None
    if name == "nginx":
        return shutil.which("nginx") is not None and os.path.exists(NGINX_STREAM_MODULE)
    return True
