"""Run a plan's steps in order: conditions, approvals, waits, fan-out, and what a failure means.

``Runner.run`` returns ``None`` when every step went through, or the ``Outcome`` that stops
the plan (escalate, abort, denied, cancelled, timed out), as each step's ``on_failure`` and
each approval's ``on_timeout`` say. Every step leaves a ``StepRecord``; together they are
the episode's timeline.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from controller.plans import spec, templates
    from controller.workflows import actions, conditions, telemetry
    from controller.workflows import activity_io as io
    from controller.workflows import remediation_io as rio

_SPLIT = re.compile(r"[,\s]+")
_Action = Callable[[actions.Env, Any, str, "str | None", actions.Results], Awaitable[actions.Done]]
_ACTIONS: Mapping[str, _Action] = {
    "playbook": actions.playbook,
    "command": actions.command,
    "http": actions.http,
    "page": actions.page,
    "ticket": actions.ticket,
    "scale": actions.scale,
    "slack": actions.slack,
}


class Hooks(Protocol):
    """What the runner needs from its workflow: signals, timers and progress reports."""

    async def report(self, phase: rio.ProgressPhase, step: str, message: str = "") -> None:
        """Tell the resource workflow (and queries) what the remediation is doing."""

    async def decision(
        self, *, step: spec.ApproveStep, path: str, message: str, deadline: timedelta
    ) -> rio.Decision | None:
        """Report that the step awaits approval; the answer, or ``None`` past the deadline."""

    async def sleep(self, duration: timedelta) -> bool:
        """Wait; ``False`` when the remediation was cancelled meanwhile."""

    def cancelled(self) -> bool:
        """Whether the episode resolved and the plan stops remediations on resolve."""


class Runner:
    """Runs steps and collects their records."""

    def __init__(self, *, env: actions.Env, hooks: Hooks, deadline: datetime) -> None:
        """Run in ``env``; ``deadline`` is the plan's time limit."""
        self.env = env
        self.hooks = hooks
        self.deadline = deadline
        self.records: list[rio.StepRecord] = []

    async def run(
        self, steps: tuple[spec.Step, ...], *, prefix: str = "", item: str | None = None
    ) -> rio.Outcome | None:
        """Run ``steps`` in order; the outcome that stopped them, or ``None``."""
        results: dict[str, rio.StepRecord] = {}
        for step in steps:
            interrupted = self.interrupted()
            if interrupted is not None:
                return interrupted
            record = await self.one(step, f"{prefix}{step.id}", item, results)
            results[step.id] = record
            stop = _stop(step, record)
            if stop is not None:
                return stop
        return None

    def interrupted(self) -> rio.Outcome | None:
        """``CANCELLED`` or ``TIMED_OUT`` when the plan must stop now."""
        if self.hooks.cancelled():
            return rio.Outcome.CANCELLED
        if workflow.now() >= self.deadline:
            return rio.Outcome.TIMED_OUT
        return None

    def remaining(self, wanted: timedelta) -> timedelta:
        """``wanted``, cut to the time left before the plan's deadline."""
        return max(timedelta(0), min(wanted, self.deadline - workflow.now()))

    async def one(
        self,
        step: spec.Step,
        path: str,
        item: str | None,
        results: Mapping[str, rio.StepRecord],
    ) -> rio.StepRecord:
        """Run one step (unless its condition is false) and record it."""
        started = workflow.now()
        done: actions.Done
        if step.when:
            holds, why = conditions.holds(step.when, self.env.cel_variables(results, item))
            if not holds:
                done = actions.Done(
                    outcome=rio.StepOutcome.SKIPPED, summary=why or f"skipped: {step.when}"
                )
                return self._record(step, path, started, done)
        try:
            done = await self._execute(step, path, item, results)
        except ActivityError as exc:
            done = actions.failed(_why(exc))
        except templates.TemplateError as exc:
            done = actions.failed(str(exc))
        return self._record(step, path, started, done)

    def _record(
        self, step: spec.Step, path: str, started: datetime, done: actions.Done
    ) -> rio.StepRecord:
        record = rio.StepRecord(
            step=path,
            kind=step.kind,
            outcome=done.outcome,
            started_at=started,
            finished_at=workflow.now(),
            summary=done.summary,
            output=done.output,
        )
        self.records.append(record)
        telemetry.step_finished(
            record.kind, record.outcome.value, record.finished_at - record.started_at
        )
        workflow.logger.info("step %s %s: %s", path, record.outcome.value, record.summary)
        return record

    async def _execute(
        self,
        step: spec.Step,
        path: str,
        item: str | None,
        results: Mapping[str, rio.StepRecord],
    ) -> actions.Done:
        act = _ACTIONS.get(step.kind)
        if act is not None:
            return await act(self.env, step, path, item, results)
        match step:
            case spec.VerifyStep():
                await self.hooks.report(rio.ProgressPhase.VERIFYING, path)
                try:
                    return await actions.verify(self.env, step, path, item, results)
                finally:
                    await self.hooks.report(rio.ProgressPhase.REMEDIATING, path)
            case spec.ApproveStep():
                return await self._approve(step, path, item, results)
            case spec.WaitStep():
                if await self.hooks.sleep(self.remaining(step.duration)):
                    return actions.succeeded(f"waited {step.duration}")
                return actions.Done(outcome=rio.StepOutcome.CANCELLED, summary="episode resolved")
            case spec.ForEachStep():
                return await self._for_each(step, path, item, results)
        raise AssertionError(f"unknown step {step!r}")  # pragma: no cover - exhaustive

    async def _approve(
        self, step: spec.ApproveStep, path: str, item: str | None, results: actions.Results
    ) -> actions.Done:
        scope = self.env.scope(item, results)
        message = templates.render(step.message, scope, strict=False) or (
            f"Run plan {self.env.plan.name} on {self.env.request.resource}?"
        )
        answer = await self.hooks.decision(
            step=step, path=path, message=message, deadline=self.remaining(step.deadline)
        )
        await self.hooks.report(rio.ProgressPhase.REMEDIATING, path)
        if answer is None:
            return actions.Done(
                outcome=rio.StepOutcome.TIMED_OUT,
                summary=f"no answer within {step.deadline} ({step.on_timeout.value})",
            )
        output = {"by": answer.by, "comment": answer.comment, "channel": str(answer.channel)}
        if answer.approved:
            return actions.Done(
                outcome=rio.StepOutcome.APPROVED, summary=f"approved by {answer.by}", output=output
            )
        return actions.Done(
            outcome=rio.StepOutcome.DENIED, summary=f"denied by {answer.by}", output=output
        )

    async def _items(
        self, step: spec.ForEachStep, path: str, item: str | None, results: actions.Results
    ) -> list[str]:
        scope = self.env.scope(item, results)
        if step.hosts:
            listed = await actions.call(
                io.FETCH_INVENTORY,
                io.FetchInventoryInput(
                    context=self.env.context(path), group=templates.render(step.hosts, scope)
                ),
                io.FetchInventoryOutput,
                step,
                default=actions.default_timeout("for_each"),
            )
            return list(listed.hosts)
        if step.items:
            return [templates.render(each, scope) for each in step.items]
        listed = templates.render_data(step.items_from, scope)
        if isinstance(listed, list):  # one reference to an earlier step's list
            return [str(each) for each in listed]
        return [part for part in _SPLIT.split(str(listed)) if part]

    async def _for_each(
        self, step: spec.ForEachStep, path: str, item: str | None, results: actions.Results
    ) -> actions.Done:
        items = list(dict.fromkeys(await self._items(step, path, item, results)))
        gate = asyncio.Semaphore(step.concurrency)
        failures: list[str] = []

        async def one(each: str) -> bool | None:
            async with gate:
                if (step.fail_fast and failures) or self.interrupted() is not None:
                    return None
                stop = await self.run(step.steps, prefix=f"{path}/{each}/", item=each)
                if stop is not None:
                    failures.append(each)
                return stop is None

        done = await asyncio.gather(*(one(each) for each in items))
        succeeded = [each for each, ok in zip(items, done, strict=True) if ok]
        not_run = [each for each, ok in zip(items, done, strict=True) if ok is None]
        output = {
            "items": len(items),
            "succeeded": len(succeeded),
            "failed": sorted(failures),
            "not_run": not_run,
        }
        line = f"{len(succeeded)} of {len(items)} succeeded"
        if not items or len(succeeded) >= step.min_success * len(items):
            return actions.succeeded(line, **output)
        return actions.failed(line, **output)


def _stop(step: spec.Step, record: rio.StepRecord) -> rio.Outcome | None:
    """What a step's record means for the rest of the plan."""
    outcome = record.outcome
    if record.ok:
        return None
    if outcome is rio.StepOutcome.CANCELLED:
        return rio.Outcome.CANCELLED
    if outcome is rio.StepOutcome.DENIED:
        denied_escalates = isinstance(step, spec.ApproveStep) and (
            step.on_deny is spec.OnDeny.ESCALATE
        )
        return rio.Outcome.ESCALATED if denied_escalates else rio.Outcome.DENIED
    if outcome is rio.StepOutcome.TIMED_OUT and isinstance(step, spec.ApproveStep):
        return {
            spec.OnTimeout.ESCALATE: rio.Outcome.ESCALATED,
            spec.OnTimeout.ABORT: rio.Outcome.ABORTED,
            spec.OnTimeout.CONTINUE: None,
        }[step.on_timeout]
    return {
        spec.OnFailure.ESCALATE: rio.Outcome.ESCALATED,
        spec.OnFailure.ABORT: rio.Outcome.FAILED,
        spec.OnFailure.CONTINUE: None,
    }[step.on_failure]


def _why(exc: ActivityError) -> str:
    """The activity's own error message, not Temporal's wrapper."""
    return str(exc.cause or exc)[:500]
