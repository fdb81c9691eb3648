"""Side-by-side benchmark: fastlb, HAProxy and nginx proxying to the same nginx origin.

    python -m bench                       # all scenarios, 3 rounds, 5 s each
    python -m bench --quick               # 1 round, 2 s each (a smoke run)
    python -m bench --scenarios tcp_conn_rate,tcp_keepalive --rounds 5
    python -m bench --pin                 # the proxy alone on one core (steadier figures)
    python -m bench --plot bench/bench.png

Rounds alternate between contenders (fastlb, haproxy, nginx, haproxy, fastlb, ...) so
that a noisy machine hurts all of them alike; the report gives medians and each
contender's ratio to HAProxy.  Results go to bench/results/<timestamp>.json.

Scenario kinds:
  load     wrk at full speed: requests/s or bytes/s (higher is better)
  latency  wrk at a fixed request rate, half of HAProxy's keep-alive peak measured
           first in the same run: p50/p90/p99 (lower is better)
  idle     10,000 idle keep-alive client connections: the RSS they add to all the
           proxy's processes (lower is better); total RSS and PSS are in the JSON
  scaling  the keep-alive load at 1 and at 2 workers/threads: the 2/1 ratio
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

from . import idle, servers


@dataclass
class Scenario:
    name: str
    title: str
    path: str
    connections: int
    close: bool          # "Connection: close": one TCP connection per request
    metric: str          # "rps", "bytes_per_s", "p99_us", "rss_delta_bytes" or "scaling"
    mode: str = "tcp"    # the proxies' mode
    kind: str = "load"

    @property
    def lower_is_better(self) -> bool:
        return self.metric in ("p99_us", "rss_delta_bytes")


SCENARIOS = [
    Scenario("tcp_keepalive", "TCP mode, keep-alive requests/s (3-byte body)", "/small", 32, False, "rps"),
    Scenario("tcp_conn_rate", "TCP mode, new connections/s (Connection: close)", "/small", 32, True, "rps"),
    Scenario("tcp_throughput_1mb", "TCP mode, throughput with 1 MB bodies", "/1mb.bin", 4, False, "bytes_per_s"),
    Scenario("tcp_throughput_100mb", "TCP mode, throughput with 100 MB bodies", "/100mb.bin", 2, False, "bytes_per_s"),
    Scenario("http_keepalive", "HTTP mode, keep-alive requests/s (3-byte body)", "/small", 32, False, "rps", "http"),
    Scenario("http_close", "HTTP mode, requests/s with Connection: close", "/small", 32, True, "rps", "http"),
    Scenario("http_throughput_1mb", "HTTP mode, throughput with 1 MB bodies", "/1mb.bin", 4, False, "bytes_per_s", "http"),
    Scenario("http_latency", "HTTP mode, p99 latency at 50% of HAProxy's peak rate", "/small", 0, False,
             "p99_us", "http", "latency"),
    Scenario("http_idle_rss", "HTTP mode, RSS added by 10,000 idle keep-alive connections", "/small",
             10000, False, "rss_delta_bytes", "http", "idle"),
    Scenario("http_scaling", "HTTP mode, keep-alive requests/s at 2 workers / at 1", "/small", 64, False,
             "scaling", "http", "scaling"),
]

_UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}
_TIME_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6}
PERCENTILES = (50, 75, 90, 95, 99, 99.9)
LATENCY_DELAY_MS = 10     # each connection waits this long between requests


def parse_wrk(output: str) -> dict:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)([KMGT]?B)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if not rps or not transfer:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    result = {
        "rps": float(rps.group(1)),
        "bytes_per_s": float(transfer.group(1)) * _UNITS[transfer.group(2)],
        # read errors are how wrk counts a server closing after "Connection: close"
        "errors": (int(errors.group(1)) + int(errors.group(3)) + int(errors.group(4))) if errors else 0,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "read_errors": int(errors.group(2)) if errors else 0,
    }
    # percentiles printed by LATENCY_SCRIPT, in microseconds
    pct = {float(p): float(v) for p, v in re.findall(r"^pct ([\d.]+) (\d+)$", output, re.M)}
    if pct:
        result["latency_us"] = pct
        result["p50_us"] = pct.get(50.0)
        result["p99_us"] = pct.get(99.0)
    return result


# wrk's delay() spaces each connection's requests: connections x 1000 / delay ms is the
# offered rate, the same for every contender.  done() prints the latency percentiles.
LATENCY_SCRIPT = """
function delay() return %d end
function done(summary, latency, requests)
  for _, p in ipairs({%s}) do
    io.write(string.format("pct %%g %%d\\n", p, latency:percentile(p)))
  end
end
"""


def run_wrk(port: int, scenario: Scenario, duration: float, connections: int = 0,
            script: str = "") -> dict:
    cmd = ["wrk", "-t1", f"-c{connections or scenario.connections}",
           f"-d{max(1, round(duration))}s", "--latency"]
    if script:
        cmd += ["-s", script]
    if scenario.close:
        cmd += ["-H", "Connection: close"]
    cmd.append(f"http://127.0.0.1:{port}{scenario.path}")
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30,
                            preexec_fn=servers._pinned(servers.PINNING["load"]))
    return parse_wrk(result.stdout)


def human(value: float, metric: str) -> str:
    if value is None:
        return "-"
    if metric == "bytes_per_s":
        return f"{value / (1 << 20):,.0f} MiB/s"
    if metric == "p99_us":
        return f"{value / 1000:,.2f} ms p99"
    if metric in ("rss_bytes", "rss_delta_bytes"):
        return f"{value / (1 << 20):,.1f} MiB"
    if metric == "scaling":
        return f"{value:.2f}x"
    return f"{value:,.0f} req/s"


class Bench:
    def __init__(self, args, names: list[str]):
        self.args = args
        self.names = names
        self.workdir = Path(tempfile.mkdtemp(prefix="fastlb-bench-"))
        self.origin = None
        self.latency_rate = 0.0     # requests/s offered in the latency scenario

    def start(self, name: str, scenario: Scenario, workers: int = 0, maxconn: int = 4000):
        return servers.CONTENDERS[name](self.workdir, self.origin.port, workers or self.args.workers,
                                        scenario.mode, maxconn)

    # -- one measurement of one contender ------------------------------------------
    def measure(self, name: str, scenario: Scenario) -> dict:
        if scenario.kind == "idle":
            return self.measure_idle(name, scenario)
        if scenario.kind == "scaling":
            pinned = dict(servers.PINNING)
            servers.PINNING.update(proxy=None, load=None)    # two workers need both cores
            try:
                one = self.measure_load(name, scenario, workers=1)
                two = self.measure_load(name, scenario, workers=2)
            finally:
                servers.PINNING.update(pinned)
            return {"scaling": two["rps"] / one["rps"] if one["rps"] else None,
                    "rps_1": one["rps"], "rps_2": two["rps"], "errors": one["errors"] + two["errors"]}
        return self.measure_load(name, scenario)

    def measure_load(self, name: str, scenario: Scenario, workers: int = 0) -> dict:
        proxy = self.start(name, scenario, workers)
        try:
            if scenario.kind == "latency":
                conns = max(1, round(self.latency_rate * LATENCY_DELAY_MS / 1000))
                script = self.workdir / "latency.lua"
                script.write_text(LATENCY_SCRIPT % (LATENCY_DELAY_MS,
                                                     ", ".join(str(p) for p in PERCENTILES)))
                run_wrk(proxy.port, scenario, min(1.0, self.args.duration), conns, str(script))
                result = run_wrk(proxy.port, scenario, self.args.duration, conns, str(script))
                result["offered_rps"] = self.latency_rate
                return result
            run_wrk(proxy.port, scenario, min(1.0, self.args.duration))   # warm-up
            return run_wrk(proxy.port, scenario, self.args.duration)
        finally:
            proxy.stop()

    def measure_idle(self, name: str, scenario: Scenario) -> dict:
        count = min(scenario.connections, idle.fd_budget())
        proxy = self.start(name, scenario, maxconn=count + 100)
        clients = idle.IdleClients(proxy.port, count)
        try:
            time.sleep(0.2)
            rss_before, pss_before = proxy.memory()
            answered = clients.open()
            time.sleep(0.5)             # let lazily freed buffers go back
            rss, pss = proxy.memory()
        finally:
            clients.close()
            proxy.stop()
        return {"rss_delta_bytes": rss - rss_before, "rss_bytes": rss, "rss_before": rss_before,
                "pss_bytes": pss, "pss_before": pss_before, "connections": count,
                "answered": answered, "errors": count - answered}

    def peak_for_latency(self) -> None:
        """The latency scenario offers half of HAProxy's keep-alive peak (or of the first
        contender's when HAProxy is not installed)."""
        name = "haproxy" if "haproxy" in self.names else self.names[0]
        probe = next(s for s in SCENARIOS if s.name == "http_keepalive")
        self.latency_rate = 0.5 * self.measure_load(name, probe)["rps"]
        print(f"  http_latency: offering {self.latency_rate:,.0f} req/s "
              f"(50% of {name}'s keep-alive peak)", flush=True)

    # -- the run -----------------------------------------------------------------------
    def run(self, chosen: list[Scenario]) -> dict:
        self.origin = servers.start_origin(self.workdir)
        samples: dict = {s.name: {n: [] for n in self.names} for s in chosen}
        try:
            for scenario in chosen:
                if scenario.kind == "latency":
                    self.peak_for_latency()
                for round_no in range(self.args.rounds):
                    order = self.names if round_no % 2 == 0 else list(reversed(self.names))
                    for name in order:
                        result = self.measure(name, scenario)
                        samples[scenario.name][name].append(result)
                        print(f"  {scenario.name:<22} round {round_no + 1} {name:<8} "
                              f"{human(result[scenario.metric], scenario.metric):>16}"
                              f"{'  errors=' + str(result['errors']) if result['errors'] else ''}",
                              flush=True)
        finally:
            self.origin.stop()
        return summarize(chosen, self.names, samples, self.args)


def summarize(chosen, names, samples, args) -> dict:
    report = {"workers": args.workers, "rounds": args.rounds, "duration_s": args.duration,
              "pinned": bool(servers.PINNING["proxy"]),
              "time": time.strftime("%Y-%m-%dT%H:%M:%S"), "scenarios": {}}
    for scenario in chosen:
        medians = {}
        for n in names:
            values = [r[scenario.metric] for r in samples[scenario.name][n]
                      if r.get(scenario.metric) is not None]
            medians[n] = statistics.median(values) if values else None
        base = medians.get("haproxy")
        report["scenarios"][scenario.name] = {
            "title": scenario.title, "metric": scenario.metric,
            "lower_is_better": scenario.lower_is_better, "median": medians,
            "ratio_to_haproxy": {n: (medians[n] / base if base and medians[n] is not None else None)
                                 for n in names},
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
    print("(ratios: for p99 latency and RSS, lower is better)")
    idle_data = report["scenarios"].get("http_idle_rss")
    if idle_data:
        for n, runs in idle_data["samples"].items():
            last = runs[-1]
            print(f"  {n}: {last['connections']} idle connections; all processes: RSS "
                  f"{last['rss_before'] / (1 << 20):.1f} -> {last['rss_bytes'] / (1 << 20):.1f} MiB, "
                  f"PSS {last['pss_before'] / (1 << 20):.1f} -> {last['pss_bytes'] / (1 << 20):.1f} MiB")


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
    parser.add_argument("--plot", default="", help="also draw the ratios and latencies to this PNG")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.duration = 1, 2.0
    names = [n for n in args.contenders.split(",") if servers.available(n)]
    wanted = args.scenarios.split(",") if args.scenarios else [s.name for s in SCENARIOS]
    unknown = set(wanted) - {s.name for s in SCENARIOS}
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    chosen = [s for s in SCENARIOS if s.name in wanted]
    idle.raise_fd_limit(65536)
    servers.pin_cores(args.pin)
    report = Bench(args, names).run(chosen)
    print_table(report)
    out = Path(args.out) if args.out else \
        Path(__file__).parent / "results" / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\nresults: {out}")
    if args.plot:
        from .plot import plot
        plot(report, Path(args.plot))
        print(f"plot: {args.plot}")
    return 0
