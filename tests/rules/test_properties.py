from __future__ import annotations

import itertools
import math
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from timeline import Series, at

from controller.domain import observations, transitions
from controller.rules import engine, loader

FIRED = transitions.TransitionKind.FIRED
RESOLVED = transitions.TransitionKind.RESOLVED
INTERVAL = 60
PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

PROM = """\
groups:
  - name: g
    rules:
      - name: R
        expr: x > 0
        for: {hold}s
        keep_firing_for: {keep}s
        cooldown: {cooldown}s
        resource: service/{{{{ labels.service }}}}
"""

EVENTS = """\
groups:
  - name: g
    rules:
      - name: E
        source: kafka
        match: labels.kind == 'probe'
        when: body.ok == 0
        for: {hold}s
        keep_firing_for: {keep}s
        stale_after: {stale}s
        cooldown: {cooldown}s
        resource: service/{{{{ labels.service }}}}
"""


@pytest.fixture(scope="module")
def rule_sets(tmp_path_factory):
    """Rule sets by their parameters, loaded once per parameter set for speed."""
    cache = {}

    def get(template, **params):
        key = (template, tuple(sorted(params.items())))
        if key not in cache:
            folder = tmp_path_factory.mktemp("props")
            (folder / "r.yaml").write_text(template.format(**params))
            cache[key] = loader.load_rule_set(folder, known_remediations=None)
        return cache[key]

    return get


def evaluate(eng, presence, *, services=("web",)):
    out = []
    for step, present in enumerate(presence):
        samples = [
            Series(labels={"service": name})
            for name, here in zip(services, present, strict=False)
            if here
        ]
        out += eng.evaluate("R", at(step * INTERVAL), samples)
    return out


holds = st.sampled_from([0, 60, 120, 300])
keeps = st.sampled_from([0, 60, 180])


@PROPERTY
@given(hold=holds, prefix=st.lists(st.booleans(), max_size=8), extra=st.integers(0, 6))
def test_held_for_fires_exactly_once(rule_sets, hold, prefix, extra):
    """A condition present at every evaluation for `for` fires exactly once, on time."""
    eng = engine.Engine(rule_sets(PROM, hold=hold, keep=0, cooldown=0))
    before = evaluate(eng, [(p,) for p in prefix] + [(False,)])
    start = len(prefix) + 1
    steps = math.ceil(hold / INTERVAL) + 1 + extra
    found = []
    for step in range(start, start + steps):
        found += eng.evaluate("R", at(step * INTERVAL), [Series(labels={"service": "web"})])
    assert [t.kind for t in found] == [FIRED]
    assert found[0].started_at == at(start * INTERVAL + math.ceil(hold / INTERVAL) * INTERVAL)
    assert all(t.kind is not FIRED or t.at < at(start * INTERVAL) for t in before)


@PROPERTY
@given(hold=st.sampled_from([120, 300]), before_gap=st.integers(1, 4), after_gap=st.integers(0, 8))
def test_one_missing_evaluation_resets(rule_sets, hold, before_gap, after_gap):
    """A single missing evaluation resets `for`: firing is timed from after the gap."""
    eng = engine.Engine(rule_sets(PROM, hold=hold, keep=0, cooldown=0))
    needed = hold // INTERVAL
    before_gap = min(before_gap, needed)  # not yet firing at the gap
    presence = [(True,)] * before_gap + [(False,)] + [(True,)] * after_gap
    found = evaluate(eng, presence)
    gap_end = before_gap + 1
    expected = [at((gap_end + needed) * INTERVAL)] if after_gap > needed else []
    assert [t.started_at for t in found if t.kind is FIRED] == expected


@PROPERTY
@given(
    hold=holds,
    keep=keeps,
    cooldown=st.sampled_from([0, 300]),
    presence=st.lists(st.tuples(st.booleans(), st.booleans()), max_size=30),
)
def test_episode_invariants(rule_sets, hold, keep, cooldown, presence):
    """Per resource, fired and resolved alternate, ids are unique, and cooldown holds."""
    eng = engine.Engine(rule_sets(PROM, hold=hold, keep=keep, cooldown=cooldown))
    found = evaluate(eng, presence, services=("web", "api"))
    for resource in ("service/web", "service/api"):
        mine = [t for t in found if t.resource == resource]
        assert [t.kind for t in mine] == [FIRED, RESOLVED] * (len(mine) // 2) + [FIRED] * (
            len(mine) % 2
        )
        starts = [t.started_at for t in mine if t.kind is FIRED]
        assert len({t.episode for t in mine if t.kind is FIRED}) == len(starts)
        assert all(b - a >= timedelta(seconds=cooldown) for a, b in itertools.pairwise(starts))
    replay = evaluate(
        engine.Engine(rule_sets(PROM, hold=hold, keep=keep, cooldown=cooldown)),
        presence,
        services=("web", "api"),
    )
    assert replay == found


@PROPERTY
@given(keep=st.sampled_from([60, 180, 300]), present=st.integers(1, 5), absent=st.integers(1, 10))
def test_keep_firing_for_holds(rule_sets, keep, present, absent):
    """After the last present evaluation, the episode stays open for keep_firing_for."""
    eng = engine.Engine(rule_sets(PROM, hold=0, keep=keep, cooldown=0))
    found = evaluate(eng, [(True,)] * present + [(False,)] * absent)
    last_true = at((present - 1) * INTERVAL)
    resolved = [t.at for t in found if t.kind is RESOLVED]
    first_absent = at(present * INTERVAL)
    if absent * INTERVAL > keep:
        assert resolved == [first_absent + timedelta(seconds=math.ceil(keep / INTERVAL) * INTERVAL)]
        assert resolved[0] - last_true >= timedelta(seconds=keep)
    else:
        assert resolved == []


def probe(seconds, ok, service="web"):
    return observations.Observation(
        source=observations.SourceKind.KAFKA,
        stream="probes",
        at=at(seconds),
        labels={"kind": "probe", "service": service},
        body={"ok": ok},
    )


event_streams = st.lists(
    st.tuples(st.integers(0, 90), st.sampled_from([0, 1]), st.sampled_from(["web", "api"])),
    max_size=25,
).map(
    lambda steps: [
        probe(sum(gap for gap, _, _ in steps[: index + 1]), ok, service)
        for index, (_, ok, service) in enumerate(steps)
    ]
)


def run_events(eng, events, ticks=()):
    out = []
    pending = sorted(ticks)
    for event in events:
        while pending and at(pending[0]) <= event.at:
            out += eng.tick(at(pending.pop(0)))
        out += eng.observe(event)
    end = (events[-1].at if events else at(0)) + timedelta(hours=2)
    return out + eng.tick(end)


event_params = st.fixed_dictionaries(
    {
        "hold": st.sampled_from([0, 30, 120]),
        "keep": st.sampled_from([0, 60]),
        "stale": st.sampled_from([45, 120]),
        "cooldown": st.sampled_from([0, 200]),
    }
)


@PROPERTY
@given(events=event_streams, params=event_params)
def test_duplicated_and_replayed_events_change_nothing(rule_sets, events, params):
    """Delivering every event twice, or replaying a prefix, yields the same transitions."""
    rules = rule_sets(EVENTS, **params)
    once = run_events(engine.Engine(rules), events)
    twice = run_events(engine.Engine(rules), [e for event in events for e in (event, event)])
    assert twice == once
    replayed = run_events(engine.Engine(rules), events[: len(events) // 2] + events)
    assert replayed == once


@PROPERTY
@given(events=event_streams, ticks=st.lists(st.integers(0, 2500), max_size=30), params=event_params)
def test_tick_timing_does_not_change_outcomes(rule_sets, events, ticks, params):
    """When deadlines are noticed never changes which transitions happen, or their times."""
    rules = rule_sets(EVENTS, **params)
    plain = run_events(engine.Engine(rules), events)
    ticked = run_events(engine.Engine(rules), events, ticks)
    key = lambda t: (t.at, t.resource, t.kind)  # noqa: E731
    assert sorted(ticked, key=key) == sorted(plain, key=key)


@PROPERTY
@given(events=event_streams, params=event_params)
def test_event_episode_invariants(rule_sets, events, params):
    """Event rules: fired/resolved alternate per resource; starts are a cooldown apart."""
    found = run_events(
        engine.Engine(rule_sets(EVENTS, **params)),
        events,
    )
    for resource in ("service/web", "service/api"):
        mine = [t for t in found if t.resource == resource]
        assert [t.kind for t in mine] == [FIRED, RESOLVED] * (len(mine) // 2)
        starts = [t.started_at for t in mine if t.kind is FIRED]
        assert all(
            b - a >= timedelta(seconds=params["cooldown"]) for a, b in itertools.pairwise(starts)
        )
        for fired, resolved in zip(mine[::2], mine[1::2], strict=True):
            assert resolved.episode == fired.episode
            assert resolved.at >= fired.started_at


BATCHED = """\
groups:
  - name: g
    rules:
      - name: Plain
        source: kafka
        stream: probes
        match: labels.kind == 'probe'
        when: body.lat > 5
        for: 30s
        resource: service/{{{{ labels.service }}}}
      - name: Filtered
        source: kafka
        match: labels.kind == 'probe' && body.ok == 0
        when: body.lat > 2
        stale_after: 60s
        keep_firing_for: 30s
        resource: service/{{{{ labels.service }}}}
        group_by: [zone]
      - name: Counted
        source: kafka
        match: labels.kind == 'probe'
        when: body.ok == 0
        count:
          threshold: 2
          within: 2m
        resource: host/{{{{ labels.host }}}}
      - name: Correlated
        source: kafka
        all:
          - match: labels.kind == 'deploy'
          - match: labels.kind == 'probe' && body.ok == 0
        within: 3m
        resource: service/{{{{ labels.service }}}}
      - name: FromBody
        source: kafka
        match: labels.zone != 'b'
        when: body.lat > 8
        cooldown: 100s
        resource: service/{{{{ body.service }}}}
"""


def batch_event(seconds, kind, service, host, zone, lat, ok, stream):
    body = {"lat": lat, "ok": ok}
    if service != "none":
        body["service"] = service
    return observations.Observation(
        source=observations.SourceKind.KAFKA,
        stream=stream,
        at=at(seconds),
        labels={"kind": kind, "service": service, "host": host, "zone": zone},
        body=body,
    )


batch_streams = st.lists(
    st.tuples(
        st.integers(-20, 60),  # a step back in time makes late events
        st.sampled_from(["probe", "probe", "deploy", "other"]),
        st.sampled_from(["web", "api", "none"]),
        st.sampled_from(["h1", "h2", ""]),  # "" renders "host/": no valid resource
        st.sampled_from(["a", "b"]),
        st.sampled_from([0, 3, 6, 9, "slow"]),  # "slow": a condition that cannot be evaluated
        st.sampled_from([0, 1]),
        st.sampled_from(["probes", "probes", "other"]),
    ),
    max_size=40,
).map(
    lambda steps: [
        batch_event(max(0, 100 + sum(step[0] for step in steps[: index + 1])), *step[1:])
        for index, step in enumerate(steps)
    ]
)


def engine_state(eng):
    return (
        dict(eng.stats),
        dict(eng.ignored_by_stream),
        eng.conditions(),
        eng.rule_counts(),
        sorted(str(episode) for episode in eng.open_episodes()),
    )


@PROPERTY
@given(
    events=batch_streams,
    cuts=st.lists(st.integers(0, 40), max_size=6),
    ticks=st.lists(st.booleans(), max_size=6),
    duplicated=st.booleans(),
)
def test_a_batch_gives_what_its_observations_give_one_by_one(
    rule_sets, events, cuts, ticks, duplicated
):
    """Feeding observations a batch at a time gives the transitions, drops and state that feeding them one by one gives."""
    rules = rule_sets(BATCHED)
    if duplicated:
        events = [e for event in events for e in (event, event)]
    bounds = sorted({0, len(events), *(cut for cut in cuts if cut <= len(events))})
    one_drops, batch_drops = [], []
    one = engine.Engine(rules, on_drop=lambda *drop: one_drops.append(drop))
    batched = engine.Engine(rules, on_drop=lambda *drop: batch_drops.append(drop))
    one_out, batch_out = [], []
    for number, (start, end) in enumerate(itertools.pairwise(bounds)):
        for event in events[start:end]:
            one_out += one.observe(event)
        batch_out += batched.observe_batch(events[start:end])
        if number < len(ticks) and ticks[number] and end:
            now = events[end - 1].at + timedelta(seconds=45)
            one_out += one.tick(now)
            batch_out += batched.tick(now)
        assert batch_out == one_out
        assert batch_drops == one_drops
        assert engine_state(batched) == engine_state(one)
    assert len(one_out) == len({(t.episode, t.kind) for t in one_out})
