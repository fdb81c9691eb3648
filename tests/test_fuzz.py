"""The differential fuzzer's CI slice: a seeded, bounded run of tests/fuzz against fastlb
and haproxy (python -m tests.fuzz --cases N runs more)."""
from __future__ import annotations

import asyncio
import os
import shutil

import pytest

from fuzz.runner import run

CASES = int(os.environ.get("FASTLB_FUZZ_CASES", "3000"))


@pytest.mark.timeout(600)
def test_fuzz_slice_no_desync_no_injection_no_death():
    report = asyncio.run(run(CASES, seed=20261201, with_haproxy=shutil.which("haproxy") is not None))
    print(report.summary())
    assert report.cases == CASES
    assert report.failures == [], report.failures[:5]
    assert report.worker_deaths == 0
    assert report.failed_followups == 0
    # the slice must exercise both verdicts: requests forwarded, and inputs refused
    assert report.fastlb_forwarded > CASES // 10
    assert report.kinds["mutated"] > CASES // 4
