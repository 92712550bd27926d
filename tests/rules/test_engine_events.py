from __future__ import annotations

from datetime import timedelta

from timeline import at

from controller.domain import observations, transitions
from controller.rules import engine, model

FIRED = transitions.TransitionKind.FIRED
RESOLVED = transitions.TransitionKind.RESOLVED

LAG = """\
groups:
  - name: events
    rules:
      - name: Lag
        source: kafka
        stream: health
        match: labels.type == 'lag'
        when: body.lag > 100
        for: {hold}
        keep_firing_for: {keep}
        stale_after: 2m
        resource: service/{{{{ labels.group }}}}
        annotations: {{summary: "lag {{{{ body.lag }}}}"}}
"""


def lag(seconds, value, *, group="billing", stream="health", kind="lag"):
    return observations.Observation(
        source=observations.SourceKind.KAFKA,
        stream=stream,
        at=at(seconds),
        labels={"type": kind, "group": group},
        body={"lag": value},
    )


def feed(eng, items):
    out = []
    for item in items:
        out += (
            eng.tick(item) if not isinstance(item, observations.Observation) else eng.observe(item)
        )
    return [(t.kind, t.at) for t in out]


def build(make_rules, *, hold="1m", keep="0"):
    return engine.Engine(make_rules(LAG.format(hold=hold, keep=keep)))


def test_event_time_for_fires_at_exact_instant(make_rules):
    """Fires when the condition has been true for `for` in event time, discovered by tick."""
    eng = build(make_rules)
    assert feed(eng, [lag(0, 500), lag(30, 600)]) == []
    assert feed(eng, [at(59)]) == []
    assert feed(eng, [at(75)]) == [(FIRED, at(60))]


def test_false_event_resets_pending(make_rules):
    """A false event resets the pending condition."""
    eng = build(make_rules)
    assert feed(eng, [lag(0, 500), lag(50, 5), lag(60, 500), at(100)]) == []
    assert feed(eng, [at(120)]) == [(FIRED, at(120))]


def test_staleness_counts_as_false(make_rules):
    """No qualifying event for longer than stale_after resolves, at the staleness instant."""
    eng = build(make_rules, hold="0")
    assert feed(eng, [lag(0, 500)]) == [(FIRED, at(0))]
    assert feed(eng, [at(120)]) == []
    assert feed(eng, [at(121)]) == [(RESOLVED, at(120))]


def test_stale_gap_resets_pending(make_rules):
    """A pending condition with a gap longer than stale_after starts over."""
    eng = build(make_rules, hold="3m")
    assert feed(eng, [lag(0, 500), lag(121, 500), lag(240, 500), at(300)]) == []
    assert feed(eng, [at(301)]) == [(FIRED, at(301))]


def test_keep_firing_for_in_event_time(make_rules):
    """keep_firing_for holds after a false event; a true event within it continues."""
    eng = build(make_rules, hold="0", keep="1m")
    assert feed(eng, [lag(0, 500), lag(10, 1), lag(40, 500), lag(50, 1)]) == [(FIRED, at(0))]
    assert feed(eng, [at(109)]) == []
    assert feed(eng, [at(110)]) == [(RESOLVED, at(110))]


def test_other_streams_and_types_are_ignored(make_rules):
    """Only the rule's stream and matching events count."""
    eng = build(make_rules, hold="0")
    assert feed(eng, [lag(0, 500, stream="other"), lag(0, 500, kind="cpu")]) == []


def test_duplicates_and_late_events_do_not_start_episodes(make_rules):
    """A duplicated or late event changes nothing."""
    eng = build(make_rules, hold="0")
    first = lag(0, 500)
    assert feed(eng, [first, lag(10, 1)]) == [(FIRED, at(0)), (RESOLVED, at(10))]
    assert feed(eng, [first, lag(10, 1), lag(5, 500)]) == []
    assert eng.stats["late"] == 2
    assert eng.stats["duplicate"] == 1


def test_annotations_render_body(make_rules):
    """Event annotations can read the event body."""
    eng = build(make_rules, hold="0")
    fired = eng.observe(lag(0, 500))
    assert fired[0].annotations == {"summary": "lag 500"}
    assert fired[0].labels["alertname"] == "Lag"


COUNT = """\
groups:
  - name: events
    rules:
      - name: CrashLoop
        source: kafka
        match: labels.reason == 'BackOff'
        count: {threshold: 3, within: 10m}
        resource: service/{{ labels.app }}
        group_by: [namespace]
"""


def crash(seconds, namespace="prod"):
    return observations.Observation(
        source=observations.SourceKind.KAFKA,
        stream="k8s",
        at=at(seconds),
        labels={"reason": "BackOff", "app": "api", "namespace": namespace},
    )


def test_count_within_window(make_rules):
    """Fires on the third match within 10 minutes; resolves when the window no longer holds."""
    eng = engine.Engine(make_rules(COUNT))
    assert feed(eng, [crash(0), crash(100)]) == []
    assert feed(eng, [crash(550)]) == [(FIRED, at(550))]
    # The window [t - 10m, t] holds three matches while the oldest (at 0) is in it: until 600.
    assert feed(eng, [at(600)]) == []
    assert feed(eng, [at(601)]) == [(RESOLVED, at(600))]
    assert feed(eng, [crash(1300)]) == []  # 100 and 550 are out of [700, 1300]


def test_count_groups_by_label(make_rules):
    """group_by keeps counts apart per label value, while one resource gets one episode."""
    eng = engine.Engine(make_rules(COUNT))
    found = feed(
        eng,
        [crash(0, "a"), crash(1, "b"), crash(2, "a"), crash(3, "b"), crash(4, "a"), crash(5, "b")],
    )
    assert found == [(FIRED, at(4))]
    assert len(eng.firing("CrashLoop")) == 2


def test_duplicate_events_are_not_counted_twice(make_rules):
    """An event delivered three times counts once."""
    eng = engine.Engine(make_rules(COUNT))
    event = crash(0)
    assert feed(eng, [event, event, event]) == []


CORRELATE = """\
groups:
  - name: events
    rules:
      - name: DeployThenErrors
        source: webhook
        all:
          - match: labels.kind == 'deploy'
          - match: labels.kind == 'errors'
        within: 15m
        resource: service/{{ labels.service }}
"""


def hook(seconds, kind):
    return observations.Observation(
        source=observations.SourceKind.WEBHOOK,
        stream="/hooks",
        at=at(seconds),
        labels={"kind": kind, "service": "web"},
    )


def test_all_within_window(make_rules):
    """Fires when every condition matched within the window; resolves when one ages out."""
    eng = engine.Engine(make_rules(CORRELATE))
    assert feed(eng, [hook(0, "errors")]) == []
    assert feed(eng, [hook(600, "deploy")]) == [(FIRED, at(600))]
    assert feed(eng, [at(901)]) == [(RESOLVED, at(900))]
    assert feed(eng, [hook(1000, "deploy"), hook(1200, "errors")]) == [(FIRED, at(1200))]


def test_tick_forgets_idle_conditions(make_rules):
    """Conditions idle past the rule's horizon are forgotten, keeping memory bounded."""
    eng = build(make_rules, hold="0")
    feed(eng, [lag(0, 500, group=f"g{index}") for index in range(50)])
    feed(eng, [at(10_000)])
    runtime = eng._runtimes["Lag"]
    assert runtime.tracked == {}
    assert feed(eng, [lag(100, 500)]) == []  # far too late for a forgotten condition
    assert eng.stats["late"] == 1


def test_runtime_silence_holds_and_then_announces(make_rules):
    """A silenced episode is announced when the silence ends if it is still open."""
    eng = build(make_rules, hold="0")
    match = engine.expressions.compile_expression(
        "rule == 'Lag'", allowed=frozenset({"rule", "labels", "resource"})
    )
    eng.silence(model.Silence(name="maint", match=match, starts_at=at(0), ends_at=at(60)))
    assert feed(eng, [lag(0, 500), lag(30, 500)]) == []
    found = eng.tick(at(60))
    assert [(t.kind, t.started_at, t.at) for t in found] == [(FIRED, at(0), at(60))]
    assert eng.unsilence("maint")


def test_silenced_episode_that_ends_is_never_announced(make_rules):
    """An episode that starts and ends inside a silence produces no transition."""
    eng = build(make_rules, hold="0")
    match = engine.expressions.compile_expression("true", allowed=frozenset({"rule"}))
    eng.silence(
        model.Silence(name="all", match=match, starts_at=at(0), ends_at=at(0) + timedelta(hours=1))
    )
    assert feed(eng, [lag(0, 500), lag(10, 1), at(100)]) == []


def test_an_event_late_behind_a_false_one_is_ignored(make_rules):
    """A true event older than a false one already seen on its condition is late, not pending."""
    eng = build(make_rules)
    assert feed(eng, [lag(60, 50), lag(30, 500), at(100)]) == []
    assert eng.stats["late"] == 1
    assert feed(eng, [lag(61, 500), at(121)]) == [(FIRED, at(121))]


def test_a_false_event_ends_what_is_pending(make_rules):
    """A false event resets a pending condition; for starts again with the next true one."""
    eng = build(make_rules)
    assert feed(eng, [lag(0, 500), lag(30, 50), lag(40, 500), at(99)]) == []
    assert feed(eng, [at(100)]) == [(FIRED, at(100))]


BODY_RESOURCE = """\
groups:
  - name: events
    rules:
      - name: Disk
        source: kafka
        match: labels.kind == 'disk'
        when: body.used > 90
        resource: host/{{ body.host.name }}
"""


def disk(seconds, host, used):
    return observations.Observation(
        source=observations.SourceKind.KAFKA,
        stream="disks",
        at=at(seconds),
        labels={"kind": "disk"},
        body={"host": {"name": host}, "used": used},
    )


def test_a_resource_rendered_from_the_body(make_rules):
    """A resource template that reads the body tells events with the same labels apart."""
    eng = engine.Engine(make_rules(BODY_RESOURCE))
    fired = eng.observe(disk(0, "db-1", 95)) + eng.observe(disk(0, "db-2", 95))
    assert [t.resource for t in fired] == ["host/db-1", "host/db-2"]
    assert eng.observe(disk(1, "db-1", 10))[0].kind == RESOLVED


def test_events_without_a_valid_resource_are_counted_every_time(make_rules):
    """An event whose resource renders to no valid key is dropped and counted, each time."""
    eng = build(make_rules, hold="0")
    feed(eng, [lag(0, 500, group="not a name"), lag(1, 500, group="not a name")])
    assert eng.stats["invalid_resource"] == 2
    assert eng.firing("Lag") == []
