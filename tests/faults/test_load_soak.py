"""make soak: ten times the design load for ten minutes; memory stays flat, lag drains, p99 reported.

Writes bench/results/load.{json,md}. ``LOAD_MINUTES`` shortens the run while iterating.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import sys
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import fault_cluster
import load_driver
import pytest
import yaml
from kafka.admin import KafkaAdminClient, NewTopic

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
TOPIC = "load-cpu"
STREAM = "load-jobs"
TOKEN = "load-events-token"
DESIGN = load_driver.Load(kafka_per_second=200, webhooks_per_second=5, seconds=600)
FACTOR = 10
WARM_UP = 150.0
"""Seconds before memory counts as steady: every hot host (one every 6 s) has had an episode."""

RULES = f"""\
groups:
  - name: load
    rules:
      - name: CpuHot
        source: kafka
        stream: {TOPIC}
        match: labels.kind == 'cpu'
        when: body.cpu > 0.9
        for: 10s
        resource: host/{{{{ labels.host }}}}
        severity: warning
      - name: JobFailed
        source: webhook
        stream: {STREAM}
        match: labels.kind == 'job'
        when: body.status == 'failed'
        resource: job/{{{{ labels.job }}}}
        severity: warning
"""


def _load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


@contextlib.asynccontextmanager
async def _system(tmp_path: Path) -> AsyncIterator[tuple[str, fault_cluster.Homeostat]]:
    """A broker, a Temporal dev server and one ready ``homeostat up``: (bootstrap, process)."""
    folders = fault_cluster.Folders(tmp_path)
    (folders.rules / "load.yaml").write_text(RULES)
    broker = fault_cluster.Broker(folders.logs)
    temporal = fault_cluster.Temporal(folders.logs)
    homeostat = None
    try:
        broker.start()
        await temporal.start()
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        admin.create_topics([NewTopic(TOPIC, num_partitions=4, replication_factor=1)])
        admin.close()
        config = tmp_path / "homeostat.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "temporal": {"address": temporal.address, "task_queue": "load"},
                    "rules": {
                        "rules_dir": str(folders.rules),
                        "remediations_dir": str(folders.remediations),
                        "playbooks_dir": str(folders.playbooks),
                    },
                    "kafka": {
                        "bootstrap_servers": [broker.bootstrap],
                        "group_id": "load",
                        "session_timeout": "10s",
                    },
                    "webhooks": {"bearer_token": TOKEN},
                    "activities": {"state_dir": str(tmp_path / "runs")},
                }
            )
        )
        homeostat = fault_cluster.Homeostat("all", config=config, folder=folders.logs)
        homeostat.start()
        deadline = time.monotonic() + 120
        while not homeostat.ready():
            assert homeostat.alive(), homeostat.log_tail()
            assert time.monotonic() < deadline, homeostat.log_tail()
            await asyncio.sleep(0.5)
        yield broker.bootstrap, homeostat
    finally:
        if homeostat is not None:
            await asyncio.to_thread(homeostat.stop)
        await temporal.stop()
        broker.stop()


async def _offer(
    load: load_driver.Load, bootstrap: str, homeostat: fault_cluster.Homeostat
) -> tuple[load_driver.Tally, float, float | None]:
    """Offer ``load``, sampling the process; (tally, seconds offered, seconds to drain lag)."""
    assert homeostat.process is not None
    tally = load_driver.Tally()
    stop_sampling = asyncio.Event()
    stop_producing = threading.Event()
    sampler = asyncio.create_task(
        load_driver.sample(homeostat.process.pid, homeostat.api, tally, stop_sampling)
    )
    began = time.monotonic()
    producing = asyncio.to_thread(
        load_driver.produce, bootstrap, TOPIC, load, tally, stop_producing
    )
    try:
        await asyncio.gather(
            producing, load_driver.post_webhooks(homeostat.api, TOKEN, STREAM, load, tally)
        )
    finally:
        stop_producing.set()
    offered = time.monotonic() - began
    drain_began = time.monotonic()
    drained_after = None
    while time.monotonic() - drain_began < 120:
        lag = await asyncio.to_thread(load_driver.consumer_lag, homeostat.api)
        if lag == 0:
            drained_after = round(time.monotonic() - drain_began, 1)
            break
        await asyncio.sleep(1.0)
    await asyncio.sleep(5.0)  # one more sample after the drain
    stop_sampling.set()
    await sampler
    return tally, offered, drained_after


@pytest.mark.soak
@pytest.mark.timeout(3600)
async def test_ten_times_the_design_load_for_ten_minutes(tmp_path, capsys):
    """2,000 Kafka events/s and 50 webhook requests/s for 10 minutes: no 5xx, resident memory flat after warm-up, consumer lag back to zero within two minutes."""
    minutes = float(os.environ.get("LOAD_MINUTES") or DESIGN.seconds / 60)
    load = load_driver.Load(
        kafka_per_second=DESIGN.kafka_per_second * FACTOR,
        webhooks_per_second=DESIGN.webhooks_per_second * FACTOR,
        seconds=minutes * 60,
    )
    load_before = _load_average()
    async with _system(tmp_path) as (bootstrap, homeostat):
        tally, offered, drained_after = await _offer(load, bootstrap, homeostat)
    result = _result(
        load=load,
        tally=tally,
        offered_seconds=offered,
        drained_after=drained_after,
        load_average=(load_before, _load_average()),
    )
    _write(result)
    summary = {k: v for k, v in result.items() if k != "samples"}
    with capsys.disabled():
        sys.stdout.write("\n" + json.dumps(summary, indent=2) + "\n")
    failed = sum(n for status, n in tally.statuses.items() if status >= 500 or status == 0)
    assert failed == 0, result["webhooks"]["statuses"]
    assert drained_after is not None, "the consumer lag did not drain within 120 s"
    growth = result["rss"]["growth_percent"]
    assert growth is not None
    assert growth < 25, result["rss"]
    kafka_rate = result["kafka"]["achieved_per_second"]
    assert kafka_rate >= 0.8 * load.kafka_per_second, "the generator could not offer the load"


def _result(
    *,
    load: load_driver.Load,
    tally: load_driver.Tally,
    offered_seconds: float,
    drained_after: float | None,
    load_average: tuple[list[float], list[float]],
) -> dict:
    latencies = tally.latencies
    lags = [s.lag for s in tally.samples if not math.isnan(s.lag)]
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "design_load": {
            "kafka_events_per_second": DESIGN.kafka_per_second,
            "webhook_requests_per_second": DESIGN.webhooks_per_second,
        },
        "factor": FACTOR,
        "seconds": round(offered_seconds, 1),
        "kafka": {
            "offered_per_second": load.kafka_per_second,
            "produced": tally.produced,
            "produce_errors": tally.produce_errors,
            "achieved_per_second": round(tally.produced / max(offered_seconds, 1e-6), 1),
            "lag_max": max(lags, default=None),
            "lag_drained_after_seconds": drained_after,
        },
        "webhooks": {
            "offered_per_second": load.webhooks_per_second,
            "requests": tally.requests,
            "achieved_per_second": round(tally.requests / max(offered_seconds, 1e-6), 1),
            "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
            "latency_ms": {
                "p50": round(1000 * load_driver.percentile(latencies, 0.50), 1),
                "p90": round(1000 * load_driver.percentile(latencies, 0.90), 1),
                "p99": round(1000 * load_driver.percentile(latencies, 0.99), 1),
                "max": round(1000 * max(latencies, default=float("nan")), 1),
            },
        },
        "episodes_offered": len(tally.hot_hosts) + tally.requests // load_driver.FAILED_EVERY,
        "rss": load_driver.rss_growth(tally.samples, warm_up=min(WARM_UP, load.seconds / 3)),
        "cpu_percent_median": (
            round(sorted(s.cpu_percent for s in tally.samples)[len(tally.samples) // 2], 1)
            if tally.samples
            else None
        ),
        "load_average": {"before": load_average[0], "after": load_average[1]},
        "samples": [vars(s) for s in tally.samples],
    }


def _write(result: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "load.json").write_text(json.dumps(result, indent=2) + "\n")
    kafka, hooks, rss = result["kafka"], result["webhooks"], result["rss"]
    lines = [
        "# Load (make soak)",
        "",
        (
            f"Run {result['when']} by tests/faults/test_load_soak.py: one `homeostat up` process "
            "(ingest and worker) against the Temporal dev server and a Tansu broker, at "
            f"{result['factor']}x the design load of {result['design_load']['kafka_events_per_second']} "
            f"Kafka events/s and {result['design_load']['webhook_requests_per_second']} webhook "
            f"requests/s, for {result['seconds']} s. Load average before/after: "
            f"{result['load_average']['before']} / {result['load_average']['after']} (2 cores, "
            "shared with other work: figures are distorted by contention)."
        ),
        "",
        "| | offered/s | achieved/s | total | notes |",
        "| --- | ---: | ---: | ---: | --- |",
        (
            f"| Kafka events | {kafka['offered_per_second']} | {kafka['achieved_per_second']} | "
            f"{kafka['produced']} | lag max {kafka['lag_max']}, drained "
            f"{kafka['lag_drained_after_seconds']} s after the load stopped |"
        ),
        (
            f"| webhook requests | {hooks['offered_per_second']} | {hooks['achieved_per_second']} "
            f"| {hooks['requests']} | statuses {hooks['statuses']}; latency p50 "
            f"{hooks['latency_ms']['p50']} ms, p90 {hooks['latency_ms']['p90']} ms, p99 "
            f"{hooks['latency_ms']['p99']} ms, max {hooks['latency_ms']['max']} ms |"
        ),
        "",
        (
            f"Resident memory after a {WARM_UP:.0f} s warm-up: {rss['first_mib']} MiB -> "
            f"{rss['last_mib']} MiB ({rss['growth_percent']}%, slope {rss['slope_mib_per_min']} "
            f"MiB/min). Median CPU {result['cpu_percent_median']}% of one core."
        ),
        "",
        "| s | RSS MiB | CPU % | consumer lag | Kafka events sent | webhook requests |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    samples = result["samples"]
    step = max(1, len(samples) // 24)
    lines.extend(
        f"| {sample['at']} | {sample['rss_mib']} | {sample['cpu_percent']} | "
        f"{sample['lag']:.0f} | {sample['produced']} | {sample['requests']} |"
        for sample in samples[::step]
    )
    (RESULTS / "load.md").write_text("\n".join(lines) + "\n")
