"""After a restart, Prometheus rules take over the open episodes before the rebuild: a series firing since before the lookback keeps its episode."""

from __future__ import annotations

from datetime import timedelta

from timeline import Series, at

from controller.domain import transitions
from controller.rules import engine, seeding

FIRED = transitions.TransitionKind.FIRED
RESOLVED = transitions.TransitionKind.RESOLVED
MINUTE = 60

RULES = """\
groups:
  - name: web
    interval: 1m
    rules:
      - name: HighCPU
        expr: cpu > 0.9
        for: 2m
        resource: service/{{ labels.service }}
"""
HOT = [Series(labels={"service": "web"})]


def run(eng, minutes, samples=HOT):
    """Evaluate HighCPU once a minute over ``minutes``; the transitions, in order."""
    out = []
    for minute in minutes:
        out += eng.evaluate("HighCPU", at(minute * MINUTE), samples)
    return out


def open_episode(fired: transitions.Transition) -> transitions.OpenEpisode:
    """What the resource workflow's memo tells of the episode ``fired`` started."""
    return transitions.OpenEpisode(
        rule=fired.rule,
        resource=fired.resource,
        episode=fired.episode,
        started_at=fired.started_at,
    )


def restarted(make_rules, fired):
    """A new engine that took over the open episodes ``fired`` started."""
    eng = engine.Engine(make_rules(RULES))
    outcomes = eng.take_over([open_episode(t) for t in fired], rules={"HighCPU"})
    assert outcomes == {seeding.Outcome.SEEDED: len(fired)}
    return eng


def test_without_taking_over_the_rebuild_starts_a_second_episode(make_rules):
    """The defect: hot for 40 minutes, the rebuild over the last 10 fires a new episode, which the poller sends."""
    [fired] = run(engine.Engine(make_rules(RULES)), range(40))
    rebuilt = run(engine.Engine(make_rules(RULES)), range(30, 41))
    assert [t.kind for t in rebuilt] == [FIRED]
    assert rebuilt[0].episode != fired.episode


def test_a_series_firing_since_before_the_lookback_joins_the_episode_taken_over(make_rules):
    """The rebuild fires nothing to send; the series clearing resolves the episode fired 40 minutes earlier."""
    [fired] = run(engine.Engine(make_rules(RULES)), range(40))
    eng = restarted(make_rules, [fired])
    assert run(eng, range(30, 41)) == []
    assert eng.close_unjoined("HighCPU", at(40 * MINUTE)) == []
    resolved = run(eng, [41], samples=[])
    assert [(t.kind, t.episode) for t in resolved] == [(RESOLVED, fired.episode)]


def test_an_episode_the_lookback_reaches_is_rebuilt_with_the_same_id(make_rules):
    """Its start lies inside the rebuild: the replay fires it at the same time, joining it, and nothing is sent."""
    [fired] = run(engine.Engine(make_rules(RULES)), range(5))
    eng = restarted(make_rules, [fired])
    assert run(eng, range(5)) == []
    resolved = run(eng, [5], samples=[])
    assert [(t.kind, t.episode) for t in resolved] == [(RESOLVED, fired.episode)]


def test_an_episode_no_series_joined_in_the_rebuild_is_resolved(make_rules):
    """The series cleared while Homeostat was down: after the rebuild the episode resolves at its end."""
    [fired] = run(engine.Engine(make_rules(RULES)), range(40))
    eng = restarted(make_rules, [fired])
    assert run(eng, range(50, 61), samples=[]) == []
    resolved = eng.close_unjoined("HighCPU", at(60 * MINUTE))
    assert [(t.kind, t.episode, t.at) for t in resolved] == [
        (RESOLVED, fired.episode, at(60 * MINUTE))
    ]


def test_only_the_rules_rebuilt_take_their_episodes_over(make_rules):
    """Episodes of a rule another replica evaluates, and of a resource the engine already has, are left as they are."""
    [fired] = run(engine.Engine(make_rules(RULES)), range(5))
    eng = engine.Engine(make_rules(RULES))
    assert eng.take_over([open_episode(fired)], rules=set()) == {}
    run(eng, range(5))
    assert eng.take_over([open_episode(fired)], rules={"HighCPU"}) == {seeding.Outcome.KNOWN: 1}
    later = fired.started_at + timedelta(minutes=10)
    assert eng.close_unjoined("HighCPU", later) == []
