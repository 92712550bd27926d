"""The plan loader: shipped plans load, and every kind of mistake is reported at its position."""

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.contrib.pydantic import pydantic_data_converter

from controller import errors
from controller.plans import loader, spec, templates
from controller.workflows import converter

ROOT = Path(__file__).parents[2]


def _problems(text: str, *, playbooks_dir: Path | None = None) -> list[str]:
    plan, found = loader.check_text(
        textwrap.dedent(text), file="plan.yaml", name="plan", playbooks_dir=playbooks_dir
    )
    assert (plan is None) == bool(found)
    return [str(problem) for problem in found]


def test_shipped_plans_lint_clean():
    """Every plan in remediations/ passes lint, with every playbook it names present."""
    assert loader.lint_plans(ROOT / "remediations", playbooks_dir=ROOT / "playbooks") == []


def test_shipped_plans_load_into_spec():
    """The restart plan loads with its steps, budget, cooldown and ladder as written."""
    plans = loader.load_plans(ROOT / "remediations")
    restart = plans["restart-service"]
    assert restart.cooldown == timedelta(minutes=15)
    assert restart.budget == spec.Budget(runs=3, per=timedelta(hours=1))
    assert restart.concurrency is spec.Concurrency.MERGE
    assert [step.kind for step in restart.steps] == ["playbook", "verify"]
    first = restart.steps[0]
    assert isinstance(first, spec.PlaybookStep)
    assert first.playbook == "restart_service.yml"
    assert first.vars == {"service": "{{ vars.service }}"}
    assert [rung.action.kind for rung in restart.escalation] == ["page", "ticket"]
    assert restart.escalation[1].after == timedelta(minutes=30)
    assert len(restart.revision) == 12


def test_plan_round_trips_through_the_data_converter():
    """A loaded plan survives the trip through Temporal's payload converter unchanged."""
    plans = loader.load_plans(ROOT / "remediations")
    payloads = converter.DATA_CONVERTER.payload_converter.to_payloads(list(plans.values()))
    back = pydantic_data_converter.payload_converter.from_payloads(
        payloads, [spec.Plan] * len(plans)
    )
    assert back == list(plans.values())


def test_shorthands_and_defaults():
    """Scalar shorthands expand, and steps without an id are numbered."""
    plan, found = loader.check_text(
        textwrap.dedent(
            """
            steps:
              - command: [systemctl, restart, web]
              - wait: 30s
              - page: "{{ labels.instance }} restarted"
                retry: 5
            """
        ),
        file="p.yaml",
        name="p",
    )
    assert found == []
    assert plan is not None
    command, wait, page = plan.steps
    assert isinstance(command, spec.CommandStep)
    assert command.argv == ("systemctl", "restart", "web")
    assert command.id == "step_1"
    assert isinstance(wait, spec.WaitStep)
    assert wait.duration == timedelta(seconds=30)
    assert isinstance(page, spec.PageStep)
    assert page.retry.max_attempts == 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("steps:\n  - playbok: a.yml\n", "plan.yaml:2:5: unknown step type 'playbok'"),
        ("cooldown: 5x\nsteps: [{wait: 1s}]\n", "plan.yaml:1:11: cooldown: '5x' is not a duration"),
        ("steps:\n  - wait: 1s\n    tiemout: 3s\n", "plan.yaml:3:5: unknown step type 'tiemout'"),
        (
            "steps:\n  - command: [echo, '{{ labels.x }}']\n",
            "plan.yaml:2:14: steps[0].command.argv: argv is literal",
        ),
        (
            "steps:\n  - when: 'labels.x == '\n    wait: 1s\n",
            "plan.yaml:2:11: CEL Syntax error",
        ),
        (
            "steps:\n  - when: 'nope == 1'\n    wait: 1s\n",
            "plan.yaml:2:11: CEL: unknown variable 'nope'",
        ),
        (
            "steps:\n  - page: '{{ vars.service }}'\n",
            "plan.yaml:2:11: {{ vars.service }} is not declared in 'variables'",
        ),
        (
            "steps:\n  - page: '{{ item }}'\n",
            "plan.yaml:2:11: {{ item }} is only defined inside for_each",
        ),
        (
            "steps:\n  - page: '{{ labels.x | upper }}'\n",
            "plan.yaml:2:11: unsupported reference {{ labels.x | upper }}",
        ),
        (
            "steps:\n  - {id: a, wait: 1s}\n  - {id: a, wait: 2s}\n",
            "plan.yaml:3:10: duplicate step id 'a'",
        ),
        (
            "steps:\n  - {wait: 1s, page: x}\n",
            "plan.yaml:2:5: steps[0]: a step has exactly one step type, found page, wait",
        ),
        (
            "description: nothing\n",
            "plan.yaml:1:1: (document): a plan has 'steps', 'escalation' or both",
        ),
        (
            "steps: [{wait: 1s}]\nconcurrency: sometimes\n",
            "plan.yaml:2:14: concurrency: Input should be",
        ),
        ("steps: [{wait: 1s}]\nsteps: []\n", "plan.yaml:2:1: duplicate key 'steps'"),
        (
            "steps:\n  - verify: {promql: 'up == 1', cel: 'true'}\n",
            "plan.yaml:2:13: steps[0].verify: a verify step sets exactly one",
        ),
    ],
)
def test_problem_positions(text, expected):
    """Each mistake is reported once, at the file:line:column where it was written."""
    found = _problems(text)
    assert any(problem.startswith(expected) for problem in found), found


def test_unknown_playbook(tmp_path):
    """A plan naming a playbook that is not in the playbooks dir fails lint at that name."""
    (tmp_path / "known.yml").write_text("- hosts: all\n")
    found = _problems(
        "steps:\n  - playbook: known.yml\n  - playbook: {path: missing.yml}\n  - playbook: ../x.yml\n",
        playbooks_dir=tmp_path,
    )
    assert found == [
        f"plan.yaml:3:22: unknown playbook 'missing.yml' (not in {tmp_path})",
        "plan.yaml:4:15: playbook '../x.yml' must be inside the playbooks dir",
    ]


def test_lint_directory(tmp_path):
    """Lint reports each file's problems and a plan defined twice; find_plan finds by name."""
    (tmp_path / "good.yaml").write_text("steps: [{wait: 1s}]\n")
    (tmp_path / "good.yml").write_text("steps: [{wait: 1s}]\n")
    (tmp_path / "bad.yaml").write_text("steps: [{sleep: 1s}]\n")
    found = [str(problem) for problem in loader.lint_plans(tmp_path, playbooks_dir=tmp_path)]
    assert found[0].startswith(f"{tmp_path / 'bad.yaml'}:1:10: unknown step type 'sleep'")
    assert (
        found[1] == f"{tmp_path / 'good.yml'}:1:1: plan 'good' is defined twice (also in good.yaml)"
    )
    assert loader.find_plan(tmp_path, "missing") is None
    good = loader.find_plan(tmp_path, "good")
    assert good is not None
    assert good.name == "good"
    with pytest.raises(errors.RuleFileError, match="unknown step type"):
        loader.find_plan(tmp_path, "bad")


def test_templates_substitute_data_never_code():
    """References become values; PromQL and URL parts are escaped; unknown forms are refused."""
    scope = templates.Scope(labels={"instance": 'a"b\\c'}, resource="service/web", item="h1")
    assert templates.render(
        'up{instance="{{ labels.instance }}"}', scope, escape=templates.promql_string
    ) == ('up{instance="a\\"b\\\\c"}')
    assert templates.render(
        "https://x/{{ labels.instance }}", scope, escape=templates.url_part
    ) == ("https://x/a%22b%5Cc")
    assert templates.render("{{ resource.name }}/{{ item }}", scope) == "web/h1"
    assert templates.render("{{ labels.missing }}!", scope, strict=False) == "!"
    with pytest.raises(templates.TemplateError, match="has no value"):
        templates.render("{{ labels.missing }}", scope)
    with pytest.raises(templates.TemplateError, match="never closed"):
        templates.references("{{ labels.x ")
