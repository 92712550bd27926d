"""Payloads of the resource workflow: its input, its state, and its updates and queries.

``ResourceState`` is the one dataclass that holds everything the workflow knows about its
resource. It is the query answer, the continue-as-new input and the final result, so a
new run (or a dashboard) sees exactly what the last one knew.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from controller.domain import approvals, resources, transitions
    from controller.plans import spec
    from controller.workflows import remediation_io, scaling


class Phase(StrEnum):
    """Where the resource stands; also the ``HomeostatPhase`` search attribute."""

    HEALTHY = "healthy"
    FIRING = "firing"
    REMEDIATING = "remediating"
    VERIFYING = "verifying"
    AWAITING_APPROVAL = "awaiting_approval"
    COOLING_DOWN = "cooling_down"
    ESCALATED = "escalated"
    SILENCED = "silenced"
    PAUSED = "paused"


class EpisodeStatus(StrEnum):
    """What the resource workflow did about an episode."""

    OPEN = "open"
    """Recorded; no plan, nothing to run."""
    QUEUED = "queued"
    """Waits for the running remediation to end."""
    RUNNING = "running"
    """Its remediation workflow runs."""
    MERGED = "merged"
    """Covered by the remediation of another episode (``concurrency: merge``)."""
    SKIPPED = "skipped"
    """Not remediated because another one ran (``concurrency: skip``)."""
    SUPPRESSED = "suppressed"
    """Not remediated because the resource was silenced or paused."""
    DONE = "done"
    """Its remediation ended; see ``outcome``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EpisodeRecord:
    """One open episode of the resource.

    Attributes:
        fired: the ``fired`` transition (rule, labels, annotations, plan).
        status: what the workflow did about it.
        resolved: its ``resolved`` transition arrived.
        merged_into: the episode whose remediation covers this one.
        outcome: the remediation's outcome, once it ended.
        page_dedup_key: the page sent for it, if any (resolved on resolve).
        ticket_key: the ticket opened for it, if any (resolved on resolve).
        note: why it was not remediated, or what went wrong.
        on_resolve: what its plan does when it resolves.
    """

    fired: transitions.Transition
    status: EpisodeStatus
    resolved: bool = False
    merged_into: resources.EpisodeId | None = None
    outcome: remediation_io.Outcome | None = None
    page_dedup_key: str = ""
    ticket_key: str = ""
    note: str = ""
    on_resolve: spec.OnResolve | None = None

    @property
    def episode(self) -> resources.EpisodeId:
        """The episode's id."""
        return self.fired.episode


@dataclass(frozen=True, slots=True, kw_only=True)
class Cooldown:
    """No remediation of ``plan`` until ``until``."""

    plan: str
    until: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetUse:
    """One remediation of ``plan`` started at ``at``, counted against its budget for ``per``.

    ``limit`` is the plan's ``budget.runs`` when it started (0 in states recorded before
    the field existed), so views can say "used 2 of 3".
    """

    plan: str
    at: datetime
    per: timedelta
    limit: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class OutcomeRecord:
    """How an episode ended, kept among the resource's last outcomes."""

    episode: resources.EpisodeId
    rule: str
    plan: str
    status: EpisodeStatus
    outcome: remediation_io.Outcome | None
    closed_at: datetime
    note: str = ""


LOAD_PLAN_TIMEOUT = timedelta(seconds=30)
"""Default time one attempt of ``load_plan`` may take."""
ON_RESOLVE_TIMEOUT = timedelta(minutes=1)
"""Default time one attempt of a page resolve, ticket resolve or ticket comment may take."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceOptions:
    """Tunables of a resource workflow, carried across continue-as-new.

    Attributes:
        continue_as_new_after: signals per run before continuing as new (Temporal
            rejects the 10,000th signal of a run and ignores signals in its own
            continue-as-new suggestion).
        dedupe_window: how many transition ids are remembered to drop duplicates.
        idle_timeout: a run with nothing to remember for this long completes; the next
            transition starts a new one from scratch, which is equivalent.
        outcomes_kept: how many recent outcomes the state keeps.
        max_open_episodes: open episodes beyond this are closed, oldest first.
        lost_child_margin: a remediation that has not reported back this long after
            its plan's time limits is considered lost and frees the resource.
        load_plan_timeout: one attempt of loading an episode's plan.
        on_resolve_timeout: one attempt of resolving a page or a ticket (or commenting
            on it) when an episode resolves.
    """

    continue_as_new_after: int = 1000
    dedupe_window: int = 2048
    idle_timeout: timedelta = timedelta(hours=24)
    outcomes_kept: int = 20
    max_open_episodes: int = 200
    lost_child_margin: timedelta = timedelta(minutes=30)
    load_plan_timeout: timedelta = LOAD_PLAN_TIMEOUT
    on_resolve_timeout: timedelta = ON_RESOLVE_TIMEOUT


@dataclass(frozen=True, slots=True, kw_only=True)
class Running:
    """The remediation workflow running now.

    Attributes:
        episode: its episode.
        workflow_id: its workflow id.
        mode: remediate, or escalate only.
        plan: the plan's name.
        phase: the phase it last reported.
        started_at: when it was started.
        lost_after: when it counts as lost if it has not reported back.
        cooldown: the plan's cooldown, which starts when a remediation ends.
        merged: episodes merged into it.
        reports: it was told to signal its result (the run that started it continued
            as new, so no run sees its completion).
        approvers: who may answer the approval step it waits at (empty: anyone who
            authenticated); reported with the ``awaiting_approval`` phase.
        approval_step: the path of that step.
        approval_deadline: when that step stops waiting.
        decided: an answer to that step was handed over; later ones are refused.
        answers: for each approval step that ended, whose answer it took (empty: none).
    """

    episode: resources.EpisodeId
    workflow_id: str
    mode: remediation_io.Mode
    plan: str
    phase: Phase = Phase.REMEDIATING
    started_at: datetime
    lost_after: datetime
    cooldown: timedelta = timedelta(0)
    merged: tuple[resources.EpisodeId, ...] = ()
    reports: bool = False
    approvers: tuple[str, ...] = ()
    approval_step: str = ""
    approval_deadline: datetime | None = None
    decided: bool = False
    answers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceState:
    """Everything the resource workflow knows, in one payload.

    Attributes:
        resource: the resource.
        phase: where it stands.
        episodes: open episodes, oldest first.
        queue: episodes waiting for a remediation, in order.
        running: the remediation running now, if any.
        cooldowns: per-plan cooldown deadlines still in the future.
        budget: remediation starts still inside their plan's budget window.
        silenced_until: automation is silenced until then (episodes are only recorded).
        silence_reason: why it was silenced.
        paused: automation is paused until resumed.
        pause_reason: why it was paused.
        scaler: recent scale recommendations and changes, for stabilization windows and
            rate policies.
        outcomes: the last outcomes, newest last.
        seen: recently handled transition ids, oldest first (the dedupe window).
        transitions_total: transitions handled since the first run.
        runs: how many runs came before this one (continue-as-new count).
        last_change: when something last happened to the resource.
        silenced_by: who silenced it.
        paused_by: who paused it.
        paused_at: since when it is paused.
    """

    resource: resources.ResourceKey
    phase: Phase = Phase.HEALTHY
    episodes: tuple[EpisodeRecord, ...] = ()
    queue: tuple[resources.EpisodeId, ...] = ()
    running: Running | None = None
    cooldowns: tuple[Cooldown, ...] = ()
    budget: tuple[BudgetUse, ...] = ()
    silenced_until: datetime | None = None
    silence_reason: str = ""
    paused: bool = False
    pause_reason: str = ""
    scaler: scaling.ScalerHistory = field(default_factory=scaling.ScalerHistory)
    outcomes: tuple[OutcomeRecord, ...] = ()
    seen: tuple[str, ...] = ()
    transitions_total: int = 0
    runs: int = 0
    last_change: datetime | None = None
    silenced_by: str = ""
    paused_by: str = ""
    paused_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceWorkflowInput:
    """The start input of the resource workflow.

    The dispatcher starts the workflow with ``ResourceWorkflowInput(resource=KEY)`` and the
    transition as the start signal (signal-with-start); ``state`` and ``pending`` are
    filled only by continue-as-new.

    Attributes:
        resource: the resource; must match every transition's resource.
        options: tunables (defaults suit production).
        state: the state carried over from the previous run.
        pending: transitions received but not yet handled by the previous run.
    """

    resource: resources.ResourceKey
    options: ResourceOptions = ResourceOptions()
    state: ResourceState | None = None
    pending: tuple[transitions.Transition, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionRequest:
    """Approve or deny the approval step an episode's remediation waits at.

    Refused (by the update's validator) unless the episode waits at an approval step that
    nobody answered yet and ``by`` is one of its approvers or a member of one of its
    approver groups; a refusal for that last reason has the ``ApplicationError`` type
    ``contract.NOT_AN_APPROVER``.

    Attributes:
        episode: the episode.
        by: the authenticated identity that decides (recorded in the episode's history).
        comment: why.
        channel: how ``by`` was authenticated.
        groups: the approver groups ``by`` belongs to (from the settings).
    """

    episode: resources.EpisodeId
    by: str = ""
    comment: str = ""
    channel: approvals.Channel = approvals.Channel.CLI
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionAck:
    """The decision was handed to the remediation workflow ``workflow_id``."""

    episode: resources.EpisodeId
    workflow_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SilenceRequest:
    """Silence automation of the resource until ``until`` (episodes are still recorded)."""

    until: datetime
    by: str = ""
    reason: str = ""
    channel: approvals.Channel = approvals.Channel.CLI


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorRequest:
    """Unsilence, pause or resume; who asks (authenticated), through which channel, and why."""

    by: str = ""
    reason: str = ""
    channel: approvals.Channel = approvals.Channel.CLI


@dataclass(frozen=True, slots=True, kw_only=True)
class ResetRequest:
    """Forget the resource's cooldowns and/or budget use (update ``reset``).

    Attributes:
        cooldown: end every plan's cooldown now.
        budget: forget the remediations counted against every plan's budget.
        by: who asks (authenticated); recorded in the history with the update.
        reason: why.
        channel: how ``by`` was authenticated.
    """

    cooldown: bool = True
    budget: bool = True
    by: str = ""
    reason: str = ""
    channel: approvals.Channel = approvals.Channel.CLI
