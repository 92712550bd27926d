"""make soak: the fault suite with 50 kills over a longer workload; writes bench/results/faults.{json,md}."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import fault_suite
import pytest

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
SIZES = fault_suite.Sizes(
    kills=50, kafka_resources=40, webhook_resources=10, span=300.0, settle_timeout=300.0
)


@pytest.mark.soak
@pytest.mark.timeout(2400)
async def test_soak_fifty_kills_lose_and_duplicate_nothing(tmp_path, capsys):
    """At least 50 SIGKILLs and broker stalls over some 50 live episodes: no loss, no duplicate; the counts go to bench/results."""
    seed = int(os.environ.get("FAULTS_SEED") or random.SystemRandom().randrange(1, 10**6))
    outcome = await fault_suite.run(tmp_path, seed=seed, sizes=SIZES)
    fault_suite.write_results(RESULTS, [outcome])
    report = outcome.text()
    with capsys.disabled():
        sys.stdout.write(f"\n{report}\n")
    assert outcome.run.kills >= 50, report
    assert outcome.kills_survived == outcome.run.kills, report
    assert outcome.verdict.losses == [], report
    assert outcome.verdict.duplicates == [], report
    assert outcome.verdict.phantoms == [], report
