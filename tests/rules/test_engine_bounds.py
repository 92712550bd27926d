from __future__ import annotations

from timeline import at

from controller.domain import observations, transitions
from controller.rules import engine

RULES = """\
groups:
  - name: events
    rules:
      - name: Down
        source: webhook
        match: labels.kind == 'host'
        when: body.state == 'down'
        resource: host/{{ labels.host }}
        labels: {team: infra}
        annotations: {summary: "{{ body.detail }}"}
"""


def event(labels, *, detail="short"):
    return observations.Observation(
        source=observations.SourceKind.WEBHOOK,
        stream="default",
        at=at(0),
        labels={"kind": "host", "host": "h1", **labels},
        body={"state": "down", "detail": detail},
    )


def test_a_900_kb_label_reaches_the_transition_cut_with_a_marker(make_rules):
    """A 900 KB label value is carried cut to the bound, ending with a marker that says how much was cut."""
    eng = engine.Engine(make_rules(RULES))
    [fired] = eng.observe(event({"message": "x" * 900_000}))
    assert fired.labels["message"] == "x" * 2048 + "...[897952 characters cut]"
    assert fired.labels["host"] == "h1"


def test_an_annotation_rendered_from_a_huge_body_field_is_cut(make_rules):
    """An annotation whose template reads a 5 MB body field is cut to the bound."""
    eng = engine.Engine(make_rules(RULES), bounds=transitions.Bounds(max_value_length=100))
    [fired] = eng.observe(event({}, detail="d" * 5_000_000))
    assert len(fired.annotations["summary"]) < 200
    assert fired.annotations["summary"].endswith("...[4999900 characters cut]")


def test_labels_past_the_bound_are_left_out_and_counted(make_rules):
    """An event with 500 labels yields a transition with the bound's number of labels, the rule's own labels kept and the left-out ones counted."""
    eng = engine.Engine(make_rules(RULES), bounds=transitions.Bounds(max_labels=10))
    many = {f"field{n:03d}": "v" for n in range(500)}
    [fired] = eng.observe(event(many))
    assert len(fired.labels) == 10
    assert fired.labels["team"] == "infra"
    assert fired.labels["alertname"] == "Down"
    assert fired.labels[transitions.DROPPED_LABELS] == "495"  # 504 labels, 9 kept
    assert fired.labels["kind"] == "host"
