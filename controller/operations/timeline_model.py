"""The typed timeline of an episode or a resource: what happened, in domain terms.

A ``Timeline`` is a list of ``Entry`` values, oldest first. Each entry has a kind (the
transition that opened the episode, a step, an approval, a suppression ...), one line for
people, and typed ``details`` whose ``type`` field names the dataclass (``playbook``,
``scale``, ``command`` ...). ``homeostat history --json`` and ``GET /v1/episodes/{id}``
print exactly this, through ``encoding.to_json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Literal

TIMELINE_SCHEMA_VERSION: Final = 1
"""Version of the timeline's JSON schema; fields and detail types are only added."""


class EntryKind(StrEnum):
    """What an entry records."""

    OPENED = "opened"
    """A condition started firing: the transition that opened an episode."""
    RESOLVED = "resolved"
    """The episode's condition cleared."""
    STEP = "step"
    """A plan step ran (or was skipped): its inputs and outputs."""
    VERIFICATION = "verification"
    """A verify step: whether the condition held."""
    APPROVAL_REQUESTED = "approval_requested"
    """The plan waits for an approver."""
    APPROVAL = "approval"
    """An approver answered: who, through which channel, when."""
    ESCALATION = "escalation"
    """A rung of the escalation ladder ran."""
    SUPPRESSED = "suppressed"
    """Automation did not act: cooldown, budget, silence, pause, concurrency."""
    REMEDIATION = "remediation"
    """A resource's remediation workflow started or ended."""
    OPERATOR = "operator"
    """Someone silenced, paused, resumed, approved or denied through the resource."""
    PHASE = "phase"
    """The resource's phase changed."""
    ON_RESOLVE = "on_resolve"
    """The page or ticket of a resolved episode was resolved or commented."""
    PROBLEM = "problem"
    """Something went wrong outside a step (a plan that does not load)."""
    CLOSED = "closed"
    """The remediation (or the workflow run) ended."""
    CONTINUED = "continued_as_new"
    """The resource workflow continued as new: its history goes on in the next run."""


class SuppressionReason(StrEnum):
    """Why automation did not act."""

    COOLDOWN = "cooldown"
    BUDGET = "budget"
    SILENCE = "silence"
    PAUSE = "pause"
    CONCURRENCY = "concurrency"
    OTHER = "other"


@dataclass(frozen=True, slots=True, kw_only=True)
class TransitionDetails:
    """The transition that opened (or resolved) an episode.

    Attributes:
        rule: the rule.
        revision: the rule set's revision when it fired.
        severity: the rule's severity.
        remediation: the plan the rule names.
        labels: the labels (and values) that made it fire.
        annotations: rendered annotations (summary, runbook_url ...).
        started_at: when the condition started firing.
        at: when this transition happened (for ``resolved``: when the condition cleared).
    """

    type: Literal["transition"] = "transition"
    rule: str
    revision: str
    severity: str
    remediation: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    started_at: datetime | None = None
    at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HostOutcome:
    """What a playbook did on one host."""

    host: str
    ok: bool
    changed: bool = False
    unreachable: bool = False
    failed_task: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybookDetails:
    """A playbook run (with its re-runs on failed hosts)."""

    type: Literal["playbook"] = "playbook"
    playbook: str
    hosts: tuple[str, ...] = ()
    check: bool = False
    runs: int = 0
    status: str = ""
    rc: int | None = None
    results: tuple[HostOutcome, ...] = ()
    log_ref: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ScaleDetails:
    """A scale decision: the replicas read, the metric, the count decided and set."""

    type: Literal["scale"] = "scale"
    target: str
    actuator: str = ""
    current: int | None = None
    metric_query: str = ""
    metric_value: float | None = None
    desired: int | None = None
    after: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandDetails:
    """A command: its argv, exit code and the tail of its output (never its environment)."""

    type: Literal["command"] = "command"
    argv: tuple[str, ...] = ()
    exit_code: int | None = None
    stdout_tail: str = ""
    stderr_tail: str = ""
    log_ref: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpDetails:
    """An HTTP call: method, URL and the status answered (never its headers)."""

    type: Literal["http"] = "http"
    method: str = ""
    url: str = ""
    status: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PageDetails:
    """A page (or its resolution) and its dedup key."""

    type: Literal["page"] = "page"
    dedup_key: str = ""
    summary: str = ""
    severity: str = ""
    status: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketDetails:
    """A ticket opened, found, commented or resolved."""

    type: Literal["ticket"] = "ticket"
    key: str = ""
    url: str = ""
    project: str = ""
    summary: str = ""
    created: bool | None = None
    status: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyDetails:
    """A verification: the condition polled, how often, what was seen last."""

    type: Literal["verify"] = "verify"
    condition: str = ""
    ok: bool | None = None
    checks: int = 0
    observed: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class FanOutDetails:
    """A fan-out step (``for_each``): the items it ran over and how they went.

    Attributes:
        group: the inventory group or CMDB query listed ("" for fixed items).
        hosts: the hosts the inventory answered.
        items: how many items the steps ran for.
        succeeded: how many went through.
        failed: the items whose steps failed.
        not_run: the items never started (fail-fast, or the plan stopped).
    """

    type: Literal["fan_out"] = "fan_out"
    group: str = ""
    hosts: tuple[str, ...] = ()
    items: int | None = None
    succeeded: int | None = None
    failed: tuple[str, ...] = ()
    not_run: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalDetails:
    """An approval asked for, or an answer.

    Attributes:
        approved: the answer (``None`` while asked).
        by: who answered (the authenticated identity when the channel has one).
        channel: how the answer came (``slack``, ``api``, ``cli`` ...).
        comment: their comment.
        message: what the approver was asked.
        approvers: who may answer (empty: anyone).
    """

    type: Literal["approval"] = "approval"
    approved: bool | None = None
    by: str = ""
    channel: str = ""
    comment: str = ""
    message: str = ""
    approvers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SuppressionDetails:
    """Why automation did not act."""

    type: Literal["suppression"] = "suppression"
    reason: SuppressionReason
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorDetails:
    """An operator's request to the resource workflow: what, by whom, through which channel."""

    type: Literal["operator"] = "operator"
    action: str
    by: str = ""
    channel: str = ""
    reason: str = ""
    until: datetime | None = None
    episode: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RemediationDetails:
    """A remediation workflow: how it started or how it ended."""

    type: Literal["remediation"] = "remediation"
    workflow_id: str = ""
    plan: str = ""
    mode: str = ""
    outcome: str = ""
    message: str = ""
    escalation_level: int = 0
    page_dedup_key: str = ""
    ticket_key: str = ""
    ticket_url: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class StepSummary:
    """A step without an activity of its own (wait, fan-out, skipped): its structured output."""

    type: Literal["step"] = "step"
    step_type: str = ""
    output: Mapping[str, Any] = field(default_factory=dict)


Details = (
    TransitionDetails
    | PlaybookDetails
    | ScaleDetails
    | CommandDetails
    | HttpDetails
    | PageDetails
    | TicketDetails
    | VerifyDetails
    | FanOutDetails
    | ApprovalDetails
    | SuppressionDetails
    | OperatorDetails
    | RemediationDetails
    | StepSummary
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One thing that happened.

    Attributes:
        at: when (for a step: when it started).
        kind: what it records.
        title: one line for people.
        status: how it ended (``succeeded``, ``failed``, ``running``, ``approved`` ...), or "".
        step: the step's path in the plan (``restart``, ``per_host/web-1/restart``), or "".
        episode: the episode it belongs to.
        finished_at: when a step ended.
        error: why it failed, when an activity failed.
        attempts: the highest attempt number of its activities (1: no retry; 0: none).
        workflow_id: the workflow whose history recorded it.
        event_id: the first history event it comes from.
        details: the typed facts.
    """

    at: datetime
    kind: EntryKind
    title: str
    status: str = ""
    step: str = ""
    episode: str = ""
    finished_at: datetime | None = None
    error: str = ""
    attempts: int = 0
    workflow_id: str = ""
    event_id: int = 0
    details: Details | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRef:
    """One workflow run whose history the timeline was built from."""

    workflow_id: str
    run_id: str
    workflow_type: str
    status: str
    started_at: datetime | None
    closed_at: datetime | None
    url: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class EpisodeLine:
    """One episode of a resource, as its timeline shows it.

    Attributes:
        episode: its id.
        rule: the rule.
        fired_at: when it started firing.
        resolved_at: when it resolved.
        handling: ``remediated``, ``escalated only``, ``suppressed``, ``recorded``.
        outcome: how its remediation ended.
        reason: why it was not remediated.
        workflow_id: its remediation workflow.
        history: the command that prints its own timeline.
    """

    episode: str
    rule: str
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    handling: str = "recorded"
    outcome: str = ""
    reason: str = ""
    workflow_id: str = ""
    history: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeline:
    """An episode's or a resource's timeline.

    Attributes:
        schema_version: ``TIMELINE_SCHEMA_VERSION``.
        subject: ``episode`` or ``resource``.
        id: the episode id or resource key.
        resource: the resource.
        status: the episode's outcome, or ``running``; for a resource, its workflow's status.
        runs: the workflow runs read, oldest first.
        entries: what happened, oldest first.
        episodes: a resource's episodes, oldest first (empty for an episode).
    """

    schema_version: int
    subject: Literal["episode", "resource"]
    id: str
    resource: str
    status: str
    runs: tuple[RunRef, ...]
    entries: tuple[Entry, ...]
    episodes: tuple[EpisodeLine, ...] = ()
