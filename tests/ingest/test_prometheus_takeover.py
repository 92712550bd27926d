"""A restarted poller takes over the open episodes before its rebuild, against a real Prometheus: a series hot since before the lookback sends no second episode, and its all-clear resolves the first."""

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
from controller.rules import engine, loader

RULES = """\
groups:
  - name: poll
    interval: 1s
    rules:
      - name: HotDisk
        expr: takeover_disk > 0.9
        for: 1s
        resource: service/{{ labels.service }}
"""


def _poller(rule_set, url, recorder, *, took_over=None):
    """A poller with a new engine; ``took_over`` are the open episodes its workflows hold."""
    eng = engine.Engine(rule_set)

    async def prepare(names):
        eng.take_over(took_over, rules=set(names))

    return prometheus.PrometheusPoller(
        rules=[
            prometheus.PolledRule(
                name=r.name,
                expr=r.expr,
                interval=timedelta(seconds=1),
                lookback=r.hold + r.keep_firing_for,
            )
            for r in rule_set.rules.values()
        ],
        querier=promql.Client(url, timeout=timedelta(seconds=2)),
        engine=eng,
        pipe=pipeline.Pipeline(engine=eng, dispatcher=dispatch.Dispatcher(recorder)),
        clock=lambda: datetime.now(UTC),
        retry_initial=timedelta(milliseconds=100),
        prepare=prepare if took_over is not None else None,
    )


async def _until(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return False


async def _stop(task):
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.timeout(120)
async def test_a_restart_after_the_lookback_keeps_the_episode_and_its_all_clear(
    prometheus_factory, tmp_path
):
    """Hot for longer than the 1 s lookback when the poller restarts: the rebuild sends nothing, and the all-clear resolves the episode fired before the restart."""
    registry = prometheus_client.CollectorRegistry()
    disk = prometheus_client.Gauge("takeover_disk", "Disk.", ["service"], registry=registry)
    disk.labels(service="web").set(0.95)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "poll.yaml").write_text(textwrap.dedent(RULES))
    rule_set = loader.load_rule_set(tmp_path / "rules", known_remediations=None)
    with prometheus_harness.exporter(registry) as port:
        server = prometheus_factory(
            config={
                "global": {"scrape_interval": "1s"},
                "scrape_configs": [
                    {"job_name": "svc", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
                ],
            }
        )
        first = Recorder()
        task = asyncio.create_task(_poller(rule_set, server.url, first).run())
        try:
            assert await _until(lambda: first.sent, timeout=60)
        finally:
            await _stop(task)
        [fired] = first.sent
        await asyncio.sleep(4)  # the episode began well before what a rebuild reads
        memo = transitions.OpenEpisode(
            rule=fired.rule,
            resource=fired.resource,
            episode=fired.episode,
            started_at=fired.started_at,
        )
        second = Recorder()
        task = asyncio.create_task(_poller(rule_set, server.url, second, took_over=[memo]).run())
        try:
            await asyncio.sleep(3)
            assert second.sent == []
            disk.labels(service="web").set(0.1)
            assert await _until(lambda: second.sent, timeout=60)
        finally:
            await _stop(task)
    assert [(t.kind, t.episode) for t in second.sent] == [
        (transitions.TransitionKind.RESOLVED, fired.episode)
    ]
