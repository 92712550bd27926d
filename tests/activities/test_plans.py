"""The load_plan activity over the shipped remediations and broken ones."""

from __future__ import annotations

from pathlib import Path

from controller.activities import plans
from controller.workflows import activity_io

SHIPPED = Path(__file__).resolve().parents[2] / "remediations"


def load(directory: Path, name: str) -> activity_io.LoadPlanOutput:
    return plans.PlanActivities(remediations_dir=directory).load_plan(
        activity_io.LoadPlanInput(name=name)
    )


def test_shipped_plan_loads_with_its_revision():
    """A shipped plan comes back validated, with its source and content revision."""
    out = load(SHIPPED, "restart-service")
    assert out.plan is not None
    assert out.problem == ""
    assert out.plan.name == "restart-service"
    assert [step.id for step in out.plan.steps] == ["restart", "answering"]
    assert out.plan.revision


def test_missing_invalid_and_misnamed_plans_are_answered_with_the_problem(tmp_path):
    """No plan, a broken plan and a path-like name are answers with a problem, not errors."""
    (tmp_path / "broken.yaml").write_text("steps:\n  - id: x\n    frobnicate: {}\n")
    missing = load(tmp_path, "nothing-here")
    broken = load(tmp_path, "broken")
    sneaky = load(tmp_path, "../remediations/restart-service")
    assert missing.plan is None
    assert "no plan 'nothing-here'" in missing.problem
    assert broken.plan is None
    assert broken.problem.startswith(f"{tmp_path / 'broken.yaml'}:3:")
    assert sneaky.plan is None
    assert "not a plan name" in sneaky.problem
