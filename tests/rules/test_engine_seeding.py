"""A new engine seeded with the episodes resource workflows hold open resolves them as the first engine would have."""

from __future__ import annotations

from timeline import at

from controller.domain import observations, transitions
from controller.rules import engine, seeding

FIRED = transitions.TransitionKind.FIRED
RESOLVED = transitions.TransitionKind.RESOLVED
WEBHOOK = frozenset({observations.SourceKind.WEBHOOK, observations.SourceKind.GITLAB})

RULES = """\
groups:
  - name: jobs
    rules:
      - name: JobFailed
        source: webhook
        match: labels.kind == 'job'
        when: body.status == 'failed'
        stale_after: 2m
        cooldown: 10m
        resource: job/{{ labels.job }}
      - name: PodCrashing
        source: webhook
        match: labels.kind == 'pod'
        when: body.status == 'crashing'
        group_by: [namespace]
        resource: app/{{ labels.app }}
      - name: Flapping
        source: gitlab
        match: labels.kind == 'deploy'
        when: body.status == 'failed'
        count: {threshold: 3, within: 5m}
        resource: app/{{ labels.app }}
      - name: Hot
        source: kafka
        stream: temps
        match: labels.kind == 'temp'
        when: body.celsius > 80
        resource: host/{{ labels.host }}
"""


def job(seconds, status, *, name="backup"):
    return observations.Observation(
        source=observations.SourceKind.WEBHOOK,
        stream="default",
        at=at(seconds),
        labels={"kind": "job", "job": name},
        body={"status": status},
    )


def pod(seconds, status, *, namespace, app="shop"):
    return observations.Observation(
        source=observations.SourceKind.WEBHOOK,
        stream="default",
        at=at(seconds),
        labels={"kind": "pod", "app": app, "namespace": namespace},
        body={"status": status},
    )


def deploy(seconds, status, *, app="shop"):
    return observations.Observation(
        source=observations.SourceKind.GITLAB,
        stream="deployment",
        at=at(seconds),
        labels={"kind": "deploy", "app": app},
        body={"status": status},
    )


def open_episode(fired: transitions.Transition) -> transitions.OpenEpisode:
    """What the resource workflow's memo tells of the episode ``fired`` started."""
    return transitions.OpenEpisode(
        rule=fired.rule,
        resource=fired.resource,
        episode=fired.episode,
        started_at=fired.started_at,
        groups=fired.groups,
    )


def restarted(make_rules, fired, *, seed_at):
    """A new engine seeded with the episodes ``fired`` started."""
    eng = engine.Engine(make_rules(RULES))
    outcomes = eng.seed([open_episode(t) for t in fired], at=seed_at, sources=WEBHOOK)
    assert outcomes == {seeding.Outcome.SEEDED: len(fired)}
    return eng


def test_the_all_clear_after_a_restart_resolves_the_same_episode(make_rules):
    """A failed job fires; after a restart a repeated failure starts nothing and the all-clear resolves the episode fired before it."""
    first = engine.Engine(make_rules(RULES))
    fired = first.observe(job(0, "failed"))
    assert [t.kind for t in fired] == [FIRED]
    eng = restarted(make_rules, fired, seed_at=at(30))
    assert eng.observe(job(40, "failed")) == []
    resolved = eng.observe(job(50, "ok"))
    assert [(t.kind, t.episode, t.at) for t in resolved] == [(RESOLVED, fired[0].episode, at(50))]


def test_without_a_seed_the_all_clear_after_a_restart_resolves_nothing(make_rules):
    """The defect seeding fixes: a new engine has no firing condition to resolve."""
    first = engine.Engine(make_rules(RULES))
    assert first.observe(job(0, "failed"))
    assert engine.Engine(make_rules(RULES)).observe(job(50, "ok")) == []


def test_staleness_of_a_seeded_condition_runs_from_the_seed_time(make_rules):
    """With no event after the restart, the episode resolves `stale_after` after the seed time, not after its last event."""
    fired = engine.Engine(make_rules(RULES)).observe(job(0, "failed"))
    eng = restarted(make_rules, fired, seed_at=at(300))
    assert eng.tick(at(420)) == []
    resolved = eng.tick(at(421))
    assert [(t.kind, t.episode, t.at) for t in resolved] == [(RESOLVED, fired[0].episode, at(420))]


def test_a_seeded_episode_keeps_its_cooldown(make_rules):
    """After the seeded episode resolves, a new failure within the rule's cooldown of its start waits for the cooldown's end."""
    fired = engine.Engine(make_rules(RULES)).observe(job(0, "failed"))
    eng = restarted(make_rules, fired, seed_at=at(30))
    assert [t.kind for t in eng.observe(job(60, "ok"))] == [RESOLVED]
    assert eng.observe(job(500, "failed")) == []
    again = eng.tick(at(600))
    assert [(t.kind, t.started_at) for t in again] == [(FIRED, at(600))]


def test_a_group_by_episode_carries_its_conditions_and_they_are_seeded(make_rules):
    """The fired transition names the group_by values that started the episode; after a restart, the all-clear of that condition resolves it."""
    fired = engine.Engine(make_rules(RULES)).observe(pod(0, "crashing", namespace="prod"))
    assert fired[0].groups == ((("namespace", "prod"),),)
    eng = restarted(make_rules, fired, seed_at=at(30))
    assert eng.observe(pod(40, "running", namespace="staging")) == []
    resolved = eng.observe(pod(50, "running", namespace="prod"))
    assert [(t.kind, t.episode) for t in resolved] == [(RESOLVED, fired[0].episode)]


def test_a_condition_that_fires_after_the_restart_joins_the_seeded_episode(make_rules):
    """A second namespace crashing after the restart starts no second episode; the episode resolves when both have cleared."""
    fired = engine.Engine(make_rules(RULES)).observe(pod(0, "crashing", namespace="prod"))
    eng = restarted(make_rules, fired, seed_at=at(30))
    assert eng.observe(pod(40, "crashing", namespace="staging")) == []
    assert eng.observe(pod(50, "running", namespace="prod")) == []
    resolved = eng.observe(pod(60, "running", namespace="staging"))
    assert [(t.kind, t.episode) for t in resolved] == [(RESOLVED, fired[0].episode)]


def test_a_seeded_count_window_is_full_at_the_seed_time(make_rules):
    """A count rule's window was lost with the restart: it counts as met at the seed time, so one more failure does not resolve the episode, and it resolves when the window ends."""
    first = engine.Engine(make_rules(RULES))
    fired = [t for n in range(3) for t in first.observe(deploy(n, "failed"))]
    assert [t.kind for t in fired] == [FIRED]
    eng = restarted(make_rules, fired, seed_at=at(100))
    assert eng.observe(deploy(120, "failed")) == []
    assert eng.tick(at(400)) == []
    resolved = eng.tick(at(401))
    assert [(t.kind, t.episode, t.at) for t in resolved] == [(RESOLVED, fired[0].episode, at(400))]


def test_seeding_sends_nothing_and_shows_the_conditions_firing(make_rules):
    """Seeding returns no transition to send (the workflow has the episode); the rule status lists the seeded condition as firing."""
    fired = engine.Engine(make_rules(RULES)).observe(job(0, "failed"))
    eng = restarted(make_rules, fired, seed_at=at(30))
    assert eng.tick(at(31)) == []
    assert [(c.rule, c.resource, c.state) for c in eng.conditions()] == [
        ("JobFailed", "job/backup", "firing")
    ]


def test_only_episodes_of_rules_in_force_that_have_nothing_to_rebuild_from_are_seeded(make_rules):
    """Episodes of removed rules, of Kafka rules, of a resource the engine already knows and of a group_by rule recorded without its conditions are left out, each counted by why."""
    eng = engine.Engine(make_rules(RULES))
    known = eng.observe(job(0, "failed", name="known"))
    start = at(0)

    def episode(rule, resource, *, groups=()):
        return transitions.OpenEpisode(
            rule=rule,
            resource=resource,
            episode=transitions.episode_id(rule=rule, resource=resource, started_at=start),
            started_at=start,
            groups=groups,
        )

    outcomes = eng.seed(
        [
            episode("Removed", "job/old"),
            episode("Hot", "host/h1"),
            open_episode(known[0]),
            episode("PodCrashing", "app/legacy"),
            episode("JobFailed", "job/other"),
        ],
        at=at(10),
        sources=WEBHOOK,
    )
    assert outcomes == {
        seeding.Outcome.UNKNOWN_RULE: 1,
        seeding.Outcome.OTHER_SOURCE: 1,
        seeding.Outcome.KNOWN: 1,
        seeding.Outcome.NO_GROUPS: 1,
        seeding.Outcome.SEEDED: 1,
    }
    assert {c.resource for c in eng.conditions()} == {"job/known", "job/other"}
