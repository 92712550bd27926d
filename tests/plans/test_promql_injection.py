"""Label values reach PromQL only inside a double-quoted string literal the plan wrote."""

from __future__ import annotations

import textwrap

import pytest

from controller.plans import loader, templates

HOSTILE = "x'} or vector(1) or up{a='"
"""A label value that turns a single-quoted matcher into `... or vector(1) ...`."""


def _problems(text: str) -> list[str]:
    _, found = loader.check_text(textwrap.dedent(text), file="plan.yaml", name="plan")
    return [str(problem) for problem in found]


def _verify_plan(query: str) -> str:
    return f"steps:\n  - id: check\n    verify:\n      promql: {query}\n      within: 1m\n"


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("\"up{instance='{{ labels.instance }}'} == 1\"", "single-quoted"),
        ("'up{instance={{ labels.instance }}} == 1'", "outside a string"),
        ("'vector({{ vars.count }})'", "outside a string"),
        ("'up{instance=`{{ labels.instance }}`}'", "backtick"),
        ("'up{instance=~\"{{ labels.instance }}\"}'", "regular expression"),
        ("'up{instance!~\"a|{{ labels.instance }}\"}'", "regular expression"),
        ("'up == 1 # \"{{ labels.instance }}\"'", "comment"),
    ],
)
def test_lint_refuses_a_reference_outside_a_double_quoted_string(query, why):
    """A reference single-quoted, bare, in backticks, a regex or a comment is refused at its column."""
    text = _verify_plan(query)
    line = 4
    if "vars." in query:
        text = "variables: {count: '1'}\n" + text
        line = 5
    column = len("      promql: ") + query.index("{{") + 1
    found = _problems(text)
    assert any(
        problem.startswith(f"plan.yaml:{line}:{column}: ") and why in problem for problem in found
    ), found


def test_lint_refuses_a_single_quoted_reference_in_a_scaling_metric():
    """The HPA metric query follows the same rule as verify.promql."""
    found = _problems(
        """\
        steps:
          - scale:
              target: {name: web, actuator: command, argv: ['true'], read_argv: [echo, '1']}
              policy:
                metric: "avg(rate(cpu{service='{{ labels.service }}'}[2m]))"
                target: 0.6
                max_replicas: 4
        """
    )
    assert any(
        problem.startswith("plan.yaml:5:40: ") and "single-quoted" in problem for problem in found
    ), found


def test_lint_accepts_double_quoted_references():
    """The documented form, a reference inside "...", lints clean in verify and in a metric."""
    assert _problems(_verify_plan("'up{instance=\"{{ labels.instance }}\"} == 1'")) == []
    assert (
        _problems(
            """\
            steps:
              - scale:
                  target: {name: web, actuator: command, argv: ['true'], read_argv: [echo, '1']}
                  policy:
                    metric: 'avg(rate(cpu{service="{{ labels.service }}"}[2m]))'
                    target: 0.6
                    max_replicas: 4
            """
        )
        == []
    )


def test_render_refuses_what_lint_refuses_and_escapes_the_rest():
    """At run time a reference outside "..." fails the step instead of reaching Prometheus."""
    scope = templates.Scope(labels={"instance": HOSTILE})
    with pytest.raises(templates.TemplateError, match="single-quoted"):
        templates.render_promql("up{instance='{{ labels.instance }}'} == 1", scope)
    rendered = templates.render_promql('up{instance="{{ labels.instance }}"} == 1', scope)
    assert rendered == "up{instance=\"x'} or vector(1) or up{a='\"} == 1"
    newline = templates.render_promql(
        'up{a="{{ labels.a }}"}', templates.Scope(labels={"a": 'q"\\\n\r'})
    )
    assert newline == 'up{a="q\\"\\\\\\n\\r"}'
