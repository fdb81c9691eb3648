"""Soak: fastlb under mixed traffic and backend kills, watched for leaks.

    python -m bench.soak [--duration 600] [--kill-every 60] [--out soak.json]

Two nginx origins behind fastlb -n 2 (option redispatch, health checks).  For the whole run:
wrk with keep-alive (8 connections) and wrk with a connection per request (4), 20 slow
clients that send each request head in small pieces, and 10 slow readers that fetch 1 MB
bodies a few KiB at a time.  Every --kill-every seconds one origin is SIGKILLed and
restarted 10 s later.  Every 5 s the RSS and open descriptors of the master and workers are
sampled (psutil).

It fails (exit 1) when RSS or descriptors grow (the last quarter's maximum above the first
quarter's by more than 10 % + 4 MiB, or 64 descriptors), when a worker dies, or when more
requests fail than could have been in flight on the killed origins (wrk's errors and
non-2xx answers, at most the client connections per kill).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from .run import parse_wrk
from .servers import Process, free_port, start_origin

KEEPALIVE_CONNS, CLOSE_CONNS = 8, 4
SETTLE_S = 30       # idle pools of 64 halve every 5 s: 7 periods; then leftovers leaked


def fastlb_config(port: int, origins: list) -> str:
    servers = "".join(f"    server o{i} 127.0.0.1:{p} check inter 500 fall 2 rise 2\n"
                      for i, p in enumerate(origins))
    return f"""
global
    maxconn 4000
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
    timeout http-request 5s
    retries 3
    option redispatch
frontend fe
    bind 127.0.0.1:{port}
    default_backend be
backend be
{servers}"""


def process_figures(root_pid: int) -> dict:
    out = {"rss": 0, "fds": 0, "workers": []}
    try:
        root = psutil.Process(root_pid)
        procs = [root] + root.children()
    except psutil.NoSuchProcess:
        return out
    for proc in procs:
        try:
            out["rss"] += proc.memory_info().rss
            out["fds"] += proc.num_fds()
            if proc.pid != root_pid and "worker" in " ".join(proc.cmdline()):
                out["workers"].append(proc.pid)
        except psutil.NoSuchProcess:
            pass
    return out


def describe_descriptors(root_pid: int, origin_ports: list, port: int) -> dict:
    """What the master's and workers' descriptors are, for a failure report."""
    kinds = {}
    try:
        root = psutil.Process(root_pid)
        procs = [root] + root.children()
    except psutil.NoSuchProcess:
        return kinds
    for proc in procs:
        try:
            conns = proc.net_connections(kind="all")
        except psutil.NoSuchProcess:
            continue
        for conn in conns:
            peer = conn.raddr.port if conn.raddr else None
            role = ("origin" if peer in origin_ports else "client" if conn.laddr and
                    getattr(conn.laddr, "port", None) == port else "other")
            key = f"{proc.pid} {role} {conn.status}"
            kinds[key] = kinds.get(key, 0) + 1
    return kinds


class SlowClients:
    """Slow senders and slow readers, in threads, until stopped; counts what they got."""

    def __init__(self, port: int):
        self.port = port
        self.stop = threading.Event()
        self.ok = self.failed = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.sender, daemon=True) for _ in range(20)]
        self.threads += [threading.Thread(target=self.reader, daemon=True) for _ in range(10)]

    def start(self):
        for t in self.threads:
            t.start()

    def count(self, ok: bool):
        with self.lock:
            if ok:
                self.ok += 1
            else:
                self.failed += 1

    def sender(self):
        head = b"GET /small HTTP/1.1\r\nHost: soak\r\nUser-Agent: slow\r\n\r\n"
        while not self.stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=15) as conn:
                    for i in range(0, len(head), 8):
                        conn.sendall(head[i:i + 8])
                        time.sleep(0.05)
                    self.count(conn.recv(64).startswith(b"HTTP/1.1 200"))
            except OSError:
                self.count(False)

    def reader(self):
        while not self.stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=15) as conn:
                    conn.sendall(b"GET /1mb.bin HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
                    got = 0
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
                    while True:
                        data = conn.recv(4096)
                        if not data:
                            break
                        got += len(data)
                        time.sleep(0.002)
                    self.count(got >= 1 << 20)
            except OSError:
                self.count(False)

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(20)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak")
    parser.add_argument("--duration", type=float, default=600)
    parser.add_argument("--kill-every", type=float, default=60)
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="fastlb-soak-"))
    origins = []
    for i in range(2):
        (workdir / f"o{i}").mkdir()
        origins.append(start_origin(workdir / f"o{i}"))
    port = free_port()
    conf = workdir / "fastlb.cfg"
    conf.write_text(fastlb_config(port, [o.port for o in origins]))
    lb = Process("fastlb", [sys.executable, "-P", "-m", "fastlb", "-f", str(conf), "-n", "2"],
                 port, workdir)
    time.sleep(1)
    first = process_figures(lb.proc.pid)
    duration = int(args.duration)
    wrks = [subprocess.Popen(["wrk", "-t1", f"-c{KEEPALIVE_CONNS}", f"-d{duration}s",
                              f"http://127.0.0.1:{port}/small"], stdout=subprocess.PIPE, text=True),
            subprocess.Popen(["wrk", "-t1", f"-c{CLOSE_CONNS}", f"-d{duration}s", "-H",
                              "Connection: close", f"http://127.0.0.1:{port}/small"],
                             stdout=subprocess.PIPE, text=True)]
    slow = SlowClients(port)
    slow.start()
    samples, kills = [], 0
    started = time.monotonic()
    next_kill = started + args.kill_every
    victim, restart_at = None, 0.0
    while time.monotonic() - started < duration:
        time.sleep(5)
        now = time.monotonic()
        if victim is None and now >= next_kill:
            victim = kills % 2
            os.killpg(origins[victim].proc.pid, signal.SIGKILL)
            origins[victim].proc.wait()
            kills += 1
            restart_at = now + 10
        elif victim is not None and now >= restart_at:
            origins[victim] = Process(f"origin{victim}", origins[victim].proc.args,
                                      origins[victim].port, workdir / f"o{victim}", role="load")
            victim = None
            next_kill = now + args.kill_every
        figures = process_figures(lb.proc.pid)
        samples.append({"t": round(now - started, 1), "rss": figures["rss"], "fds": figures["fds"],
                        "workers": figures["workers"]})
        print(f"[{now - started:6.0f}s] RSS {figures['rss'] / 2**20:6.1f} MiB, "
              f"{figures['fds']:4d} fds, workers {figures['workers']}, kills {kills}", flush=True)
    results = [parse_wrk(w.communicate()[0]) for w in wrks]
    slow.join()
    # Idle server connections close over pool-purge-delay (5 s, halving), sessions of the
    # killed origin within their timeouts: what is still open once those have passed leaked.
    settle = time.monotonic() + SETTLE_S
    while True:
        time.sleep(1)
        end = process_figures(lb.proc.pid)
        if end["fds"] <= first["fds"] + 16 or time.monotonic() >= settle:
            break
    if end["fds"] > first["fds"] + 16:
        print("open descriptors:", describe_descriptors(lb.proc.pid,
                                                        [o.port for o in origins], port))
    lb.stop()
    for origin in origins:
        origin.stop()

    quarter = max(1, len(samples) // 4)
    rss_first = max(s["rss"] for s in samples[:quarter])
    rss_last = max(s["rss"] for s in samples[-quarter:])
    fds_first = max(s["fds"] for s in samples[:quarter])
    fds_last = max(s["fds"] for s in samples[-quarter:])
    # read errors are how wrk counts a "Connection: close" answer: only keep-alive's count
    failed = sum(r["errors"] + r["non_2xx"] for r in results) + results[0]["read_errors"]
    in_flight_bound = kills * (KEEPALIVE_CONNS + CLOSE_CONNS + len(slow.threads))
    worker_sets = {tuple(sorted(s["workers"])) for s in samples}
    report = {
        "duration_s": duration, "kills": kills, "samples": samples,
        "wrk": results, "slow_ok": slow.ok, "slow_failed": slow.failed,
        "rss_first_quarter_max": rss_first, "rss_last_quarter_max": rss_last,
        "fds_first_quarter_max": fds_first, "fds_last_quarter_max": fds_last,
        "fds_at_start": first["fds"], "fds_after": end["fds"],
        "failed_requests": failed + slow.failed, "in_flight_bound": in_flight_bound,
        "worker_sets": len(worker_sets),
    }
    problems = []
    if rss_last > rss_first * 1.10 + (4 << 20):
        problems.append("RSS grew")
    if fds_last > fds_first + 64 or end["fds"] > first["fds"] + 16:
        problems.append("descriptors grew")
    if len(worker_sets) != 1:
        problems.append("a worker died")
    if failed + slow.failed > in_flight_bound:
        problems.append("more failed requests than were in flight on the killed origins")
    report["problems"] = problems
    total = int(sum(r["rps"] for r in results) * duration) + slow.ok
    print(f"{total} requests ({slow.ok} slow ones), {failed + slow.failed} failed "
          f"(bound {in_flight_bound} for {kills} kills); RSS {rss_first / 2**20:.1f} -> "
          f"{rss_last / 2**20:.1f} MiB; fds {fds_first} -> {fds_last} (start {first['fds']}, "
          f"after {end['fds']}); {'PASS' if not problems else 'FAIL: ' + ', '.join(problems)}")
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
