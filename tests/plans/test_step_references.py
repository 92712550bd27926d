"""``{{ steps.ID... }}``: what an earlier step gave reaches a later one, as a structured value."""

import textwrap

import pytest

from controller.plans import loader, templates

SCOPE = templates.Scope(
    labels={"service": "web"},
    steps={
        "provision": {
            "ok": True,
            "outcome": "succeeded",
            "output": {"json": {"address": {"value": "10.0.0.7"}, "ports": [80, 443]}},
        }
    },
)


def test_a_whole_reference_keeps_its_structure_and_text_gets_json():
    """A field that is one reference takes the object or list as it is; inside text it is JSON."""
    data = {
        "address": "{{ steps.provision.output.json.address.value }}",
        "ports": "{{ steps.provision.output.json.ports }}",
        "note": "ports {{ steps.provision.output.json.ports }} of {{ labels.service }}",
        "ok": "{{ steps.provision.ok }}",
    }
    assert templates.render_data(data, SCOPE) == {
        "address": "10.0.0.7",
        "ports": [80, 443],
        "note": "ports [80,443] of web",
        "ok": True,
    }


def test_a_missing_step_value_fails_the_step():
    """A path the earlier step did not produce is an error, not an empty string."""
    with pytest.raises(templates.TemplateError, match="has no value"):
        templates.render_data("{{ steps.provision.output.json.nope }}", SCOPE)
    with pytest.raises(templates.TemplateError, match="has no value"):
        templates.render("x {{ steps.other.ok }}", SCOPE)


def _problems(text: str) -> list[str]:
    _, found = loader.check_text(textwrap.dedent(text), file="plan.yaml", name="plan")
    return [str(problem) for problem in found]


def test_lint_accepts_earlier_steps_and_refuses_later_ones_and_the_ladder():
    """Only an earlier step of the same list may be named; escalation sees no steps."""
    assert (
        _problems(
            """\
        steps:
          - id: provision
            command: [terraform, apply]
          - id: deploy
            command:
              argv: [kubectl, apply]
              env: {ADDRESS: "{{ steps.provision.output.json.address }}"}
        """
        )
        == []
    )
    assert _problems(
        """\
        steps:
          - id: deploy
            command:
              argv: [kubectl, apply]
              env: {ADDRESS: "{{ steps.provision.output.json.address }}"}
          - id: provision
            command: [terraform, apply]
        escalation:
          - page: "{{ steps.provision.outcome }}"
        """
    ) == [
        (
            "plan.yaml:5:22: {{ steps.provision.output.json.address }}: 'provision' is not an "
            "earlier step of this list (earlier: none)"
        ),
        "plan.yaml:9:11: {{ steps.ID }} is only defined in steps, not here",
    ]
