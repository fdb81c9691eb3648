"""What balancing costs: HTTP keep-alive requests/s through a 4-server backend with

    roundrobin           the precomputed order, one atomic position per backend
    roundrobin+maxconn   the same, plus each server's current sessions kept in the
                         shared atomic counters (a maxconn that is never reached)
    leastconn            reads every server's shared count on each pick

    python -m bench.lbcost [--rounds 3] [--duration 3] [--pin]

All four servers are the same nginx origin, so only the proxy's choosing differs.
fastlb and HAProxy run the same configs in alternating rounds; each variant is reported
as its req/s ratio to plain roundrobin on the same proxy (and fastlb/HAProxy per row).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from . import idle, servers
from .run import Scenario, run_wrk

VARIANTS = {
    "roundrobin": ("roundrobin", ""),
    "roundrobin+maxconn": ("roundrobin", " maxconn 100000"),
    "leastconn": ("leastconn", ""),
}
SCENARIO = Scenario("lb_cost", "HTTP keep-alive, 4 servers", "/small", 32, False, "rps", "http")


def backend_lines(origin: int, algo: str, server_options: str) -> str:
    servers = "".join(f"    server s{i} 127.0.0.1:{origin}{server_options}\n" for i in range(1, 5))
    return f"    balance {algo}\n{servers}"


def measure(name: str, workdir: Path, origin: int, variant: str, duration: float) -> float:
    start = servers.start_haproxy if name == "haproxy" else servers.start_fastlb
    proxy = start(workdir, origin, 1, "http", backend=backend_lines(origin, *VARIANTS[variant]))
    try:
        run_wrk(proxy.port, SCENARIO, min(1.0, duration))          # warm-up
        return run_wrk(proxy.port, SCENARIO, duration)["rps"]
    finally:
        proxy.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lbcost", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--pin", action="store_true")
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    names = [n for n in ("fastlb", "haproxy") if servers.available(n)]
    idle.raise_fd_limit(65536)
    servers.pin_cores(args.pin)
    workdir = Path(tempfile.mkdtemp(prefix="fastlb-lbcost-"))
    origin = servers.start_origin(workdir)
    samples = {n: {v: [] for v in VARIANTS} for n in names}
    try:
        for round_no in range(args.rounds):
            for variant in VARIANTS:
                for name in (names if round_no % 2 == 0 else names[::-1]):
                    rps = measure(name, workdir, origin.port, variant, args.duration)
                    samples[name][variant].append(rps)
                    print(f"  round {round_no + 1} {variant:<20} {name:<8} {rps:>12,.0f} req/s",
                          flush=True)
    finally:
        origin.stop()
    median = {n: {v: statistics.median(s) for v, s in per.items()} for n, per in samples.items()}
    print(f"\n{'variant':<22}" + "".join(f"{n + ' req/s':>16}{'vs rr':>8}" for n in names) +
          ("   fastlb/haproxy" if len(names) == 2 else ""))
    for variant in VARIANTS:
        row = f"{variant:<22}"
        for n in names:
            row += f"{median[n][variant]:>16,.0f}{median[n][variant] / median[n]['roundrobin']:>8.3f}"
        if len(names) == 2:
            row += f"{median['fastlb'][variant] / median['haproxy'][variant]:>17.3f}"
        print(row)
    out = Path(args.out) if args.out else \
        Path(__file__).parent / "results" / f"lbcost-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "rounds": args.rounds,
                               "duration_s": args.duration, "pinned": args.pin,
                               "median_rps": median, "samples": samples}, indent=2))
    print(f"\nresults: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
