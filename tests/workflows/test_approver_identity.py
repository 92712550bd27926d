"""Approvals carry an identity the workflow checks, and a reset clears cooldown and budget (time-skipping server)."""

from datetime import timedelta

import pytest
from fakes import fired, make_plan, remediation_result, resolved, send, terminate_started, until
from temporalio import workflow
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from controller.domain import approvals, contract
from controller.workflows import activity_io as aio
from controller.workflows import remediation_io as rio
from controller.workflows import resource_io as io
from controller.workflows.resource import ResourceWorkflow

RESTRICTED_PLAN = """
steps:
  - id: approval
    approve: {message: "Drop the replica?", deadline: 1h, approvers: [alice, dba]}
  - {id: drop, command: [drop-replica]}
escalation:
  - page: nobody approved
"""

COOLDOWN_BUDGET_PLAN = """
cooldown: 1h
budget: {runs: 1, per: 1d}
steps:
  - {id: restart, command: [systemctl, restart, web]}
"""


async def _decide(handle, update, episode, by, *, groups=(), channel=approvals.Channel.API):
    return await handle.execute_update(
        update,
        io.DecisionRequest(episode=episode, by=by, channel=channel, groups=groups),
        result_type=io.DecisionAck,
    )


async def test_an_unlisted_approver_is_refused_and_the_step_still_waits(ts):
    """Mallory's approval is rejected as NotAnApprover; the step waits; a dba member then approves and the record says who and how."""
    ts.acts.plans["restricted"] = make_plan(RESTRICTED_PLAN, name="restricted")
    resource = "service/restricted"
    episode = fired(resource, plan="restricted")
    handle = await send(ts.client, episode, task_queue=ts.task_queue)
    waiting = await until(ts.client, resource, lambda s: s.phase is io.Phase.AWAITING_APPROVAL)
    assert waiting.running.approvers == ("alice", "dba")
    assert waiting.running.approval_step == "approval"
    assert waiting.running.approval_deadline is not None

    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await _decide(handle, contract.UPDATE_APPROVE, episode.episode, "mallory")
    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.type == contract.NOT_AN_APPROVER
    assert "mallory is not an approver" in str(refused.value.cause)
    with pytest.raises(WorkflowUpdateFailedError):
        await _decide(handle, contract.UPDATE_DENY, episode.episode, "mallory", groups=("ops",))
    still = await until(ts.client, resource, lambda s: s.running is not None)
    assert still.phase is io.Phase.AWAITING_APPROVAL
    assert ts.acts.named(aio.RUN_COMMAND, resource) == []

    await _decide(
        handle,
        contract.UPDATE_APPROVE,
        episode.episode,
        "slack:U0BOB",
        groups=("dba",),
        channel=approvals.Channel.SLACK,
    )
    with pytest.raises(WorkflowUpdateFailedError) as again:
        await _decide(handle, contract.UPDATE_DENY, episode.episode, "alice")
    refusal = str(again.value.cause)
    assert any(
        why in refusal for why in ("already answered", "not awaiting", "not being remediated")
    ), refusal
    result = await remediation_result(ts.client, episode)
    assert result.outcome is rio.Outcome.SUCCEEDED
    assert result.steps[0].output == {"by": "slack:U0BOB", "comment": "", "channel": "slack"}
    assert ts.acts.steps(aio.RUN_COMMAND, resource) == ["drop"]


async def test_a_decision_without_an_identity_is_refused(ts):
    """An approve update with an empty `by` is rejected even when the step lists no approvers."""
    ts.acts.plans["anyone"] = make_plan(
        "steps:\n  - {id: ok, approve: {deadline: 1h}}\n  - {id: go, command: [go]}\n",
        name="anyone",
    )
    resource = "service/anyone"
    episode = fired(resource, plan="anyone")
    handle = await send(ts.client, episode, task_queue=ts.task_queue)
    await until(ts.client, resource, lambda s: s.phase is io.Phase.AWAITING_APPROVAL)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await _decide(handle, contract.UPDATE_APPROVE, episode.episode, "")
    assert "identity" in str(refused.value.cause)
    await _decide(handle, contract.UPDATE_APPROVE, episode.episode, "carol")
    assert (await remediation_result(ts.client, episode)).outcome is rio.Outcome.SUCCEEDED


async def test_reset_ends_the_cooldown_and_forgets_the_budget(ts):
    """After one restart the plan is cooling down and out of budget; `reset` lets the next episode restart at once."""
    ts.acts.plans["cool-budget"] = make_plan(COOLDOWN_BUDGET_PLAN, name="cool-budget")
    resource = "service/reset"
    first = fired(resource, plan="cool-budget")
    handle = await send(ts.client, first, task_queue=ts.task_queue)
    assert (await remediation_result(ts.client, first)).outcome is rio.Outcome.SUCCEEDED
    await send(ts.client, resolved(first), task_queue=ts.task_queue)
    cooling = await until(ts.client, resource, lambda s: not s.episodes and bool(s.cooldowns))
    assert len(cooling.budget) == 1

    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(
            contract.UPDATE_RESET,
            io.ResetRequest(cooldown=False, budget=False, by="alice"),
            result_type=io.ResourceState,
        )
    after = await handle.execute_update(
        contract.UPDATE_RESET,
        io.ResetRequest(by="alice", reason="fixed by hand", channel=approvals.Channel.API),
        result_type=io.ResourceState,
    )
    assert after.cooldowns == ()
    assert after.budget == ()
    assert after.phase is io.Phase.HEALTHY

    second = fired(resource, plan="cool-budget", at=timedelta(minutes=5))
    await send(ts.client, second, task_queue=ts.task_queue)
    assert (await remediation_result(ts.client, second)).outcome is rio.Outcome.SUCCEEDED
    assert ts.acts.steps(aio.RUN_COMMAND, resource) == ["restart", "restart"]


@workflow.defn(name=contract.REMEDIATION_WORKFLOW, sandboxed=False)
class LateRemediation:
    """A remediation whose approval step times out just as an answer arrives: it asks, then ends the step without taking the answer."""

    def __init__(self) -> None:
        self.answered = False

    @workflow.run
    async def run(self, request: rio.RemediationInput) -> rio.RemediationResult:
        parent = workflow.get_external_workflow_handle(request.report_to)
        ask = rio.Progress(
            episode=request.episode, phase=rio.ProgressPhase.AWAITING_APPROVAL, step="ask"
        )
        await parent.signal(contract.SIGNAL_REMEDIATION_PROGRESS, ask)
        await workflow.wait_condition(lambda: self.answered)
        over = rio.Progress(
            episode=request.episode, phase=rio.ProgressPhase.REMEDIATING, step="ask"
        )
        await parent.signal(contract.SIGNAL_REMEDIATION_PROGRESS, over)
        return rio.RemediationResult(episode=request.episode, outcome=rio.Outcome.ESCALATED)

    @workflow.signal(name=contract.SIGNAL_DECISION)
    def decide(self, answer: rio.Decision) -> None:
        del answer
        self.answered = True


async def test_an_answer_that_arrives_after_the_step_ended_is_refused_not_approved(ts):
    """The step stops waiting as alice's approval arrives: the update fails with ApprovalClosed instead of reporting approved."""
    ts.acts.plans["late"] = make_plan(
        "steps:\n  - {id: ask, approve: {deadline: 1h}}\n  - {id: go, command: [go]}\n", name="late"
    )
    resource = "service/late-answer"
    episode = fired(resource, plan="late")
    async with Worker(
        ts.client,
        task_queue="late-answer",
        workflows=[ResourceWorkflow, LateRemediation],
        activities=ts.acts.activities(),
    ):
        handle = await send(ts.client, episode, task_queue="late-answer")
        await until(ts.client, resource, lambda s: s.phase is io.Phase.AWAITING_APPROVAL)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await _decide(handle, contract.UPDATE_APPROVE, episode.episode, "alice")
        assert refused.value.cause.type == contract.APPROVAL_CLOSED
        assert "timed out or was cancelled" in str(refused.value.cause)
        # Both, while their worker is here: a remediation left open on this task queue
        # would hold the time-skipping server's clock for every later test.
        await terminate_started(ts.client, episode)
