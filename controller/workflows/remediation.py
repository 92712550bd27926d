"""RemediationWorkflow: one episode's remediation; its history is the incident's timeline.

Started by the resource workflow (id ``episode/<episode id>``, at most once per episode)
with the plan as input: by its local activity ``start_episode``, eagerly (histories
before the ``homeostat-eager-episodes`` patch: as its child). It runs the plan's steps,
then climbs the escalation ladder when remediation was not allowed (cooldown, budget) or
did not help, stopping as soon as the episode resolves. Approvers answer with the
``decision`` signal (the resource workflow's ``approve``/``deny`` updates forward to it).
Progress goes back to the resource workflow as signals, by workflow id, so they reach it
across continue-as-new; so does the result (``report_result`` in the input), also when the
workflow is cancelled or fails. A child's result was its completion, and also a signal once the
resource workflow asked for one (the ``report_result`` signal) because it was about to
continue as new.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from temporalio import exceptions, workflow

with workflow.unsafe.imports_passed_through():
    from controller.domain import approvals, contract
    from controller.plans import spec
    from controller.workflows import actions, approval_messages, steps, telemetry
    from controller.workflows import remediation_io as rio

_ESCALATE_ON = (rio.Outcome.ESCALATED, rio.Outcome.TIMED_OUT)
_RUNG = "escalation_"
"""Step paths of escalation rungs start with this (``escalation_1`` ...)."""


@workflow.defn(name=contract.REMEDIATION_WORKFLOW)
class RemediationWorkflow:
    """Runs one episode's plan and records every step."""

    @workflow.init
    def __init__(self, request: rio.RemediationInput) -> None:
        """Set up the state signals and queries see, before ``run`` starts."""
        self._request = request
        self._resolved_at: datetime | None = None
        self._answers: list[rio.Decision] = []
        self._approvers: tuple[str, ...] | None = None
        self._progress = rio.Progress(
            episode=request.episode,
            phase=rio.ProgressPhase.REMEDIATING,
            total=len(request.plan.steps),
        )
        self._runner: steps.Runner | None = None
        self._answered_by = ""
        self._report_result = request.report_result

    @workflow.run
    async def run(self, request: rio.RemediationInput) -> rio.RemediationResult:
        """Remediate, escalate if needed, report to the resource workflow, return the record."""
        try:
            return await self._remediate(request)
        except asyncio.CancelledError:
            await self._report_end(request, "the remediation workflow was cancelled")
            raise
        except exceptions.FailureError as exc:
            await self._report_end(request, f"the remediation workflow failed: {exc}")
            raise

    async def _report_end(self, request: rio.RemediationInput, message: str) -> None:
        """Tell the resource workflow the remediation ends without a result (it failed)."""
        if not request.report_result:
            return
        # Nothing else tells the resource workflow, which would wait for the remediation
        # until it counts as lost (a child's cancellation or failure told it).
        ended = rio.RemediationResult(
            episode=request.episode,
            outcome=rio.Outcome.FAILED,
            steps=tuple(self._runner.records) if self._runner else (),
            message=message,
        )
        await self._tell_parent(contract.SIGNAL_REMEDIATION_FINISHED, rio.Finished(result=ended))

    async def _remediate(self, request: rio.RemediationInput) -> rio.RemediationResult:
        plan = request.plan
        env = actions.Env(request)
        runner = steps.Runner(env=env, hooks=self, deadline=workflow.now() + plan.timeout)
        self._runner = runner
        message = ""
        if request.mode is rio.Mode.REMEDIATE:
            stop = await runner.run(plan.steps)
            outcome = stop or rio.Outcome.SUCCEEDED
            if stop is rio.Outcome.TIMED_OUT:
                message = f"plan {plan.name} did not finish within {plan.timeout}"
        else:
            outcome = rio.Outcome.ESCALATED
            message = request.reason
        level = 0
        if outcome in _ESCALATE_ON:
            await self.report(rio.ProgressPhase.ESCALATED, "escalation")
            level = await self._climb(runner)
            outcome = rio.Outcome.ESCALATED
        result = rio.RemediationResult(
            episode=request.episode,
            outcome=outcome,
            steps=tuple(runner.records),
            page_dedup_key=env.page_dedup_key,
            ticket_key=env.ticket_key,
            ticket_url=env.ticket_url,
            escalation_level=level,
            scaler=env.scaler,
            message=message or _summary(outcome, runner.records),
        )
        if self._report_result:
            # Awaited: a signal still in flight when the workflow completes is not sent.
            await self._tell_parent(
                contract.SIGNAL_REMEDIATION_FINISHED, rio.Finished(result=result)
            )
        return result

    async def _climb(self, runner: steps.Runner) -> int:
        """Run the ladder's rungs in order until the episode resolves; how many ran."""
        level = 0
        for index, rung in enumerate(self._request.plan.escalation, 1):
            if rung.after > timedelta(0):
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        lambda: self._resolved_at is not None, timeout=rung.after
                    )
            if self._resolved_at is not None:
                break
            await runner.one(rung.action, f"{_RUNG}{index}", None, {})
            level = index
        return level

    @workflow.signal(name=contract.SIGNAL_DECISION)
    def decide(self, answer: rio.Decision) -> None:
        """An approver's answer; ignored unless an approval step waits for one from them.

        The resource workflow's update refuses such answers before they get here (and the
        operator sees the refusal); this check keeps a signal sent another way from
        deciding for someone who may not.
        """
        if self._approvers is None:
            workflow.logger.warning("decision by %s while no approval is pending", answer.by)
            return
        if not approvals.may_decide(self._approvers, by=answer.by, groups=answer.groups):
            workflow.logger.warning("decision by %s, who is not an approver", answer.by)
            return
        self._answers.append(answer)

    @workflow.signal(name=contract.SIGNAL_REPORT_RESULT)
    def report_result(self, request: rio.ReportResult) -> None:
        """The resource workflow continues as new: signal it the result when done."""
        del request
        self._report_result = True

    @workflow.signal(name=contract.SIGNAL_EPISODE_RESOLVED)
    def resolve(self, resolved: rio.EpisodeResolved) -> None:
        """The episode's condition cleared: stop escalating (and remediating, if the plan says)."""
        if self._resolved_at is None:
            self._resolved_at = resolved.at

    @workflow.query(name=contract.QUERY_PROGRESS)
    def progress(self) -> rio.Progress:
        """What the remediation is doing now."""
        done = len(self._runner.records) if self._runner else 0
        return rio.Progress(
            episode=self._progress.episode,
            phase=self._progress.phase,
            step=self._progress.step,
            done=done,
            total=self._progress.total,
            approval_message=self._progress.approval_message,
        )

    async def report(
        self,
        phase: rio.ProgressPhase,
        step: str,
        message: str = "",
        *,
        approval: spec.ApproveStep | None = None,
        deadline: datetime | None = None,
    ) -> None:
        """Record the phase; tell the resource workflow when it changed.

        While awaiting approval the report carries who may answer (``approval``'s
        approvers) and until when, so the resource workflow refuses anybody else.
        """
        changed = phase is not self._progress.phase
        awaiting = phase is rio.ProgressPhase.AWAITING_APPROVAL
        was_awaiting = self._progress.phase is rio.ProgressPhase.AWAITING_APPROVAL
        self._progress = rio.Progress(
            episode=self._request.episode,
            phase=phase,
            step=step,
            total=self._progress.total,
            approval_message=message if awaiting else "",
            approvers=approval.approvers if awaiting and approval is not None else (),
            approval_deadline=deadline if awaiting else None,
            answered_by=self._answered_by if was_awaiting and not awaiting else "",
        )
        if changed:
            await self._tell_parent(contract.SIGNAL_REMEDIATION_PROGRESS, self._progress)

    async def decision(
        self, *, step: spec.ApproveStep, path: str, message: str, deadline: timedelta
    ) -> rio.Decision | None:
        """Ask, post the question to Slack if the step says so, wait for an answer.

        Returns the answer, or ``None`` when none came within ``deadline``.

        Answers are taken from the moment the step begins, before the resource workflow
        hears that it waits, so an answer sent right away is never dropped.
        """
        self._answers.clear()
        self._answered_by = ""
        self._approvers = step.approvers
        telemetry.approval_requested()
        ends_at = workflow.now() + max(deadline, timedelta(0))
        try:
            await self.report(
                rio.ProgressPhase.AWAITING_APPROVAL,
                path,
                message,
                approval=step,
                deadline=ends_at,
            )
            if deadline <= timedelta(0):
                telemetry.approval_decided("timed_out", "none")
                return None
            posted = None
            if step.slack:
                posted = await approval_messages.post(
                    self._request, step=step, path=path, question=message, deadline=ends_at
                )
            # Without a message the timer is the step's own time left, as it always was.
            wait = deadline if posted is None else max(ends_at - workflow.now(), timedelta(0))
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: bool(self._answers) or self.cancelled(), timeout=wait
                )
            answer = self._answers[0] if self._answers else None
            self._approvers = None
            if answer is not None:
                decision = "approved" if answer.approved else "denied"
                telemetry.approval_decided(decision, str(answer.channel))
                self._answered_by = answer.by
            else:
                telemetry.approval_decided("cancelled" if self.cancelled() else "timed_out", "none")
            # The step is over: say so (and whose answer it took) before the Slack update,
            # so the approver's update is answered without waiting for Slack.
            await self.report(rio.ProgressPhase.REMEDIATING, path)
            if posted is not None:
                await approval_messages.update(
                    self._request,
                    step=step,
                    path=path,
                    question=message,
                    message=posted,
                    answer=answer,
                    cancelled=answer is None and self.cancelled(),
                )
            return answer
        finally:
            self._approvers = None

    async def sleep(self, duration: timedelta) -> bool:
        """Wait for ``duration``; ``False`` when cancelled meanwhile."""
        if duration <= timedelta(0):
            return not self.cancelled()
        try:
            await workflow.wait_condition(self.cancelled, timeout=duration)
        except TimeoutError:
            return True
        return False

    def cancelled(self) -> bool:
        """The episode resolved and the plan stops remediations on resolve."""
        return self._resolved_at is not None and self._request.plan.on_resolve.cancel_remediation

    async def _tell_parent(self, signal: str, payload: object) -> None:
        if not self._request.report_to:
            return
        handle = workflow.get_external_workflow_handle(self._request.report_to)
        try:
            await handle.signal(signal, payload)
        except exceptions.FailureError as exc:
            workflow.logger.warning("could not signal %s: %s", self._request.report_to, exc)


def _summary(outcome: rio.Outcome, records: list[rio.StepRecord]) -> str:
    """One line: the first step that failed (the root cause), then a rung that failed too."""
    failed = [record for record in records if not record.ok]
    if outcome is rio.Outcome.SUCCEEDED and failed:
        first = failed[0]
        return (
            f"{outcome.value}: {len(records)} steps; {first.step} failed and the plan went on: "
            f"{first.summary}"
        )
    if outcome is rio.Outcome.SUCCEEDED or not failed:
        return f"{outcome.value}: {len(records)} steps"
    steps = [record for record in failed if not record.step.startswith(_RUNG)]
    rungs = [record for record in failed if record.step.startswith(_RUNG)]
    cause = steps[0] if steps else rungs[0]
    line = f"{outcome.value} at {cause.step}: {cause.summary}"
    if rungs and rungs[0] is not cause:
        line += f"; then {rungs[0].step} failed too: {rungs[0].summary}"
    return line
