from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from controller.domain import observations
from controller.rules import loader, model

REPO = Path(__file__).parents[2]


def test_shipped_rules_load():
    """The example rules in rules/ load, one of each family."""
    rule_set = loader.load_rule_set(REPO / "rules", known_remediations=None)
    families = {rule.family for rule in rule_set.rules.values()}
    assert families == set(model.Family)
    cpu = rule_set.rules["ServiceHighCpu"]
    assert cpu.hold == timedelta(minutes=5)
    assert cpu.keep_firing_for == timedelta(minutes=2)
    assert rule_set.rules["ConsumerLagHigh"].source is observations.SourceKind.KAFKA


def test_unknown_key_reported_at_its_position(lint_text):
    """A typo in a key is an error at that key's line and column."""
    errors = lint_text(
        """\
        groups:
          - name: g
            rules:
              - name: A
                expr: up == 0
                fore: 5m
                resource: service/{{ labels.job }}
        """
    )
    assert errors == ["rules.yaml:6:9: unknown key 'fore' in groups[0].rules[0]"]


def test_bad_duration_reported_at_value(lint_text):
    """A malformed duration names the value's position and the expected form."""
    errors = lint_text(
        """\
        groups:
          - name: g
            rules:
              - name: A
                expr: up == 0
                for: 5 minutes
                resource: service/{{ labels.job }}
        """
    )
    assert len(errors) == 1
    assert errors[0].startswith(
        "rules.yaml:6:14: groups[0].rules[0].for: '5 minutes' is not a duration"
    )


def test_cel_syntax_error_points_inside_the_expression(lint_text):
    """A CEL syntax error names the column of the offending token in the file."""
    errors = lint_text(
        """\
        groups:
          - name: g
            rules:
              - name: A
                source: kafka
                match: labels.type == 'x' &&
                resource: service/{{ labels.app }}
        """
    )
    assert len(errors) == 1
    # The value starts at column 16; CEL reports the end of its 21 characters (column 22).
    assert errors[0].startswith("rules.yaml:6:37: CEL Syntax error")


def test_cel_error_in_block_scalar(lint_text):
    """Positions inside a block scalar count from its first content line."""
    errors = lint_text(
        """\
        groups:
          - name: g
            rules:
              - name: A
                source: kafka
                match: |
                  labels.type == 'x'
                    && body.n >
                resource: service/{{ labels.app }}
        """
    )
    assert len(errors) == 1
    # End of input: just after `>` on the block's second line (indent 10 + 13 characters).
    assert errors[0].startswith("rules.yaml:8:24: CEL Syntax error")


def test_cel_unknown_variable(lint_text):
    """An expression reading a variable that event rules do not have is an error."""
    errors = lint_text(
        """\
        groups:
          - name: g
            rules:
              - name: A
                source: webhook
                match: event.type == 'x'
                resource: service/{{ labels.app }}
        """
    )
    assert errors == [
        "rules.yaml:6:16: CEL: unknown variable 'event'; this rule's expressions see body, labels, stream"
    ]


def test_unknown_remediation(lint_text):
    """A remediation that names no plan is an error at the name."""
    errors = lint_text(
        """\
        groups:
          - name: g
            rules:
              - name: A
                expr: up == 0
                resource: service/{{ labels.job }}
                remediation: restart-it
        """,
        known={"restart-service"},
    )
    assert errors == ["rules.yaml:7:22: unknown remediation 'restart-it' (known: restart-service)"]


def test_template_label_the_expression_cannot_produce(lint_text):
    """A template reading a label dropped by `sum by (...)` is an error at that label."""
    errors = lint_text(
        """\
        groups:
          - name: g
            rules:
              - name: A
                expr: sum by (job) (rate(x[5m])) > 1
                resource: service/{{ labels.service }}
                annotations:
                  summary: "{{ $labels.job }} on {{ $labels.instance }}"
        """
    )
    why = "which the expression cannot produce (its series carry job)"
    assert errors == [
        f"rules.yaml:6:37: template reads label 'service', {why}",
        f"rules.yaml:8:53: template reads label 'instance', {why}",
    ]


def test_template_with_code_is_rejected(lint_text):
    """Templates substitute; anything that would run code is an error."""
    errors = lint_text(
        """\
        groups:
          - name: g
            rules:
              - name: A
                expr: up == 0
                resource: "service/{{ range .Alerts }}x{{ end }}"
        """
    )
    assert len(errors) == 1
    assert errors[0].startswith(
        "rules.yaml:6:31: template: unsupported template expression 'range .Alerts'"
    )


def test_resource_template_must_render_a_key(lint_text):
    """A resource template that cannot render `kind/name` is an error."""
    errors = lint_text(
        """\
        groups:
          - name: g
            rules:
              - name: A
                expr: up == 0
                resource: "{{ labels.job }}"
        """
    )
    assert len(errors) == 1
    assert "resource template cannot render a resource key" in errors[0]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (
            ["source: kafka", "expr: up == 0", "match: labels.a == 'b'"],
            "7:9: 'expr' does not apply",
        ),
        (["expr: up == 0", "when: body.x > 1"], "7:9: 'when' does not apply to prometheus rules"),
        (
            ["source: alertmanager", "match: labels.a == 'b'", "for: 5m"],
            "8:9: 'for' does not apply",
        ),
        (["source: webhook"], "4:9: missing required key 'match'"),
        (
            ["source: webhook", "all: [{match: labels.a == 'b'}]"],
            "4:9: missing required key 'within'",
        ),
        (
            ["source: webhook", "match: labels.a == 'b'", "within: 5m"],
            "8:9: 'within' needs 'all' or 'any'",
        ),
        (
            ["severity: fatal", "expr: up == 0"],
            "6:19: groups[0].rules[0].severity: Input should be",
        ),
    ],
)
def test_keys_by_source(lint_text, lines, expected):
    """Which keys apply depends on the rule's source; misuse names the key."""
    head = [
        "groups:",
        "  - name: g",
        "    rules:",
        "      - name: A",
        "        resource: service/x",
    ]
    errors = lint_text("\n".join(head + ["        " + line for line in lines]) + "\n")
    assert any(error.startswith("rules.yaml:" + expected) for error in errors), errors


def test_duplicate_rule_names_across_files(tmp_path):
    """Rule names are unique across the whole rule set."""
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text(
            "groups:\n  - name: g-" + name[0] + "\n    rules:\n      - name: Same\n"
            "        expr: up == 0\n        resource: service/{{ labels.job }}\n"
        )
    errors = loader.lint([tmp_path], known_remediations=None)
    assert [str(error) for error in errors] == [
        f"{tmp_path}/b.yaml:4:15: duplicate rule name 'Same'"
    ]


def test_load_raises_with_every_problem(tmp_path):
    """load_rule_set raises one error that carries all problems."""
    (tmp_path / "r.yaml").write_text(
        "groups:\n  - name: g\n    rules:\n      - name: A\n        expr: up\n"
    )
    (tmp_path / "s.yaml").write_text("groups: [\n")
    with pytest.raises(loader.RuleSetError) as caught:
        loader.load_rule_set(tmp_path, known_remediations=None)
    assert len(caught.value.problems) == 2
    assert "(and 1 more)" in str(caught.value)


def test_disabled_rules_are_left_out(make_rules):
    """enabled: false keeps the rule in the file and out of the engine."""
    rule_set = make_rules(
        """\
        groups:
          - name: g
            rules:
              - {name: A, expr: up == 0, resource: "service/{{ labels.job }}", enabled: false}
              - {name: B, expr: up == 0, resource: "service/{{ labels.job }}"}
        """
    )
    assert list(rule_set.rules) == ["B"]


def test_revision_changes_with_content(make_rules):
    """The revision is a content hash: a different file gives a different revision."""
    text = "groups:\n  - name: g\n    rules:\n      - {name: A, expr: up == 0, resource: 'service/x'}\n"
    first, again = make_rules(text), make_rules(text)
    other = make_rules(text.replace("up == 0", "up == 1"))
    assert first.revision.content_hash == again.revision.content_hash
    assert first.revision.content_hash != other.revision.content_hash
    assert str(first.revision).startswith("sha256:")
