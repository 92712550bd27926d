"""The ``load_plan`` activity: a remediation plan read from ``remediations/NAME.yaml``.

Plans are read at run time, not at worker start, so a plan edited in git takes effect at
the next episode; the plan's revision (content hash) goes into the episode's history. An
invalid plan is not an error of the activity: it is answered with the problem, at its
``file:line:column``, for the workflow to record and escalate.
"""

from __future__ import annotations

from pathlib import Path

from temporalio import activity

from controller import errors
from controller.activities import failures
from controller.plans import loader
from controller.workflows import activity_io


class PlanActivities:
    """``load_plan``, reading the plans of one directory."""

    def __init__(self, *, remediations_dir: Path) -> None:
        """Read plans from ``remediations_dir``."""
        self._directory = remediations_dir

    @activity.defn(name=activity_io.LOAD_PLAN)
    def load_plan(self, request: activity_io.LoadPlanInput) -> activity_io.LoadPlanOutput:
        """The plan called ``request.name``, or why there is none."""
        with failures.reported():
            if not loader.model_name_ok(request.name):
                return activity_io.LoadPlanOutput(
                    problem=f"{request.name!r} is not a plan name (lower-case letters, "
                    "digits and '_.-')"
                )
            if not self._directory.is_dir():
                raise errors.TransientError(f"plan directory {self._directory} is not readable")
            try:
                plan = loader.find_plan(self._directory, request.name)
            except errors.RuleFileError as exc:
                return activity_io.LoadPlanOutput(problem=str(exc))
            except OSError as exc:
                raise errors.TransientError(f"plan {request.name!r} cannot be read: {exc}") from exc
            if plan is None:
                return activity_io.LoadPlanOutput(
                    problem=f"no plan {request.name!r} in {self._directory}"
                )
            return activity_io.LoadPlanOutput(plan=plan)
