"""`rules backtest` on real components: a week in a real Prometheus, a day on a real Kafka topic.

The backtest must find exactly the episodes the live engine finds on the same data (the
live engine fed as ingest feeds it: an instant query per evaluation time, the real Kafka
consumer), including the plan's cooldown and budget refusals, and `--against` on a changed
threshold must list exactly the episodes the threshold adds or removes.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import kafka as kafka_python
import pytest
from typer.testing import CliRunner

from controller import cli, dispatch
from controller.backtest import policy, replay
from controller.backtest import run as backtest_run
from controller.ingest import kafka, pipeline, promql
from controller.plans import bundle
from controller.rules import engine, sandbox

runner = CliRunner()
START = datetime(2026, 3, 2, tzinfo=UTC)
WEEK = timedelta(days=7)
STEP = timedelta(minutes=5)
HOSTS = ("h1", "h2", "h3")

RULES = """\
groups:
  - name: hosts
    interval: 10m
    rules:
      - name: HostLoadHigh
        expr: load > 0.8
        for: 20m
        resource: host/{{ labels.host }}
        remediation: restart
  - name: services
    rules:
      - name: ErrorsHigh
        source: kafka
        stream: TOPIC
        match: labels.type == 'errors'
        when: body.rate > 5
        for: 4m
        stale_after: 10m
        resource: service/{{ labels.service }}
        remediation: restart
"""
PLAN = """\
description: restart, at most twice a day and not within two hours of the last
cooldown: 2h
budget: {runs: 2, per: 1d}
concurrency: skip
steps:
  - wait: 1s
escalation:
  - page: "{{ rule }} on {{ resource }} needs a person"
"""


def _load(host_index: int, index: int) -> float:
    """0.95 for an hour every 4 hours (shifted per host); every third cycle also 0.85 for 40m."""
    minute = index * 5 + host_index * 40
    phase = minute % 240
    if phase < 60:
        return 0.95
    if 120 <= phase < 160 and (minute // 240) % 3 == 0:
        return 0.85
    return 0.2


def _error_rate(service_index: int, index: int) -> float:
    minute = index * 2 + service_index * 30
    return 9.0 if minute % 180 < 20 else 1.0


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, kafka_bootstrap):
    """A week of 5-minute `load` series in a real Prometheus and a day of events on a topic."""
    folder = tmp_path_factory.mktemp("backtest")
    topic = f"errors-{uuid.uuid4().hex[:8]}"
    for name in ("rules", "remediations", "playbooks"):
        (folder / name).mkdir()
    (folder / "rules" / "rules.yaml").write_text(RULES.replace("TOPIC", topic))
    (folder / "remediations" / "restart.yaml").write_text(PLAN)
    points = int(WEEK / STEP)
    box = sandbox.Sandbox()
    box.start()
    try:
        box.write(
            sandbox.Points(
                labels={"__name__": "load", "host": host},
                points=tuple(
                    (int((START + STEP * index).timestamp() * 1000), _load(number, index))
                    for index in range(points)
                ),
            )
            for number, host in enumerate(HOSTS)
        )
        producer = kafka_python.KafkaProducer(bootstrap_servers=[kafka_bootstrap])
        day_start = START + timedelta(days=6)
        for index in range(int(timedelta(days=1) / timedelta(minutes=2))):
            at = day_start + timedelta(minutes=2) * index
            for number, service in enumerate(("api", "web")):
                event = {"type": "errors", "service": service, "rate": _error_rate(number, index)}
                producer.send(
                    topic,
                    key=service.encode(),
                    value=json.dumps(event).encode(),
                    timestamp_ms=int(at.timestamp() * 1000),
                )
        producer.flush()
        producer.close()
        yield {"folder": folder, "prometheus": box.url, "topic": topic}
    finally:
        box.stop()


def _sources(folder: Path) -> bundle.Sources:
    return bundle.Sources(
        rules=(folder / "rules",),
        remediations=folder / "remediations",
        playbooks=folder / "playbooks",
    )


def _window(recorded, kafka_bootstrap, **more) -> backtest_run.Window:
    return backtest_run.Window(
        start=START,
        end=START + WEEK,
        prometheus=recorded["prometheus"],
        bootstrap_servers=(kafka_bootstrap,),
        topics=(recorded["topic"],),
        **more,
    )


def _live_prometheus(rule_set, url: str) -> list:
    """The live poller's way: one instant query per evaluation time, on the rule's grid."""
    client = promql.Client(url)
    eng = engine.Engine(rule_set)
    found = []
    rule = rule_set.rules["HostLoadHigh"]
    at = START
    while at <= START + WEEK:
        found += eng.evaluate(rule.name, at, client.instant(rule.expr or "", at=at))
        at += timedelta(minutes=10)
    return found


class _Recorder:
    def __init__(self) -> None:
        self.sent: list = []

    async def __call__(self, resource, batch) -> None:
        del resource
        self.sent += batch


async def _live_kafka(rule_set, bootstrap: str, topic: str) -> list:
    """The real Kafka source and pipeline, ticking at the consumer's watermark like ingest."""
    eng = engine.Engine(rule_set)
    recorder = _Recorder()
    pipe = pipeline.Pipeline(engine=eng, dispatcher=dispatch.Dispatcher(recorder))
    end = START + WEEK
    source = kafka.KafkaSource(
        config=kafka.KafkaConfig(
            bootstrap_servers=(bootstrap,),
            topics=(topic,),
            group_id=f"live-{uuid.uuid4().hex[:8]}",
            max_poll_interval=timedelta(seconds=10),
            session_timeout=timedelta(seconds=10),
        ),
        pipe=pipe,
        loop=asyncio.get_running_loop(),
        clock=lambda: end,
    )
    thread, stop = kafka.start_thread(source)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if source.watermark is not None:
                await pipe.tick(min(end, source.watermark))
                if source.watermark >= end:
                    break
            await asyncio.sleep(0.1)
        await pipe.tick(end)
        await pipe.dispatcher.close()
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, 30)
    return recorder.sent


@pytest.mark.timeout(240)
async def test_backtest_finds_the_live_engines_episodes_with_cooldown_and_budget(
    recorded, kafka_bootstrap
):
    """A week of Prometheus and a day of Kafka: the backtest's episodes are the live engine's, and the plan's cooldown and budget refuse the same ones."""
    sources = _sources(recorded["folder"])
    window = _window(recorded, kafka_bootstrap)
    result = await asyncio.to_thread(backtest_run.backtest, sources, window)
    rule_set = result.loaded.rule_set
    live = await asyncio.to_thread(_live_prometheus, rule_set, recorded["prometheus"])
    live += await _live_kafka(rule_set, kafka_bootstrap, recorded["topic"])
    live_episodes = replay.episodes_of(
        sorted(live, key=lambda item: (item.at, item.kind != "fired")), rule_set.rules
    )

    def spans(episodes):
        return sorted((item.id, item.start, item.end) for item in episodes)

    assert spans(result.run.episodes) == spans(live_episodes)
    by_rule = {rule: [e for e in result.run.episodes if e.rule == rule] for rule in rule_set.rules}
    assert len(by_rule["HostLoadHigh"]) >= 30
    assert len(by_rule["ErrorsHigh"]) >= 10
    live_decisions = policy.decide(
        live_episodes, result.loaded.plans, remediation_time=window.remediation_time
    )
    assert live_decisions == result.decisions
    actions = {decision.suppressed_by for decision in result.decisions.values()}
    assert {"", "cooldown", "budget"} <= actions
    escalated = [d for d in result.decisions.values() if d.action is policy.Action.ESCALATE]
    assert escalated, "refused episodes escalate: the plan has a page rung"


@pytest.mark.timeout(240)
def test_against_a_changed_threshold_lists_exactly_the_added_and_removed(recorded, tmp_path):
    """Lowering the threshold below 0.85 adds exactly the 0.85 episodes; `--against` lists them and nothing else."""
    lower = tmp_path / "lower"
    for name in ("rules", "remediations", "playbooks"):
        (lower / name).mkdir(parents=True)
    text = (recorded["folder"] / "rules" / "rules.yaml").read_text()
    (lower / "rules" / "rules.yaml").write_text(text.replace("load > 0.8", "load > 0.9"))
    (lower / "remediations" / "restart.yaml").write_text(PLAN)
    args = [
        "rules",
        "backtest",
        str(recorded["folder"] / "rules"),
        "--from",
        START.isoformat(),
        "--to",
        (START + WEEK).isoformat(),
        "--prometheus",
        recorded["prometheus"],
        "--against",
        str(lower / "rules"),
        "--json",
    ]
    result = runner.invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    differences = report["against"]["differences"]
    window = backtest_run.Window(start=START, end=START + WEEK, prometheus=recorded["prometheus"])
    strict_ids = {item.id for item in backtest_run.backtest(_sources(lower), window).run.episodes}
    loose = [item for item in report["episodes"] if item["rule"] == "HostLoadHigh"]
    loose_ids = {item["episode"] for item in loose}
    added = sorted((d["resource"], d["after"]["start"]) for d in differences)
    assert added, "the 0.85 stretches fire only with the lower threshold"
    assert {d["change"] for d in differences} == {"added"}
    assert strict_ids < loose_ids
    assert added == sorted(
        (item["resource"], item["start"]) for item in loose if item["episode"] not in strict_ids
    )
    assert all(d["rule"] == "HostLoadHigh" for d in differences)
