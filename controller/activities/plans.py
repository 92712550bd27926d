"""The ``load_plan`` activity: a remediation plan of the rule set in force.

When the worker runs beside ingest (``homeostat up``), plans come from the rule set ingest
loaded: rules, plans and playbooks validated together, so an episode runs the plan of the
same revision as the rule that fired it, and a broken edit on disk (not yet, or never,
loaded) is never run. A worker on its own reads ``remediations/NAME.yaml`` at run time, so
a plan edited in git takes effect at the next episode. Either way the plan's revision
(content hash) goes into the episode's history. An invalid plan is not an error of the
activity: it is answered with the problem, at its ``file:line:column``, for the workflow
to record and escalate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path

from temporalio import activity

from controller import errors
from controller.activities import failures
from controller.plans import loader, spec
from controller.workflows import activity_io


class PlanActivities:
    """``load_plan``, reading the plans of one directory."""

    def __init__(
        self,
        *,
        remediations_dir: Path,
        current: Callable[[], Mapping[str, spec.Plan]] | None = None,
    ) -> None:
        """Read plans from ``current()`` when given, else from ``remediations_dir``."""
        self._directory = remediations_dir
        self._current = current

    @activity.defn(name=activity_io.LOAD_PLAN)
    def load_plan(self, request: activity_io.LoadPlanInput) -> activity_io.LoadPlanOutput:
        """The plan called ``request.name``, or why there is none (named, for the timeline)."""
        return dataclasses.replace(self._load(request), name=request.name)

    def _load(self, request: activity_io.LoadPlanInput) -> activity_io.LoadPlanOutput:
        with failures.reported():
            if not loader.model_name_ok(request.name):
                return activity_io.LoadPlanOutput(
                    problem=f"{request.name!r} is not a plan name (lower-case letters, "
                    "digits and '_.-')"
                )
            if self._current is not None:
                plan = self._current().get(request.name)
                if plan is None:
                    return activity_io.LoadPlanOutput(
                        problem=f"no plan {request.name!r} in the rule set in force"
                    )
                return activity_io.LoadPlanOutput(plan=plan)
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
