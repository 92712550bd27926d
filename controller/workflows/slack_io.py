"""Payloads of the Slack activities an approval step calls.

Part of the ``activity_io`` contract (the names, ``activity_io.SLACK_POST_APPROVAL`` and
``activity_io.SLACK_UPDATE_APPROVAL``, are listed in ``activity_io.ALL``), kept in a module
of its own because Slack is one sink among several. An approval step that names a Slack
channel posts a message with Approve/Deny buttons and, once the step ends, replaces the
buttons with what happened. The click itself reaches the workflow through the operator
API as an ``approve``/``deny`` update of the resource workflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from controller.domain import approvals, transitions
    from controller.workflows import activity_io


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackApprovalInput:
    """Ask for an approval in a Slack channel (``chat.postMessage``).

    Attributes:
        context: who asks; its step is the approval step's path.
        channel: the channel id or name (``C0123``, ``#ops-approvals``).
        question: what the approver is asked (the step's rendered message).
        summary: one line about the episode (rule, resource, the rule's summary).
        severity: the episode's severity.
        approvers: who may answer (empty: anyone allowed to click).
        deadline: when the step stops waiting.
        on_timeout: what happens then (``escalate``, ``abort``, ``continue``).
    """

    context: activity_io.ActivityContext
    channel: str
    question: str
    summary: str
    severity: transitions.Severity
    approvers: tuple[str, ...] = ()
    deadline: datetime
    on_timeout: str = "escalate"


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackMessage:
    """A posted message: its channel id and its timestamp (Slack's message id)."""

    channel: str
    ts: str


class ApprovalEnd(StrEnum):
    """How an approval step ended, as the updated message says."""

    APPROVED = "approved"
    DENIED = "denied"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackApprovalUpdateInput:
    """Replace an approval message's buttons with its end (``chat.update``).

    Attributes:
        context: who asks.
        message: the message to update.
        question: the question asked, shown again.
        summary: the episode's line, shown again.
        end: how the step ended.
        by: who answered, when someone did.
        via: how they were authenticated.
        comment: their comment.
        then: what happens next (``escalating``, ``the plan stops`` ...).
    """

    context: activity_io.ActivityContext
    message: SlackMessage
    question: str
    summary: str
    end: ApprovalEnd
    by: str = ""
    via: approvals.Channel | None = None
    comment: str = ""
    then: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackNotifyInput:
    """Post a ``slack`` step's message (``chat.postMessage``), once per step of an episode.

    Attributes:
        context: who asks; ``context.idempotency_key`` tells a retry from a new message.
        channel: the channel id or name.
        text: the message, rendered.
    """

    context: activity_io.ActivityContext
    channel: str
    text: str
