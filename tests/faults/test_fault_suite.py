"""Faults: SIGKILLs of ingest, worker and Temporal and broker stalls during live episodes lose and duplicate nothing.

The schedule is drawn from a seed (``FAULTS_SEED`` to replay one; printed with the report).
"""

from __future__ import annotations

import os
import random
import sys

import fault_suite
import pytest

SIZES = fault_suite.Sizes(
    kills=10, kafka_resources=8, webhook_resources=3, span=40.0, settle_timeout=150.0
)


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_kills_and_stalls_lose_and_duplicate_nothing(tmp_path, capsys):
    """At least 10 SIGKILLs (ingest, worker, Temporal, ingest inside a Temporal outage) and broker stalls: every episode exists once, every step ran once, every page and ticket exists once and is resolved."""
    seed = int(os.environ.get("FAULTS_SEED") or random.SystemRandom().randrange(1, 10**6))
    outcome = await fault_suite.run(tmp_path, seed=seed, sizes=SIZES)
    report = outcome.text()
    with capsys.disabled():
        sys.stdout.write(f"\n{report}\n")
    assert outcome.run.kills >= 10, report
    assert outcome.kills_survived == outcome.run.kills, report
    assert outcome.verdict.episodes_checked >= SIZES.kafka_resources + SIZES.webhook_resources
    assert outcome.verdict.losses == [], report
    assert outcome.verdict.duplicates == [], report
    assert outcome.verdict.phantoms == [], report
