"""An approval step's Slack message: post the question, then replace the buttons with the end.

Slack is a courtesy channel: a message that cannot be posted or updated is logged and
the step waits all the same, answerable through the API and the CLI.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import exceptions, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from controller.plans import spec
    from controller.workflows import activity_io as aio
    from controller.workflows import remediation_io as rio
    from controller.workflows import slack_io

_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    non_retryable_error_types=[aio.PERMANENT_ERROR],
)
_TIMEOUT = timedelta(seconds=30)
_THEN = {
    spec.OnTimeout.ESCALATE: "escalating",
    spec.OnTimeout.ABORT: "the plan stops",
    spec.OnTimeout.CONTINUE: "the plan goes on without an answer",
}
_DENIED_THEN = {
    spec.OnDeny.STOP: "the plan stops",
    spec.OnDeny.ESCALATE: "the plan stops and escalates",
}


def summary(request: rio.RemediationInput) -> str:
    """One line about the episode: rule, resource and the rule's own summary."""
    fired = request.fired
    text = fired.annotations.get("summary", "")
    return f"{fired.rule} on {request.resource}" + (f": {text}" if text else "")


def _context(request: rio.RemediationInput, path: str) -> aio.ActivityContext:
    return aio.ActivityContext(
        resource=request.resource,
        episode=request.episode,
        rule=request.fired.rule,
        plan=request.plan.name,
        step=path,
    )


async def post(
    request: rio.RemediationInput,
    *,
    step: spec.ApproveStep,
    path: str,
    question: str,
    deadline: datetime,
) -> slack_io.SlackMessage | None:
    """Post the question to the step's channel; ``None`` (logged) when that failed."""
    try:
        posted: slack_io.SlackMessage = await workflow.execute_activity(
            aio.SLACK_POST_APPROVAL,
            slack_io.SlackApprovalInput(
                context=_context(request, path),
                channel=step.slack,
                question=question,
                summary=summary(request),
                severity=request.fired.severity,
                approvers=step.approvers,
                deadline=deadline,
                on_timeout=step.on_timeout.value,
            ),
            result_type=slack_io.SlackMessage,
            start_to_close_timeout=_TIMEOUT,
            retry_policy=_RETRY,
        )
    except exceptions.ActivityError as exc:
        workflow.logger.warning("approval %s not posted to Slack: %s", path, exc.cause or exc)
        return None
    return posted


async def update(
    request: rio.RemediationInput,
    *,
    step: spec.ApproveStep,
    path: str,
    question: str,
    message: slack_io.SlackMessage,
    answer: rio.Decision | None,
    cancelled: bool,
) -> None:
    """Replace the message's buttons with the answer, the timeout or the cancellation."""
    if answer is not None:
        end = slack_io.ApprovalEnd.APPROVED if answer.approved else slack_io.ApprovalEnd.DENIED
        then = "the plan goes on" if answer.approved else _DENIED_THEN[step.on_deny]
    elif cancelled:
        end, then = slack_io.ApprovalEnd.CANCELLED, "the episode resolved"
    else:
        end, then = slack_io.ApprovalEnd.TIMED_OUT, _THEN[step.on_timeout]
    try:
        await workflow.execute_activity(
            aio.SLACK_UPDATE_APPROVAL,
            slack_io.SlackApprovalUpdateInput(
                context=_context(request, path),
                message=message,
                question=question,
                summary=summary(request),
                end=end,
                by=answer.by if answer else "",
                via=answer.channel if answer else None,
                comment=answer.comment if answer else "",
                then=then,
            ),
            start_to_close_timeout=_TIMEOUT,
            retry_policy=_RETRY,
        )
    except exceptions.ActivityError as exc:
        workflow.logger.warning("approval %s: Slack message not updated: %s", path, exc.cause)
