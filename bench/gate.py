"""CI performance gate: fastlb's ratio to HAProxy must not fall more than 15 % below the
ratio recorded in bench/baseline.json.

    python -m bench.gate              # measure, compare, exit 1 on a regression
    python -m bench.gate --record     # measure and write bench/baseline.json (commit it)

Ratios, not absolute figures, so the gate holds on a slower or noisier machine: both
proxies run on it in the same run, rounds alternating, the proxy alone on one core
(--pin).  A scenario below its floor is measured once more, and fails the gate only
if it is below again: one unlucky round on a shared CI machine is not a regression.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import idle, servers
from .run import SCENARIOS, Bench

BASELINE = Path(__file__).parent / "baseline.json"
GATED = ["tcp_keepalive", "tcp_conn_rate", "tcp_throughput_100mb", "http_keepalive", "http_close"]
TOLERANCE = 0.15


def measure(names: list[str], rounds: int, duration: float) -> dict:
    args = argparse.Namespace(workers=1, rounds=rounds, duration=duration)
    chosen = [s for s in SCENARIOS if s.name in names]
    report = Bench(args, ["fastlb", "haproxy"]).run(chosen)
    return {name: data["ratio_to_haproxy"]["fastlb"] for name, data in report["scenarios"].items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--record", action="store_true", help="write bench/baseline.json")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--baseline", default=str(BASELINE))
    args = parser.parse_args(argv)
    if not servers.available("haproxy"):
        print("bench.gate: haproxy is not installed; the gate needs it", file=sys.stderr)
        return 2
    idle.raise_fd_limit(65536)
    servers.pin_cores(True)
    ratios = measure(GATED, args.rounds, args.duration)
    if args.record:
        Path(args.baseline).write_text(json.dumps({
            "recorded": time.strftime("%Y-%m-%d"),
            "command": f"python -m bench.gate --record --rounds {args.rounds} "
                       f"--duration {args.duration:g}",
            "tolerance": TOLERANCE,
            "ratio_to_haproxy": {k: round(v, 3) for k, v in ratios.items()},
        }, indent=2) + "\n")
        print(f"\nbaseline written: {args.baseline}")
        return 0
    baseline = json.loads(Path(args.baseline).read_text())
    tolerance = baseline.get("tolerance", TOLERANCE)
    floors = {k: v * (1 - tolerance) for k, v in baseline["ratio_to_haproxy"].items()}
    below = [k for k in GATED if k in floors and ratios[k] < floors[k]]
    if below:
        print(f"\nbelow the floor: {', '.join(below)}; measuring them once more")
        again = measure(below, args.rounds, args.duration)
        for k in below:
            ratios[k] = max(ratios[k], again[k])
    failed = False
    print(f"\n{'scenario':<24}{'fastlb/haproxy':>16}{'baseline':>10}{'floor':>8}")
    for k in GATED:
        if k not in floors:
            print(f"{k:<24}{ratios[k]:>15.2f}x{'-':>10}{'-':>8}  (no baseline)")
            continue
        ok = ratios[k] >= floors[k]
        failed |= not ok
        print(f"{k:<24}{ratios[k]:>15.2f}x{baseline['ratio_to_haproxy'][k]:>9.2f}x"
              f"{floors[k]:>7.2f}x  {'ok' if ok else 'REGRESSION'}")
    if failed:
        print("\nperf gate: FAILED (fastlb fell more than "
              f"{tolerance:.0%} below its recorded ratio to HAProxy)")
        return 1
    print("\nperf gate: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
