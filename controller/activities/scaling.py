"""``scale_read`` and ``scale``: a target's replica count, through its actuator.

The policy (HPA math) runs in the workflow; these activities only read and set a count,
with whichever actuator the target names. The count always travels as data:

========  ==========================================  ======================================
actuator  read                                        set
========  ==========================================  ======================================
command   ``read_argv`` prints an integer             ``argv`` with ``HOMEOSTAT_VAR_REPLICAS``
http      ``GET url`` answers ``{"replicas": n}``     ``PUT url`` with ``{"replicas": n}``
playbook  the play reports ``homeostat_replicas``     extra vars ``homeostat_replicas`` (and
          with ``set_stats`` (``homeostat_action:      ``homeostat_previous``,
          read``)                                     ``homeostat_action: scale``)
========  ==========================================  ======================================

Setting the count the target already has is harmless with every actuator, so a retried
``scale`` is idempotent.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
from temporalio import activity

from controller import errors
from controller.activities import ansible, commands, failures, rest
from controller.plans import spec
from controller.workflows import activity_io

REPLICAS = "homeostat_replicas"
"""The extra var (set) and the ``set_stats`` key (read) of the playbook actuator."""


class ScaleActivities:
    """``scale_read`` and ``scale`` over the three actuators."""

    def __init__(
        self,
        *,
        playbooks: ansible.PlaybookActivities,
        runner: commands.CommandRunner,
        requests: rest.Requests,
        client: httpx.Client,
    ) -> None:
        """Actuate with these playbook, command and HTTP facilities."""
        self._playbooks = playbooks
        self._runner = runner
        self._requests = requests
        self._client = client

    @activity.defn(name=activity_io.SCALE_READ, no_thread_cancel_exception=True)
    def scale_read(self, request: activity_io.ScaleReadInput) -> activity_io.ScaleReadOutput:
        """The target's current replica count."""
        with failures.reported():
            target = request.target
            context = _sub(request.context, "read")
            match target.actuator:
                case spec.Actuator.COMMAND:
                    if not target.read_argv:
                        raise errors.PermanentError(
                            f"scale target {target.name!r} has no read_argv"
                        )
                    finished = self._command(context, target, target.read_argv, {})
                    return activity_io.ScaleReadOutput(replicas=_count(finished.stdout, target))
                case spec.Actuator.HTTP:
                    answer = self._http(target, "GET", None)
                    return activity_io.ScaleReadOutput(replicas=_count(answer, target))
                case spec.Actuator.PLAYBOOK:
                    stats = self._playbook(context, target, {"homeostat_action": "read"})
                    return activity_io.ScaleReadOutput(replicas=_count(stats.get(REPLICAS), target))
            raise errors.PermanentError(f"unknown actuator {target.actuator!r}")  # pragma: no cover

    @activity.defn(name=activity_io.SCALE, no_thread_cancel_exception=True)
    def scale(self, request: activity_io.ScaleInput) -> activity_io.ScaleOutput:
        """Set the target's replica count."""
        with failures.reported():
            target = request.target
            if request.replicas < 0:
                raise errors.PermanentError(f"cannot scale {target.name!r} to {request.replicas}")
            context = _sub(request.context, "scale")
            values: dict[str, Any] = {"replicas": request.replicas, "target": target.name}
            if request.previous is not None:
                values["previous"] = request.previous
            match target.actuator:
                case spec.Actuator.COMMAND:
                    self._command(context, target, target.argv, values)
                    return activity_io.ScaleOutput(replicas=request.replicas)
                case spec.Actuator.HTTP:
                    answer = self._http(
                        target, "PUT", {**target.variables, "replicas": request.replicas}
                    )
                    reported = answer.get("replicas") if isinstance(answer, dict) else None
                    replicas = reported if isinstance(reported, int) else request.replicas
                    return activity_io.ScaleOutput(replicas=replicas)
                case spec.Actuator.PLAYBOOK:
                    extra = {
                        "homeostat_action": "scale",
                        REPLICAS: request.replicas,
                        "homeostat_previous": request.previous,
                    }
                    stats = self._playbook(context, target, extra)
                    reported = stats.get(REPLICAS)
                    replicas = (
                        _count(reported, target) if reported is not None else request.replicas
                    )
                    return activity_io.ScaleOutput(replicas=replicas)
            raise errors.PermanentError(f"unknown actuator {target.actuator!r}")  # pragma: no cover

    def _command(
        self,
        context: activity_io.ActivityContext,
        target: spec.ScaleTarget,
        argv: tuple[str, ...],
        values: dict[str, Any],
    ) -> commands.Finished:
        if not argv:
            raise errors.PermanentError(f"scale target {target.name!r} has no argv")
        variables = {name: str(value) for name, value in {**target.variables, **values}.items()}
        finished = self._runner.run(
            context=context, argv=argv, env=commands.variable_env(variables)
        )
        if finished.exit_code != 0:
            raise errors.TransientError(
                f"{argv[0]} exited with {finished.exit_code}: {finished.stderr[-500:]}"
            )
        return finished

    def _http(self, target: spec.ScaleTarget, method: str, body: Any) -> Any:
        if not target.url:
            raise errors.PermanentError(f"scale target {target.name!r} has no url")
        request = spec.HttpRequest(
            method=method, url=target.url, json_body=body, credentials=target.credentials
        )
        answer = rest.send_sync(self._client, self._requests, request)
        if not answer.ok:
            raise errors.PermanentError(
                f"{method} {target.url} answered {answer.status}: {answer.text[-300:]}"
            )
        return answer.json_body

    def _playbook(
        self,
        context: activity_io.ActivityContext,
        target: spec.ScaleTarget,
        extra: dict[str, Any],
    ) -> dict[str, Any]:
        if not target.playbook:
            raise errors.PermanentError(f"scale target {target.name!r} has no playbook")
        request = activity_io.RunPlaybookInput(
            context=context,
            playbook=target.playbook,
            extra_vars={**target.variables, "homeostat_target": target.name, **extra},
        )
        report = self._playbooks.run(request, resume=False)
        if not report.output.ok:
            bad = ", ".join(f"{r.host}: {r.message}" for r in report.output.hosts if not r.ok)
            raise errors.TransientError(f"{target.playbook} failed: {bad[:500]}")
        return report.stats


def _sub(context: activity_io.ActivityContext, part: str) -> activity_io.ActivityContext:
    """The context of one half (read or set) of a scale step: its own run directory."""
    return dataclasses.replace(context, step=f"{context.step}#{part}")


def _count(value: Any, target: spec.ScaleTarget) -> int:
    """A replica count from an actuator's answer.

    Raises:
        errors.PermanentError: the answer is not a non-negative integer.
    """
    if isinstance(value, dict):
        value = value.get("replicas")
    if isinstance(value, str):
        value = value.strip()
        value = int(value) if value.isdigit() else value
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise errors.PermanentError(
            f"scale target {target.name!r}: no replica count in the answer {str(value)[:100]!r}"
        )
    return value
