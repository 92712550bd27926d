"""Webhook events wait until the engine is seeded with the open episodes; other sources do not, and a defect in reading never holds them for good."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import Client

from controller import assembly, dispatch, errors
from controller.domain import observations, resources, transitions
from controller.ingest import pipeline, seeding
from controller.observability import metrics as metrics_module
from controller.operations import open_episodes
from controller.rules import engine, loader
from controller.workflows import converter

RULES = """\
groups:
  - name: mixed
    rules:
      - name: JobFailed
        source: webhook
        match: labels.kind == 'job'
        when: body.status == 'failed'
        resource: job/{{ labels.job }}
      - name: Hot
        source: kafka
        stream: temps
        match: labels.kind == 'temp'
        when: body.celsius > 80
        resource: host/{{ labels.host }}
"""


def _job(name: str, status: str) -> observations.Observation:
    return observations.Observation(
        source=observations.SourceKind.WEBHOOK,
        stream="default",
        at=datetime.now(UTC),
        labels={"kind": "job", "job": name},
        body={"status": status},
    )


def _evaluations(eng: engine.Engine, rule: str) -> int:
    return next(counts.evaluations for counts in eng.rule_counts() if counts.rule == rule)


async def _pipe(tmp_path, address, seeder_of):
    (tmp_path / "rules.yaml").write_text(RULES)
    eng = engine.Engine(loader.load_rule_set(tmp_path, known_remediations=None))
    metrics = metrics_module.create()
    seeder = seeder_of(eng, metrics)
    client = await Client.connect(address, data_converter=converter.DATA_CONVERTER)
    pipe = pipeline.Pipeline(
        engine=eng,
        dispatcher=dispatch.Dispatcher(assembly.temporal_sender(client, "seeding-q")),
        hold=seeder.hold,
    )
    return eng, metrics, seeder, pipe


@pytest.mark.timeout(60)
async def test_webhook_events_wait_for_the_open_episodes_and_kafka_events_do_not(
    tmp_path, temporal_dev_server
):
    """While Temporal cannot be read, an all-clear webhook is refused after its deadline with nothing evaluated and /readyz's reason names the failure, a Kafka event goes through; once read, the held all-clear resolves the episode read."""
    job = f"backup-{uuid.uuid4().hex[:6]}"
    resource = resources.ResourceKey(f"job/{job}")
    started = datetime.now(UTC) - timedelta(minutes=1)
    episode = transitions.OpenEpisode(
        rule="JobFailed",
        resource=resource,
        episode=transitions.episode_id(rule="JobFailed", resource=resource, started_at=started),
        started_at=started,
    )
    answers = asyncio.Event()

    async def read() -> open_episodes.OpenEpisodes:
        if not answers.is_set():
            raise errors.DependencyError("cannot reach Temporal at 127.0.0.1:1")
        return open_episodes.OpenEpisodes(episodes=(episode,), resources=1, unlisted=0)

    def seeder_of(eng, metrics):
        return seeding.Seeder(
            read=read,
            engine=eng,
            clock=lambda: datetime.now(UTC),
            counter=metrics.seeded_episodes,
        )

    eng, metrics, seeder, pipe = await _pipe(tmp_path, temporal_dev_server.address, seeder_of)
    task = asyncio.create_task(seeder.run())
    try:
        cleared = _job(job, "ok")
        with pytest.raises(dispatch.DispatchTimeoutError, match="still being read"):
            await pipe.ingest([cleared], deadline=timedelta(milliseconds=300))
        assert _evaluations(eng, "JobFailed") == 0
        assert seeder.problem is not None
        assert "cannot reach Temporal at 127.0.0.1:1" in seeder.problem
        cold = observations.Observation(
            source=observations.SourceKind.KAFKA,
            stream="temps",
            at=datetime.now(UTC),
            labels={"kind": "temp", "host": "h1"},
            body={"celsius": 20},
        )
        assert await pipe.ingest([cold], deadline=timedelta(milliseconds=300)) == []
        assert _evaluations(eng, "Hot") == 1

        answers.set()
        found = await pipe.ingest([cleared], deadline=timedelta(seconds=30))
        assert [(t.kind, t.episode) for t in found] == [("resolved", episode.episode)]
        assert seeder.problem is None
        seeded = metrics.registry.get_sample_value(
            "homeostat_seeded_episodes_total", {"outcome": "seeded"}
        )
        assert seeded == 1
    finally:
        task.cancel()


@pytest.mark.timeout(60)
async def test_a_defect_in_reading_gives_up_seeding_instead_of_holding_webhooks(
    tmp_path, temporal_dev_server
):
    """A reader that fails with an unexpected error is counted as `error`; webhook events are evaluated at once afterwards."""

    async def read() -> open_episodes.OpenEpisodes:
        raise ValueError("a defect")

    def seeder_of(eng, metrics):
        return seeding.Seeder(
            read=read, engine=eng, clock=lambda: datetime.now(UTC), counter=metrics.seeded_episodes
        )

    eng, metrics, seeder, pipe = await _pipe(tmp_path, temporal_dev_server.address, seeder_of)
    await seeder.run()
    assert seeder.done
    assert seeder.problem is None
    assert await pipe.ingest([_job("nightly", "ok")], deadline=timedelta(seconds=1)) == []
    assert _evaluations(eng, "JobFailed") == 1
    errors_counted = metrics.registry.get_sample_value(
        "homeostat_seeded_episodes_total", {"outcome": "error"}
    )
    assert errors_counted == 1
