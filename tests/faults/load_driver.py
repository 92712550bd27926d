"""Load at ten times the design load: Kafka events and webhook requests for minutes on end.

Design load (docs/operations.md, "Design load"): 200 Kafka events per second (1,000 hosts
sending a sample every 5 s) and 5 webhook requests per second, with about one episode a
minute. ``make soak`` drives ten times that, 2,000 events/s and 50 requests/s, with ten
episodes a minute (a fixed set of hosts taking turns, so the live state stops growing
after the warm-up), at one ``homeostat up`` process (ingest and worker) for ten minutes,
and samples, every few seconds, the process's resident memory and CPU, and the consumer
lag it reports in /metrics. Afterwards it waits for the lag to drain.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from kafka import KafkaProducer

HOSTS = 1000
HOT_HOSTS = 20
"""The hosts that take turns running hot: a fixed set, so that once each has had an episode
the live state (engine conditions, resource workflows in the worker's cache) stops growing
and any later growth of memory is a leak."""
JOBS = 200
HOT_EVERY = 6.0
"""Seconds between two hosts going hot (ten a minute): each makes one episode."""
HOT_FOR = 20.0
FAILED_EVERY = 300
"""One webhook request in this many reports a failed job (ten episodes a minute at 50/s)."""


@dataclass(frozen=True, kw_only=True)
class Load:
    """The offered load."""

    kafka_per_second: float
    webhooks_per_second: float
    seconds: float


@dataclass
class Sample:
    """One look at the process."""

    at: float
    rss_mib: float
    cpu_percent: float
    lag: float
    produced: int
    requests: int


@dataclass
class Tally:
    """What the generators did and saw."""

    produced: int = 0
    produce_errors: int = 0
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    hot_hosts: list[str] = field(default_factory=list)


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` in MiB (0 when it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of ``pid`` so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def consumer_lag(api: str) -> float:
    """The sum of ``homeostat_kafka_consumer_lag`` over partitions, from /metrics."""
    try:
        text = httpx.get(f"{api}/metrics", timeout=5).text
    except httpx.HTTPError:
        return float("nan")
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("homeostat_kafka_consumer_lag{")
    )


def produce(bootstrap: str, topic: str, load: Load, tally: Tally, stop: threading.Event) -> None:
    """Send ``load.kafka_per_second`` events, paced every 50 ms, until the time is up."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    began = time.monotonic()
    sent = 0
    try:
        while not stop.is_set():
            elapsed = time.monotonic() - began
            if elapsed >= load.seconds:
                break
            due = int(elapsed * load.kafka_per_second)
            now = datetime.now(UTC).isoformat()
            hot = int(elapsed // HOT_EVERY)
            while sent < due:
                host = sent % HOSTS
                # Host ``hot`` (of the current slot) runs hot for HOT_FOR seconds.
                is_hot = any(
                    host == slot % HOT_HOSTS and elapsed - slot * HOT_EVERY < HOT_FOR
                    for slot in range(max(0, hot - 4), hot + 1)
                )
                event = {"timestamp": now, "kind": "cpu", "host": f"h{host}"}
                event["cpu"] = 0.97 if is_hot else 0.3
                try:
                    producer.send(topic, key=f"h{host}".encode(), value=json.dumps(event).encode())
                except Exception:  # noqa: BLE001 - counted: the report says how many failed
                    tally.produce_errors += 1
                sent += 1
            tally.produced = sent
            tally.hot_hosts = [f"host/h{slot % HOT_HOSTS}" for slot in range(hot + 1)]
            time.sleep(0.05)
        producer.flush(timeout=30)
    finally:
        producer.close(timeout=10)


async def post_webhooks(api: str, token: str, stream: str, load: Load, tally: Tally) -> None:
    """Send ``load.webhooks_per_second`` requests, each timed, from a few concurrent senders."""
    began = time.monotonic()
    interval = 1.0 / load.webhooks_per_second
    counter = 0
    headers = {"Authorization": f"Bearer {token}"}

    async def sender(http: httpx.AsyncClient, lane: int, lanes: int) -> None:
        nonlocal counter
        n = lane
        while True:
            due = began + n * interval
            if due - began >= load.seconds:
                return
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            counter += 1
            # One request in FAILED_EVERY reports a failed job: an episode, which the
            # job's next (successful) request ends.
            event = {
                "timestamp": datetime.now(UTC).isoformat(),
                "kind": "job",
                "job": f"j{n % JOBS}",
                "status": "failed" if n % FAILED_EVERY == 0 else "ok",
            }
            started = time.perf_counter()
            try:
                answer = await http.post(f"{api}/v1/events/{stream}", json=event, headers=headers)
                status = answer.status_code
            except httpx.HTTPError:
                status = 0
            tally.latencies.append(time.perf_counter() - started)
            tally.statuses[status] += 1
            tally.requests += 1
            n += lanes

    lanes = 8
    async with httpx.AsyncClient(timeout=30) as http:
        await asyncio.gather(*(sender(http, lane, lanes) for lane in range(lanes)))


async def sample(
    pid: int, api: str, tally: Tally, stop: asyncio.Event, *, every: float = 5.0
) -> None:
    """Record RSS, CPU and lag every ``every`` seconds until ``stop``."""
    began = time.monotonic()
    last_cpu, last_at = cpu_seconds(pid), began
    while not stop.is_set():
        await asyncio.sleep(every)
        now = time.monotonic()
        cpu = cpu_seconds(pid)
        lag = await asyncio.to_thread(consumer_lag, api)
        tally.samples.append(
            Sample(
                at=round(now - began, 1),
                rss_mib=round(rss_mib(pid), 1),
                cpu_percent=round(100 * (cpu - last_cpu) / max(now - last_at, 1e-6), 1),
                lag=lag,
                produced=tally.produced,
                requests=tally.requests,
            )
        )
        last_cpu, last_at = cpu, now


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``, nearest rank."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def rss_growth(samples: list[Sample], *, warm_up: float) -> dict[str, Any]:
    """Resident memory after warm-up: first and last minute's medians, and the slope."""
    steady = [s for s in samples if s.at >= warm_up and s.rss_mib > 0]
    if len(steady) < 4:
        return dict.fromkeys(("first_mib", "last_mib", "growth_percent", "slope_mib_per_min"))
    window = max(2, len(steady) // 8)
    first = statistics.median(s.rss_mib for s in steady[:window])
    last = statistics.median(s.rss_mib for s in steady[-window:])
    xs = [s.at / 60 for s in steady]
    ys = [s.rss_mib for s in steady]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / max(
        sum((x - mean_x) ** 2 for x in xs), 1e-9
    )
    return {
        "first_mib": round(first, 1),
        "last_mib": round(last, 1),
        "growth_percent": round(100 * (last - first) / first, 1),
        "slope_mib_per_min": round(slope, 2),
    }
