from __future__ import annotations

import pytest
from timeline import Series, at

from controller.domain import transitions
from controller.rules import engine

RULES = """\
groups:
  - name: g
    rules:
      - name: HighCpu
        expr: cpu > 0.9
        for: {hold}
        keep_firing_for: {keep}
        resource: service/{{{{ labels.service }}}}
        remediation: scale-out
        severity: critical
        labels: {{team: web}}
        annotations: {{summary: "{{{{ $labels.instance }}}} at {{{{ $value }}}}"}}
"""

WEB = {"__name__": "cpu", "service": "web", "instance": "a"}


def build(make_rules, *, hold="2m", keep="0"):
    return engine.Engine(make_rules(RULES.format(hold=hold, keep=keep)))


def run(eng, steps):
    """Evaluate at 0, 60, 120 ... s; each step lists present series (labels dicts)."""
    out = []
    for index, present in enumerate(steps):
        out += eng.evaluate(
            "HighCpu", at(60 * index), [Series(labels=labels, value=0.95) for labels in present]
        )
    return out


def test_fires_after_for_and_resolves(make_rules):
    """Pending for `for`, fires at the first evaluation `for` after activation, resolves when absent."""
    eng = build(make_rules)
    found = run(eng, [[WEB], [WEB], [WEB], [WEB], []])
    assert [(t.kind, t.at) for t in found] == [
        (transitions.TransitionKind.FIRED, at(120)),
        (transitions.TransitionKind.RESOLVED, at(240)),
    ]
    fired = found[0]
    assert fired.resource == "service/web"
    assert fired.started_at == at(120)
    assert fired.episode == transitions.episode_id(
        rule="HighCpu", resource=fired.resource, started_at=at(120)
    )
    assert fired.labels == {
        "alertname": "HighCpu",
        "service": "web",
        "instance": "a",
        "team": "web",
    }
    assert fired.annotations == {"summary": "a at 0.95"}
    assert fired.remediation == "scale-out"
    assert fired.severity is transitions.Severity.CRITICAL
    assert found[1].episode == fired.episode


def test_missing_evaluation_resets_pending(make_rules):
    """One evaluation without the series resets the pending alert."""
    eng = build(make_rules)
    assert run(eng, [[WEB], [WEB], [], [WEB], [WEB]]) == []
    assert eng.evaluate("HighCpu", at(300), [Series(labels=WEB)])[0].started_at == at(300)


def test_no_for_fires_on_first_true(make_rules):
    """Without `for`, the first evaluation that returns the series fires it."""
    eng = build(make_rules, hold="0")
    assert [t.at for t in run(eng, [[WEB]])] == [at(0)]


def test_keep_firing_for_holds_and_continues(make_rules):
    """keep_firing_for keeps firing through a gap; a reappearance continues the same episode."""
    eng = build(make_rules, hold="0", keep="2m")
    found = run(eng, [[WEB], [], [WEB], [], [], [], []])
    kinds = [(t.kind, t.at) for t in found]
    # Absent at 60 (kept), back at 120 (same episode), absent from 180: resolved at 180 + 120.
    assert kinds == [
        (transitions.TransitionKind.FIRED, at(0)),
        (transitions.TransitionKind.RESOLVED, at(300)),
    ]


def test_two_series_one_resource_one_episode(make_rules):
    """Two instances of one service make one episode, resolved when the last one goes."""
    eng = build(make_rules, hold="0")
    other = {**WEB, "instance": "b"}
    found = run(eng, [[WEB], [WEB, other], [other], []])
    assert [(t.kind, t.at) for t in found] == [
        (transitions.TransitionKind.FIRED, at(0)),
        (transitions.TransitionKind.RESOLVED, at(180)),
    ]
    assert len(eng.firing("HighCpu")) == 0


def test_firing_lists_alerts_like_promtool(make_rules):
    """firing() shows each firing series with alert labels and annotations."""
    eng = build(make_rules, hold="0")
    run(eng, [[WEB, {**WEB, "instance": "b", "service": "api"}]])
    alerts = eng.firing("HighCpu")
    assert [a.labels["instance"] for a in alerts] == ["a", "b"]
    assert {a.resource for a in alerts} == {"service/web", "service/api"}


def test_invalid_resource_is_counted_not_raised(make_rules):
    """A series whose labels render no valid resource is dropped and counted."""
    eng = build(make_rules, hold="0")
    assert eng.evaluate("HighCpu", at(0), [Series(labels={"__name__": "cpu"})]) == []
    assert eng.stats["invalid_resource"] == 1


def test_group_evaluation_and_unknown_target(make_rules):
    """A group evaluation takes results by rule; unknown names raise KeyError."""
    eng = build(make_rules, hold="0")
    found = eng.evaluate("g", at(0), {"HighCpu": [Series(labels=WEB)]})
    assert len(found) == 1
    with pytest.raises(KeyError):
        eng.evaluate("nope", at(0), [])


def test_cooldown_delays_the_next_episode(make_rules):
    """A second episode within the cooldown starts when the cooldown ends, if still firing."""
    text = RULES.format(hold="0", keep="0").replace(
        "severity: critical", "severity: critical\n        cooldown: 5m"
    )
    eng = engine.Engine(make_rules(text))
    found = run(eng, [[WEB], [], [WEB], [WEB], [WEB], [WEB], [WEB], [WEB]])
    fired = [t.started_at for t in found if t.kind is transitions.TransitionKind.FIRED]
    assert fired == [at(0), at(300)]


def test_replay_gives_same_transitions(make_rules):
    """Replaying the same evaluations into a new engine yields identical transitions."""
    steps = [[WEB], [WEB], [WEB], [], [WEB], [WEB], [WEB], [WEB]]
    first = run(build(make_rules), steps)
    second = run(build(make_rules), steps)
    assert first == second
    assert len({t.episode for t in first}) == 2


def test_hot_reload_keeps_state_of_unchanged_rules(make_rules):
    """replace_rules keeps pending state when a rule is unchanged; a changed rule resolves."""
    eng = build(make_rules)
    run(eng, [[WEB], [WEB]])
    same = make_rules(RULES.format(hold="2m", keep="0").replace("summary:", "description:"))
    assert eng.replace_rules(same) == []
    fired = eng.evaluate("HighCpu", at(120), [Series(labels=WEB)])
    assert [t.at for t in fired] == [at(120)]
    assert fired[0].revision == str(same.revision)
    changed = make_rules(RULES.format(hold="3m", keep="0"))
    resolved = eng.replace_rules(changed)
    assert [(t.kind, t.at) for t in resolved] == [(transitions.TransitionKind.RESOLVED, at(120))]
