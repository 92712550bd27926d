from __future__ import annotations

from timeline import at

from controller.domain import observations, transitions
from controller.rules import engine

FIRED = transitions.TransitionKind.FIRED

RULES = """\
groups:
  - name: events
    rules:
      - name: Down
        source: webhook
        match: labels.kind == 'host'
        when: body.state == 'down'
        stale_after: 2m
        resource: host/{{ labels.host }}
"""


def event(seconds, host, *, kind="host", stream="default", state="down"):
    return observations.Observation(
        source=observations.SourceKind.WEBHOOK,
        stream=stream,
        at=at(seconds),
        labels={"kind": kind, "host": host},
        body={"state": state},
    )


def test_a_future_event_no_rule_matches_makes_nothing_late(make_rules):
    """An event six minutes ahead that no rule matches leaves every later event of the rules on time."""
    eng = engine.Engine(make_rules(RULES))
    assert eng.observe(event(360, "h0", kind="unrelated")) == []
    fired = eng.observe(event(0, "h1"))
    assert [(t.kind, t.resource) for t in fired] == [(FIRED, "host/h1")]
    assert eng.stats["late"] == 0


def test_the_newest_time_is_kept_per_stream(make_rules):
    """A rule's event far ahead on one stream does not make its events on another stream late."""
    eng = engine.Engine(make_rules(RULES))
    assert [t.resource for t in eng.observe(event(360, "h0", stream="eu"))] == ["host/h0"]
    fired = eng.observe(event(0, "h1", stream="us"))
    assert [(t.kind, t.resource) for t in fired] == [(FIRED, "host/h1")]


def test_an_old_event_of_a_forgotten_condition_is_still_late_on_its_stream(make_rules):
    """Behind its own stream's newest time by more than the horizon, an event for a new condition is dropped as late and reported."""
    dropped = []
    eng = engine.Engine(
        make_rules(RULES), on_drop=lambda reason, rule, obs: dropped.append((reason, rule, obs))
    )
    eng.observe(event(360, "h0"))
    late = event(0, "h1")
    assert eng.observe(late) == []
    assert dropped == [("late", "Down", late)]
    assert eng.stats["late"] == 1


def test_every_drop_reason_reaches_the_callback(make_rules):
    """Duplicates and events without a valid resource are reported with their reason, like late ones."""
    dropped = []
    eng = engine.Engine(make_rules(RULES), on_drop=lambda reason, *_: dropped.append(reason))
    first = event(0, "h1")
    eng.observe(first)
    eng.observe(first)
    eng.observe(event(1, "not a host"))
    assert dropped == ["duplicate", "invalid_resource"]
