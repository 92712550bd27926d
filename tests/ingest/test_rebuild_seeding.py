"""Before Kafka partitions are rebuilt, the engine is told the open episodes: the rebuild waits for Temporal and says why, and a defect never stops it."""

import asyncio
from datetime import UTC, datetime

import pytest

from controller import errors
from controller.domain import observations, resources, transitions
from controller.ingest import seeding
from controller.observability import metrics as metrics_module
from controller.operations import open_episodes
from controller.rules import engine, loader

RULES = """\
groups:
  - name: hosts
    rules:
      - name: Hot
        source: kafka
        stream: temps
        match: labels.kind == 'temp'
        when: body.celsius > 80
        resource: host/{{ labels.host }}
      - name: HighCPU
        expr: cpu > 0.9
        resource: host/{{ labels.host }}
"""
KAFKA = frozenset({observations.SourceKind.KAFKA})
STARTED = datetime(2026, 1, 1, tzinfo=UTC)


def _episode(host: str) -> transitions.OpenEpisode:
    resource = resources.ResourceKey(f"host/{host}")
    return transitions.OpenEpisode(
        rule="Hot",
        resource=resource,
        episode=transitions.episode_id(rule="Hot", resource=resource, started_at=STARTED),
        started_at=STARTED,
    )


def _temp(host: str, celsius: int) -> observations.Observation:
    return observations.Observation(
        source=observations.SourceKind.KAFKA,
        stream="temps",
        at=datetime.now(UTC),
        labels={"kind": "temp", "host": host},
        body={"celsius": celsius},
    )


def _seeded(metrics: metrics_module.Metrics, outcome: str) -> float:
    return metrics.seeded_episodes.labels(outcome=outcome)._value.get()


@pytest.fixture
def parts(tmp_path):
    """An engine that reports the episodes it decides to the metrics, and the metrics."""
    (tmp_path / "rules.yaml").write_text(RULES)
    metrics = metrics_module.create()
    eng = engine.Engine(
        loader.load_rule_set(tmp_path, known_remediations=None),
        on_seed=seeding.decided_reporter(metrics.seeded_episodes),
    )
    return eng, metrics


@pytest.mark.timeout(30)
async def test_the_rebuild_waits_for_temporal_and_the_all_clear_then_resolves_the_episode(parts):
    """While Temporal does not answer the rebuild waits and the readiness reason says so; once read, the first event of the host decides the episode (counted) and its all-clear resolves it."""
    eng, metrics = parts
    answers = [errors.DependencyError("cannot reach Temporal: refused")]
    episode = _episode("db1")

    async def read():
        if answers:
            raise answers.pop()
        return open_episodes.OpenEpisodes(episodes=(episode,), resources=1, unlisted=2)

    seeder = seeding.RebuildSeeder(
        read=read, engine=eng, sources=KAFKA, counter=metrics.seeded_episodes
    )
    task = asyncio.create_task(seeder.expect())
    await asyncio.sleep(0.1)
    assert not task.done()
    assert "Kafka partitions wait" in (seeder.problem or "")
    assert "cannot reach Temporal: refused" in (seeder.problem or "")
    await asyncio.wait_for(task, 10)
    assert seeder.problem is None
    assert _seeded(metrics, "unlisted") == 2
    [resolved] = eng.observe(_temp("db1", 20))
    assert (resolved.kind, resolved.episode) == (
        transitions.TransitionKind.RESOLVED,
        episode.episode,
    )
    assert _seeded(metrics, "seeded") == 1


@pytest.mark.timeout(30)
async def test_a_defect_in_reading_is_counted_and_the_rebuild_goes_on(parts):
    """A read that fails other than by Temporal being away ends at once, counted as an error, with no reason left in readiness."""
    eng, metrics = parts

    async def read():
        raise KeyError("memo")

    seeder = seeding.RebuildSeeder(
        read=read, engine=eng, sources=KAFKA, counter=metrics.seeded_episodes
    )
    await asyncio.wait_for(seeder.expect(), 10)
    assert seeder.problem is None
    assert _seeded(metrics, "error") == 1


@pytest.mark.timeout(30)
async def test_prometheus_rules_take_over_their_open_episodes_before_their_rebuild(parts):
    """The rules about to be rebuilt open their episodes (counted as seeded); an episode no series joins is resolved after the rebuild."""
    eng, metrics = parts
    episode = transitions.OpenEpisode(
        rule="HighCPU",
        resource=resources.ResourceKey("host/db1"),
        episode=transitions.episode_id(
            rule="HighCPU", resource=resources.ResourceKey("host/db1"), started_at=STARTED
        ),
        started_at=STARTED,
    )

    async def read():
        return open_episodes.OpenEpisodes(episodes=(episode,), resources=1, unlisted=0)

    seeder = seeding.RebuildSeeder(
        read=read, engine=eng, sources=KAFKA, counter=metrics.seeded_episodes
    )
    await asyncio.wait_for(seeder.take_over(["HighCPU"]), 10)
    assert _seeded(metrics, "seeded") == 1
    [resolved] = eng.close_unjoined("HighCPU", datetime.now(UTC))
    assert (resolved.kind, resolved.episode) == (
        transitions.TransitionKind.RESOLVED,
        episode.episode,
    )
