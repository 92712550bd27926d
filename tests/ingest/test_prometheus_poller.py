"""The Prometheus poller against a real Prometheus scraping a gauge the test controls."""

import asyncio
import textwrap
import time
from datetime import UTC, datetime, timedelta

import prometheus_client
import pytest
from harness import prometheus as prometheus_harness
from poller_support import Recorder

from controller import dispatch
from controller.domain import transitions
from controller.ingest import pipeline, prometheus, promql
from controller.observability import metrics as metrics_module
from controller.rules import engine, loader

RULES = """\
groups:
  - name: poll
    interval: 1s
    rules:
      - name: HotCpu
        expr: poll_cpu > 0.9
        for: 10s
        resource: service/{{ labels.service }}
"""


@pytest.fixture
def gauge():
    registry = prometheus_client.CollectorRegistry()
    cpu = prometheus_client.Gauge("poll_cpu", "CPU.", ["service"], registry=registry)
    cpu.labels(service="web").set(0.1)
    with prometheus_harness.exporter(registry) as port:
        yield cpu.labels(service="web"), port


@pytest.fixture
def rule_set(tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "poll.yaml").write_text(textwrap.dedent(RULES))
    return loader.load_rule_set(tmp_path / "rules", known_remediations=None)


def _poller(rule_set, url, recorder, metrics=None):
    eng = engine.Engine(rule_set)
    pipe = pipeline.Pipeline(engine=eng, dispatcher=dispatch.Dispatcher(recorder))
    polled = [
        prometheus.PolledRule(
            name=r.name,
            expr=r.expr,
            interval=timedelta(seconds=1),
            lookback=r.hold + r.keep_firing_for,
        )
        for r in rule_set.rules.values()
    ]
    return prometheus.PrometheusPoller(
        rules=polled,
        querier=promql.Client(url, timeout=timedelta(seconds=2)),
        engine=eng,
        pipe=pipe,
        clock=lambda: datetime.now(UTC),
        metrics=metrics,
        retry_initial=timedelta(milliseconds=100),
    )


async def _until(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return False


def _fired(recorder):
    return [t for t in recorder.sent if t.kind is transitions.TransitionKind.FIRED]


@pytest.mark.timeout(90)
async def test_a_restart_half_way_through_for_still_fires_on_time(
    prometheus_factory, gauge, rule_set
):
    """Held above threshold for `for`, one episode starts; a restart at half-time does not delay it by a full `for`."""
    cpu, port = gauge
    server = prometheus_factory(
        config={
            "global": {"scrape_interval": "1s"},
            "scrape_configs": [
                {"job_name": "svc", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
            ],
        }
    )
    first = Recorder()
    poller = _poller(rule_set, server.url, first)
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(3)
    went_high = datetime.now(UTC)
    cpu.set(0.95)
    await asyncio.sleep(5)
    task.cancel()  # "restart": a new engine and poller with no state
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _fired(first) == []
    second = Recorder()
    task = asyncio.create_task(_poller(rule_set, server.url, second).run())
    try:
        assert await _until(lambda: _fired(second), timeout=30)
    finally:
        task.cancel()
    fired = _fired(second)
    assert len(fired) == 1
    assert fired[0].resource == "service/web"
    # Exactly `for` after the first evaluation that saw the series, on the 1 s grid; a
    # `for` counted from the restart would be 5 s or more later.
    client = promql.Client(server.url)
    start = prometheus.align(went_high - timedelta(seconds=2), timedelta(seconds=1))
    series = client.range(
        "poll_cpu > 0.9", start=start, end=fired[0].started_at, step=timedelta(seconds=1)
    )
    first_true = min(at for one in series for at, _ in one.points)
    assert fired[0].started_at - first_true == timedelta(seconds=10)


@pytest.mark.timeout(90)
async def test_an_unreachable_prometheus_never_resolves(prometheus_factory, gauge, rule_set):
    """While Prometheus is down the episode stays open, and the failed queries are counted."""
    cpu, port = gauge
    cpu.set(0.95)
    server = prometheus_factory(
        config={
            "global": {"scrape_interval": "1s"},
            "scrape_configs": [
                {"job_name": "svc", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
            ],
        }
    )
    recorder = Recorder()
    metrics = metrics_module.create()
    task = asyncio.create_task(_poller(rule_set, server.url, recorder, metrics).run())
    try:
        assert await _until(lambda: _fired(recorder), timeout=30)
        server.process.stop()
        await asyncio.sleep(5)
        assert [t.kind for t in recorder.sent] == [transitions.TransitionKind.FIRED]
        errors = metrics.registry.get_sample_value(
            "homeostat_source_errors_total", {"source": "prometheus"}
        )
        assert errors is not None
        assert errors >= 3
    finally:
        task.cancel()
