"""Reloads under load: what a reload every half second costs, fastlb against HAProxy.

    python -m bench.reload [--duration 8] [--interval 0.5] [--workers 2] [--out FILE]

Both proxies run in master-worker mode (HAProxy with -W) in front of the same nginx
origin.  Two configurations alternate; they differ in the backend's server (name and
weight), so every reload really changes the tables.  For each proxy and each client
kind (keep-alive, and one connection per request), wrk runs once without reloads and
once while the bench sends SIGUSR2 every interval.  Reported: req/s, the share kept
under reloads, and wrk's errors (connect/write/timeout and read) and non-2xx answers,
which should all be zero; the last column is fastlb/HAProxy.
"""
from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import idle, servers
from .run import Scenario, parse_wrk

CLIENTS = {
    "keep-alive": Scenario("reload_ka", "keep-alive", "/small", 32, False, "rps", "http"),
    "close": Scenario("reload_close", "connection per request", "/small", 16, True, "rps",
                      "http"),
}


def config(port: int, origin: int, workers: int, variant: int) -> str:
    backend = (f"    server origin_{'ab'[variant]} 127.0.0.1:{origin} weight {10 + variant}\n")
    # both keep idle connections at a reload until their next request: without it each
    # closes them, and wrk, which never retries, counts a read error when it sent on one
    return servers.haproxy_style_config(port, origin, workers, "http", 4000, backend,
                                        "    option idle-close-on-response\n")


def start(name: str, workdir: Path, origin: int, workers: int):
    port = servers.free_port()
    conf = workdir / f"{name}-reload.cfg"
    conf.write_text(config(port, origin, workers, 0))
    if name == "fastlb":
        cmd = [sys.executable, "-P", "-m", "fastlb", "-f", str(conf), "-n", str(workers)]
    else:
        cmd = ["haproxy", "-W", "-f", str(conf)]
    return servers.Process(name, cmd, port, workdir), conf


def wrk(port: int, scenario: Scenario, duration: float) -> dict:
    cmd = ["wrk", "-t1", f"-c{scenario.connections}", f"-d{max(1, round(duration))}s",
           "--timeout", "4s"]
    if scenario.close:
        cmd += ["-H", "Connection: close"]
    cmd.append(f"http://127.0.0.1:{port}{scenario.path}")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30,
                         preexec_fn=servers._pinned(servers.PINNING["load"])).stdout
    return parse_wrk(out)


def reloading(proxy, conf: Path, port: int, origin: int, workers: int, interval: float,
              stop: threading.Event, count: list) -> None:
    variant = 0
    while not stop.wait(interval):
        variant ^= 1
        conf.write_text(config(port, origin, workers, variant))
        proxy.proc.send_signal(signal.SIGUSR2)
        count[0] += 1


def measure(name: str, workdir: Path, origin: int, args) -> dict:
    proxy, conf = start(name, workdir, origin, args.workers)
    out = {}
    try:
        wrk(proxy.port, CLIENTS["keep-alive"], 1)                    # warm-up
        for client, scenario in CLIENTS.items():
            base = wrk(proxy.port, scenario, args.duration)
            stop, count = threading.Event(), [0]
            thread = threading.Thread(target=reloading, args=(proxy, conf, proxy.port, origin,
                                                              args.workers, args.interval,
                                                              stop, count))
            thread.start()
            try:
                loaded = wrk(proxy.port, scenario, args.duration)
            finally:
                stop.set()
                thread.join()
            time.sleep(1.0)                     # let the last reload settle
            out[client] = {"rps": base["rps"], "rps_reloading": loaded["rps"],
                           "reloads": count[0], "errors": loaded["errors"],
                           "read_errors": loaded["read_errors"],
                           "non_2xx": loaded["non_2xx"]}
    finally:
        proxy.stop()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reload", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    names = [n for n in ("fastlb", "haproxy") if servers.available(n)]
    idle.raise_fd_limit(65536)
    results = {}
    with tempfile.TemporaryDirectory(prefix="fastlb-reload-") as tmp:
        workdir = Path(tmp)
        origin = servers.start_origin(workdir)
        try:
            for name in names:
                results[name] = measure(name, workdir, origin.port, args)
        finally:
            origin.stop()
    print(f"# reload every {args.interval} s during {args.duration:.0f} s, "
          f"{args.workers} workers/threads")
    print(f"{'client':<11} {'proxy':<8} {'req/s':>9} {'reloading':>10} {'kept':>6} "
          f"{'reloads':>8} {'err':>4} {'read':>5} {'non2xx':>7}")
    for client in CLIENTS:
        for name in names:
            r = results[name][client]
            print(f"{client:<11} {name:<8} {r['rps']:>9,.0f} {r['rps_reloading']:>10,.0f} "
                  f"{r['rps_reloading'] / r['rps']:>6.2f} {r['reloads']:>8} {r['errors']:>4} "
                  f"{r['read_errors']:>5} {r['non_2xx']:>7}")
        if len(names) == 2:
            ratio = (results["fastlb"][client]["rps_reloading"] /
                     results["haproxy"][client]["rps_reloading"])
            print(f"{client:<11} fastlb/haproxy under reloads: {ratio:.2f}x")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
