"""Side-by-side benchmark: fastlb, HAProxy and nginx proxying to the same nginx origin.

    python -m bench                       # all scenarios, 3 rounds, 5 s each
    python -m bench --quick               # 1 round, 2 s each (a smoke run)
    python -m bench --scenarios tcp_conn_rate,tcp_keepalive --rounds 5
    python -m bench --pin                 # the proxy alone on one core (steadier figures)

Rounds alternate between contenders (fastlb, haproxy, nginx, fastlb, ...) so that
a noisy machine hurts all of them alike; the report gives medians and each
contender's ratio to HAProxy.  Results go to bench/results/<timestamp>.json.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import servers


@dataclass
class Scenario:
    name: str
    title: str
    path: str
    connections: int
    close: bool          # "Connection: close": one TCP connection per request
    metric: str          # "rps" or "bytes_per_s"
    mode: str = "tcp"    # the proxies' mode


SCENARIOS = [
    Scenario("tcp_keepalive", "TCP mode, keep-alive requests/s (3-byte body)", "/small", 32, False, "rps"),
    Scenario("tcp_conn_rate", "TCP mode, new connections/s (Connection: close)", "/small", 32, True, "rps"),
    Scenario("tcp_throughput_1mb", "TCP mode, throughput with 1 MB bodies", "/1mb.bin", 4, False, "bytes_per_s"),
    Scenario("tcp_throughput_100mb", "TCP mode, throughput with 100 MB bodies", "/100mb.bin", 2, False, "bytes_per_s"),
    Scenario("http_keepalive", "HTTP mode, keep-alive requests/s (3-byte body)", "/small", 32, False, "rps", "http"),
    Scenario("http_close", "HTTP mode, requests/s with Connection: close", "/small", 32, True, "rps", "http"),
    Scenario("http_throughput_1mb", "HTTP mode, throughput with 1 MB bodies", "/1mb.bin", 4, False, "bytes_per_s", "http"),
]

_UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}


def parse_wrk(output: str) -> dict:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)([KMGT]?B)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if not rps or not transfer:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    return {
        "rps": float(rps.group(1)),
        "bytes_per_s": float(transfer.group(1)) * _UNITS[transfer.group(2)],
        # read errors are how wrk counts a server closing after "Connection: close"
        "errors": (int(errors.group(1)) + int(errors.group(3)) + int(errors.group(4))) if errors else 0,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def run_wrk(port: int, scenario: Scenario, duration: float) -> dict:
    cmd = ["wrk", "-t1", f"-c{scenario.connections}", f"-d{max(1, round(duration))}s", "--latency"]
    if scenario.close:
        cmd += ["-H", "Connection: close"]
    cmd.append(f"http://127.0.0.1:{port}{scenario.path}")
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30,
                            preexec_fn=servers._pinned(servers.PINNING["load"]))
    return parse_wrk(result.stdout)


def human(value: float, metric: str) -> str:
    if metric == "bytes_per_s":
        return f"{value / (1 << 20):,.0f} MiB/s"
    return f"{value:,.0f} req/s"


def run(args) -> dict:
    names = [n for n in args.contenders.split(",") if servers.available(n)]
    chosen = [s for s in SCENARIOS if s.name in args.scenarios.split(",")] \
        if args.scenarios else SCENARIOS
    workdir = Path(tempfile.mkdtemp(prefix="fastlb-bench-"))
    origin = servers.start_origin(workdir)
    samples: dict = {s.name: {n: [] for n in names} for s in chosen}
    try:
        for scenario in chosen:
            for round_no in range(args.rounds):
                order = names if round_no % 2 == 0 else list(reversed(names))
                for name in order:
                    proxy = servers.CONTENDERS[name](workdir, origin.port, args.workers,
                                                     scenario.mode)
                    try:
                        run_wrk(proxy.port, scenario, min(1.0, args.duration))   # warm-up
                        result = run_wrk(proxy.port, scenario, args.duration)
                    finally:
                        proxy.stop()
                    samples[scenario.name][name].append(result)
                    print(f"  {scenario.name:<22} round {round_no + 1} {name:<8} "
                          f"{human(result[scenario.metric], scenario.metric):>16}"
                          f"{'  errors=' + str(result['errors']) if result['errors'] else ''}",
                          flush=True)
    finally:
        origin.stop()
    return summarize(chosen, names, samples, args)


def summarize(chosen, names, samples, args) -> dict:
    report = {"workers": args.workers, "rounds": args.rounds, "duration_s": args.duration,
              "pinned": bool(servers.PINNING["proxy"]),
              "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "scenarios": {}}
    for scenario in chosen:
        medians = {n: statistics.median(r[scenario.metric] for r in samples[scenario.name][n])
                   for n in names}
        base = medians.get("haproxy")
        report["scenarios"][scenario.name] = {
            "title": scenario.title, "metric": scenario.metric, "median": medians,
            "ratio_to_haproxy": {n: (medians[n] / base if base else None) for n in names},
            "samples": samples[scenario.name],
        }
    return report


def print_table(report: dict) -> None:
    names = list(next(iter(report["scenarios"].values()))["median"])
    print(f"\n{'scenario':<24}" + "".join(f"{n:>18}" for n in names) +
          "".join(f"{n + '/haproxy':>18}" for n in names if n != "haproxy"))
    for key, data in report["scenarios"].items():
        row = f"{key:<24}" + "".join(f"{human(data['median'][n], data['metric']):>18}" for n in names)
        for n in names:
            if n != "haproxy" and data["ratio_to_haproxy"].get(n) is not None:
                row += f"{data['ratio_to_haproxy'][n]:>17.2f}x"
        print(row)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contenders", default="fastlb,haproxy,nginx")
    parser.add_argument("--scenarios", default="", help="comma-separated names (default: all)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--workers", type=int, default=1, help="-n / nbthread / worker_processes")
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s")
    parser.add_argument("--pin", action="store_true",
                        help="the proxy on the last core, wrk and the origin on the others")
    parser.add_argument("--out", default="", help="JSON output path")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration = 1, 2.0
    servers.pin_cores(args.pin)
    report = run(args)
    print_table(report)
    out = Path(args.out) if args.out else \
        Path(__file__).parent / "results" / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\nresults: {out}")
    return 0
