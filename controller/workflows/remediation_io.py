"""Payloads of the remediation workflow: one episode's plan in, its whole record out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from controller.domain import approvals, resources, transitions
    from controller.plans import spec
    from controller.workflows import scaling


class Mode(StrEnum):
    """What the remediation workflow is started for."""

    REMEDIATE = "remediate"
    """Run the plan's steps, then escalate if they did not help."""
    ESCALATE = "escalate"
    """Only climb the escalation ladder (cooldown or budget forbids remediating)."""


class Outcome(StrEnum):
    """How a remediation ended."""

    SUCCEEDED = "succeeded"
    """Every step succeeded (or was skipped by its condition)."""
    ESCALATED = "escalated"
    """Remediation was not possible or did not help; the ladder ran."""
    FAILED = "failed"
    """A step failed and the plan said to abort without escalating."""
    DENIED = "denied"
    """An approver said no."""
    ABORTED = "aborted"
    """An approval timed out and the plan said to abort."""
    CANCELLED = "cancelled"
    """The episode resolved and the plan said to stop the remediation."""
    TIMED_OUT = "timed_out"
    """The plan's time limit passed."""


class StepOutcome(StrEnum):
    """How one step ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    APPROVED = "approved"
    DENIED = "denied"
    TIMED_OUT = "timed_out"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True, kw_only=True)
class StepRecord:
    """What one step did: the incident's timeline, line by line.

    Attributes:
        step: the step's path (``restart``, ``per_host/web-1/update``).
        kind: the step type (``playbook`` ...), or ``escalation``.
        outcome: how it ended.
        started_at: when it started.
        finished_at: when it ended.
        summary: one line for people.
        output: a few structured facts (exit code, failed hosts, replicas, ticket key).
    """

    step: str
    kind: str
    outcome: StepOutcome
    started_at: datetime
    finished_at: datetime
    summary: str = ""
    output: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """The step did not fail (skipped counts as fine)."""
        return self.outcome in {StepOutcome.SUCCEEDED, StepOutcome.SKIPPED, StepOutcome.APPROVED}


@dataclass(frozen=True, slots=True, kw_only=True)
class RemediationInput:
    """Everything a remediation workflow needs; it never reads files or settings.

    Attributes:
        episode: the episode (the workflow id derives from it).
        resource: the resource.
        fired: the ``fired`` transition (rule, severity, labels, annotations, revision).
        plan: the plan, as loaded when the episode was handled.
        mode: remediate, or only escalate.
        reason: why only escalate (cooldown, budget), for the record.
        report_to: workflow id of the resource workflow to signal progress (and, when
            asked with ``report_result``, the result) to; empty when started on its own.
        scaler: the resource's scaler history, for HPA-style scale steps.
        report_result: signal the result to ``report_to`` when done, whatever happens: the
            workflow was started by ``start_episode``, not as a child, so no workflow sees
            its completion (False: only once asked by the ``report_result`` signal).
    """

    episode: resources.EpisodeId
    resource: resources.ResourceKey
    fired: transitions.Transition
    plan: spec.Plan
    mode: Mode = Mode.REMEDIATE
    reason: str = ""
    report_to: str = ""
    scaler: scaling.ScalerHistory = field(default_factory=scaling.ScalerHistory)
    report_result: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class RemediationResult:
    """How the episode's remediation went.

    Attributes:
        episode: the episode.
        outcome: how it ended.
        steps: every step's record, in order (escalation rungs included).
        page_dedup_key: the page sent, if any.
        ticket_key: the ticket opened (or found), if any.
        ticket_url: its address.
        escalation_level: how many rungs of the ladder ran.
        scaler: the scaler history after this remediation's scale steps.
        message: one line for people.
    """

    episode: resources.EpisodeId
    outcome: Outcome
    steps: tuple[StepRecord, ...] = ()
    page_dedup_key: str = ""
    ticket_key: str = ""
    ticket_url: str = ""
    escalation_level: int = 0
    scaler: scaling.ScalerHistory | None = None
    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """An approver's answer (signal ``decision`` of the remediation workflow).

    Attributes:
        approved: yes or no.
        by: who answered (an authenticated identity).
        comment: why.
        channel: how ``by`` was authenticated.
        groups: the approver groups ``by`` belongs to.
    """

    approved: bool
    by: str = ""
    comment: str = ""
    channel: approvals.Channel = approvals.Channel.CLI
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class EpisodeResolved:
    """The episode's condition cleared (signal ``episode_resolved``)."""

    at: datetime


class ProgressPhase(StrEnum):
    """What the remediation is doing now, as the resource workflow shows it."""

    REMEDIATING = "remediating"
    VERIFYING = "verifying"
    AWAITING_APPROVAL = "awaiting_approval"
    ESCALATED = "escalated"


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """The remediation's progress: query ``progress``, and signal to the resource workflow.

    Attributes:
        episode: the episode.
        phase: what it does now.
        step: the step it is at.
        done: steps finished so far.
        total: steps in the plan (top level).
        approval_message: what the approver is asked, while awaiting approval.
        approvers: who may answer, while awaiting approval (empty: anyone).
        approval_deadline: when the approval step stops waiting.
        answered_by: in the report that ends an approval step, whose answer it took
            (empty: none, it timed out or the episode resolved first).
    """

    episode: resources.EpisodeId
    phase: ProgressPhase
    step: str = ""
    done: int = 0
    total: int = 0
    approval_message: str = ""
    approvers: tuple[str, ...] = ()
    approval_deadline: datetime | None = None
    answered_by: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportResult:
    """Signal ``report_result``: when done, signal the result to the resource workflow.

    Sent by a resource workflow about to continue as new while this remediation runs.
    """


@dataclass(frozen=True, slots=True, kw_only=True)
class Finished:
    """Signal ``remediation_finished`` to the resource workflow: the result, by episode."""

    result: RemediationResult


@dataclass(frozen=True, slots=True, kw_only=True)
class StartEpisode:
    """Start an episode's remediation workflow (local activity ``start_episode``).

    Attributes:
        request: the remediation workflow's input (``report_result`` set).
        workflow_id: the remediation workflow's id (the episode's).
        started_by: the run of the resource workflow that decided to start it; a retry
            that finds the workflow already started by this same run takes it as its own.
    """

    request: RemediationInput
    workflow_id: str
    started_by: str


class StartOutcome(StrEnum):
    """What ``start_episode`` found."""

    STARTED = "started"
    """Started, by this call or by an earlier attempt of the same decision."""
    EXISTS = "exists"
    """It existed already, started by another run (the episode was remediated before)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EpisodeStarted:
    """The answer of ``start_episode``, and the resource history's record of the start.

    A local activity's marker keeps its result but not its input, so the answer repeats
    what the timeline shows: which workflow, which plan, to remediate or only escalate.

    Attributes:
        outcome: started, or found started by another run.
        episode: the episode.
        workflow_id: its remediation workflow's id.
        plan: the plan's name.
        mode: remediate, or only escalate.
        reason: why only escalate.
    """

    outcome: StartOutcome
    episode: resources.EpisodeId
    workflow_id: str
    plan: str = ""
    mode: Mode = Mode.REMEDIATE
    reason: str = ""
