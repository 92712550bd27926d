"""Plan lint finds what used to surface only at run time: misspelled step ids, variables, fields."""

from __future__ import annotations

import textwrap

import pytest

from controller.plans import loader


def _problems(text: str) -> list[str]:
    _, found = loader.check_text(textwrap.dedent(text), file="plan.yaml", name="plan")
    return [str(problem) for problem in found]


def test_a_misspelled_step_id_in_when_is_refused_at_its_column():
    """`when: steps.frist.ok` names no earlier step: lint says so instead of skipping at run time."""
    found = _problems(
        """\
        steps:
          - id: first
            wait: 1s
          - id: second
            when: steps.frist.ok
            wait: 1s
        """
    )
    assert found == [
        "plan.yaml:5:17: unknown step id 'frist' in steps.frist (steps before this one: first)"
    ]


def test_a_step_may_only_read_steps_before_it_at_its_own_level():
    """A later step, the step itself, or an outer step inside for_each are not results yet."""
    found = _problems(
        """\
        steps:
          - id: early
            when: steps.late.ok
            wait: 1s
          - id: late
            wait: 1s
          - id: fan
            for_each:
              items: [a, b]
              steps:
                - id: inner
                  when: steps.early.ok && steps.inner.ok
                  wait: 1s
        """
    )
    assert any(problem.startswith("plan.yaml:3:17: unknown step id 'late'") for problem in found)
    assert any(problem.startswith("plan.yaml:12:23: unknown step id 'early'") for problem in found)
    assert any(problem.startswith("plan.yaml:12:41: unknown step id 'inner'") for problem in found)


def test_unknown_fields_and_variables_in_conditions_are_refused():
    """A step result has ok, outcome and output; vars must be declared; strings have no fields."""
    found = _problems(
        """\
        variables: {service: web}
        steps:
          - id: restart
            wait: 1s
          - id: check
            when: steps.restart.okay || vars.servce == 'web' || resource.kind == 'host'
            verify:
              cel: steps.restart.outcome == 'succeeded' && vars.service == 'web'
              within: 1m
        """
    )
    assert found == [
        "plan.yaml:6:25: steps.restart has no field 'okay' (a step result has ok, outcome, seconds, output)",
        "plan.yaml:6:38: unknown variable vars.servce (declared: service)",
        (
            "plan.yaml:6:66: resource is a string: resource.kind reads no field "
            "(use the template {{ resource.kind }} in a step, or resource.startsWith(...))"
        ),
    ]


def test_conditions_that_read_what_exists_lint_clean():
    """Earlier steps, their output, declared variables and string literals mentioning steps are fine."""
    assert (
        _problems(
            """\
            variables: {service: web}
            steps:
              - id: restart
                wait: 1s
              - when: steps.restart.ok && steps.restart.output.exit_code == 0 && vars.service == 'web'
                wait: 1s
              - when: "steps.step_2.outcome == 'succeeded' && labels.note != 'steps.nope.ok'"
                wait: 1s
            """
        )
        == []
    )


@pytest.mark.parametrize("field", ["ok", "outcome", "output"])
def test_each_result_field_is_known(field):
    """Every field a step result really has lints clean."""
    text = f"steps:\n  - id: a\n    wait: 1s\n  - when: has(steps.a.{field})\n    wait: 1s\n"
    assert _problems(text) == []
