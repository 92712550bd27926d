"""Live rule state: the conditions pending or firing, each rule's last evaluation and errors, and what no rule could use."""

from __future__ import annotations

from datetime import timedelta

from timeline import EPOCH, Series, at

from controller.domain import observations
from controller.ingest import prometheus
from controller.operations import encoding, rule_state
from controller.rules import engine

RULES = """\
groups:
  - name: events
    rules:
      - name: Lag
        source: kafka
        stream: health
        match: labels.type == 'lag'
        when: body.lag > 100
        for: 5m
        stale_after: 10m
        resource: service/{{ labels.group }}
  - name: polled
    rules:
      - name: HighCPU
        expr: cpu > 0.9
        for: 1m
        resource: service/{{ labels.service }}
"""


def _event(seconds, body, *, kind="lag", stream="health"):
    return observations.Observation(
        source=observations.SourceKind.KAFKA,
        stream=stream,
        at=at(seconds),
        labels={"type": kind, "group": "billing"},
        body=body,
    )


def test_a_pending_condition_shows_since_for_and_time_left(make_rules):
    """An event rule true for 1 of its 5 minutes is pending with 4 minutes left; a Prometheus alert carries its value."""
    eng = engine.Engine(make_rules(RULES))
    eng.observe(_event(0, {"lag": 500}))
    eng.observe(_event(60, {"lag": 700}))
    eng.evaluate("HighCPU", at(60), [Series(labels={"service": "web"}, value=0.95)])
    report = rule_state.alerts_report(eng, now=at(60))
    assert (report.pending, report.firing) == (2, 0)
    lag, cpu = report.alerts[1], report.alerts[0]
    assert (lag.rule, lag.resource, lag.state) == ("Lag", "service/billing", "pending")
    assert (lag.since, lag.hold, lag.time_left) == (
        at(0),
        timedelta(minutes=5),
        timedelta(minutes=4),
    )
    assert lag.last_seen == at(60)
    assert (cpu.rule, cpu.value, cpu.time_left) == ("HighCPU", 0.95, timedelta(minutes=1))
    eng.tick(at(301))
    fired = rule_state.alerts_report(eng, now=at(301)).alerts[1]
    assert (fired.state, fired.fired_at, fired.time_left) == ("firing", at(300), None)
    assert encoding.to_json(fired)["hold"] == 300.0


def test_events_no_rule_could_use_are_counted_by_stream_and_reason(make_rules):
    """A missing field, a wrong type and an event no rule matches are each counted per stream and reason, and the rule shows the last problem."""
    eng = engine.Engine(make_rules(RULES))
    eng.observe(_event(0, {}))
    eng.observe(_event(1, {"lag": "many"}))
    eng.observe(_event(2, {"lag": 5}, kind="throughput"))
    eng.observe(_event(3, {"lag": 5}, stream="somewhere-else"))
    assert eng.ignored_by_stream == {
        ("health", "missing_field"): 1,
        ("health", "wrong_type"): 1,
        ("health", "no_rule"): 1,
        ("other", "no_rule"): 1,
    }
    [lag] = [rule for rule in rule_state.rules_report(eng).rules if rule.name == "Lag"]
    assert (lag.errors, lag.error_at) == (2, at(1))
    assert lag.error == "body.lag is not a number"
    assert (lag.last_evaluation, lag.group) == (at(1), "events")


def test_rules_report_merges_the_pollers_health(make_rules):
    """A polled rule whose last query failed is unhealthy and says why; one never evaluated is unknown."""
    eng = engine.Engine(make_rules(RULES))
    failing = prometheus.PollHealth(
        evaluated_at=EPOCH, error="Prometheus unreachable", error_at=EPOCH, errors=3
    )
    report = rule_state.rules_report(eng, polls={"HighCPU": failing})
    by_name = {rule.name: rule for rule in report.rules}
    assert by_name["HighCPU"].health == "err"
    assert (by_name["HighCPU"].error, by_name["HighCPU"].errors) == ("Prometheus unreachable", 3)
    assert by_name["Lag"].health == "unknown"
    healthy = prometheus.PollHealth(evaluated_at=EPOCH, duration=timedelta(milliseconds=12))
    [cpu] = [
        r
        for r in rule_state.rules_report(eng, polls={"HighCPU": healthy}).rules
        if r.name == "HighCPU"
    ]
    assert (cpu.health, cpu.duration, cpu.last_evaluation) == (
        "ok",
        timedelta(milliseconds=12),
        EPOCH,
    )
    assert report.revision.startswith("sha256:")
