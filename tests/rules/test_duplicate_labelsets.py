"""Two series with one label set after the rule's labels apply: an evaluation error, as in Prometheus."""

from __future__ import annotations

from structlog.testing import capture_logs
from timeline import Series, at

from controller.domain import transitions
from controller.ingest import pipeline
from controller.rules import engine

RULES = """\
groups:
  - name: g
    rules:
      - name: Hot
        expr: '{__name__=~"cpu|mem"} > 90'
        for: 1m
        resource: host/{{ labels.instance }}
"""
CPU = {"__name__": "cpu", "instance": "a"}
MEM = {"__name__": "mem", "instance": "a"}


def _evaluate(eng, seconds, present):
    return eng.evaluate("Hot", at(seconds), [Series(labels=labels, value=95) for labels in present])


def test_duplicates_fail_the_evaluation_and_change_no_state(make_rules):
    """Where Prometheus fails the evaluation, nothing becomes pending, fires or resolves."""
    eng = engine.Engine(make_rules(RULES))
    assert _evaluate(eng, 0, [CPU, MEM]) == []
    assert _evaluate(eng, 60, [CPU, MEM]) == []
    assert eng.firing("Hot") == []
    assert _evaluate(eng, 120, [CPU]) == []  # pending from 2m
    fired = _evaluate(eng, 180, [CPU])
    assert [(item.kind, item.at) for item in fired] == [(transitions.TransitionKind.FIRED, at(180))]
    assert _evaluate(eng, 240, [CPU, MEM]) == []  # fails: the firing alert stays as it was
    assert [alert.fired_at for alert in eng.firing("Hot")] == [at(180)]
    resolved = _evaluate(eng, 300, [])
    assert [item.kind for item in resolved] == [transitions.TransitionKind.RESOLVED]
    assert eng.stats["duplicate_labelset"] == 3


def test_a_failed_evaluation_is_logged_as_a_warning(make_rules):
    """The failure is a warning naming the rule, not a silent choice of one series."""
    eng = engine.Engine(make_rules(RULES), on_drop=pipeline.drop_reporter())
    with capture_logs() as logs:
        _evaluate(eng, 0, [CPU, MEM])
    assert [
        (entry["event"], entry["log_level"], entry["rule"], entry["reason"]) for entry in logs
    ] == [("rule_evaluation_failed", "warning", "Hot", "duplicate_labelset")]
