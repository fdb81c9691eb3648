"""python -m tests.fuzz --cases N [--seed S] [--no-haproxy]: the differential fuzzer.

Prints a summary (cases, what each proxy forwarded, where they disagree) and every failing
case with its seed; exits 1 when fastlb desynced, injected, forwarded what haproxy refused,
lost a worker or failed a follow-up request.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time

from .runner import run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz")
    parser.add_argument("--cases", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-haproxy", action="store_true")
    args = parser.parse_args()
    started = time.monotonic()

    shown = [0]

    def progress(report):
        print(f"[{time.monotonic() - started:7.1f}s] {report.cases} cases, "
              f"{len(report.failures)} failures, {report.worker_deaths} worker deaths",
              flush=True)
        for seed, kind, data, problems, _ in report.failures[shown[0]:]:
            print(f"    seed {seed} ({kind}): {problems}\n        {data!r}", flush=True)
        shown[0] = len(report.failures)

    report = asyncio.run(run(args.cases, args.seed, not args.no_haproxy, progress=progress))
    print(report.summary())
    print(f"logs in {report.workdir}; {time.monotonic() - started:.1f} s")
    bad = report.failures or report.worker_deaths or report.failed_followups
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
