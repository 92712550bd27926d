"""A remediation plan as plain frozen dataclasses: what the loader produces and workflows run.

The plan files in ``remediations/`` are validated by the pydantic model in
``controller.plans.model`` and converted into these types, which are Temporal payloads:
the resource workflow receives a ``Plan`` from the ``load_plan`` activity and hands it
to the episode's remediation workflow as input, so workflow code never parses YAML.

This module imports only the standard library and ``controller.domain``: the workflow
sandbox imports it. The types live here rather than in ``controller.workflows`` because
the import layers put plans below workflows (workflows import plans, never the reverse).

Strings in steps may hold ``${...}`` references (``${labels.instance}``,
``${vars.service}``, ``${item}``); the remediation workflow resolves them into structured
values (Ansible extra vars, environment variables, JSON fields, escaped PromQL string
literals), never into a command line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any, Literal

from controller.domain import transitions


class Concurrency(StrEnum):
    """What a second episode does while a remediation of the same resource runs."""

    QUEUE = "queue"
    """Wait, then remediate it after the running one."""
    MERGE = "merge"
    """Join the running remediation: no second run; it is recorded as merged."""
    SKIP = "skip"
    """Record it and do nothing."""


class OnTimeout(StrEnum):
    """What an approval step does when nobody answered before its deadline."""

    ESCALATE = "escalate"
    ABORT = "abort"
    CONTINUE = "continue"


class OnDeny(StrEnum):
    """What an approval step does when an approver says no."""

    STOP = "stop"
    """Stop the plan, without the escalation ladder: a human decided (the default)."""
    ESCALATE = "escalate"
    """Stop the plan and run the escalation ladder (someone must take it from here)."""


class OnFailure(StrEnum):
    """What a failed step does to the rest of the plan."""

    ESCALATE = "escalate"
    """Stop the plan and run the escalation ladder (the default)."""
    ABORT = "abort"
    """Stop the plan without escalating."""
    CONTINUE = "continue"
    """Record the failure and go on with the next step."""


class Actuator(StrEnum):
    """How a scale target is read and changed."""

    PLAYBOOK = "playbook"
    COMMAND = "command"
    HTTP = "http"


class SelectPolicy(StrEnum):
    """Which rate policy wins when several allow different changes (as in the HPA)."""

    MAX = "max"
    MIN = "min"
    DISABLED = "disabled"


class RatePolicyKind(StrEnum):
    """A rate policy limits the change per period in replicas or in percent."""

    PODS = "pods"
    PERCENT = "percent"


class TicketOnResolve(StrEnum):
    """What happens to the episode's ticket when the episode resolves."""

    RESOLVE = "resolve"
    """Comment, then transition the ticket to done."""
    COMMENT = "comment"
    """Comment only; a human closes it."""
    NOTHING = "nothing"


@dataclass(frozen=True, slots=True, kw_only=True)
class Retry:
    """How often an activity step is retried on a transient error.

    Attributes:
        max_attempts: attempts in all, the first included; 1 means no retry.
        initial_interval: wait before the first retry.
        backoff: multiplier of the wait after each retry.
        max_interval: the longest wait between two attempts.
    """

    max_attempts: int = 3
    initial_interval: timedelta = timedelta(seconds=5)
    backoff: float = 2.0
    max_interval: timedelta = timedelta(minutes=2)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpRequest:
    """An HTTP request, described as data.

    Attributes:
        method: HTTP method.
        url: absolute URL; ``${...}`` in it is percent-encoded when resolved.
        headers: request headers (never secrets: use ``credentials``).
        params: query parameters.
        json_body: a JSON body, or ``None`` for none.
        credentials: name of a credential the activity attaches (from its settings),
            so secrets stay out of workflow histories.
        expect_status: status codes that count as success; empty means any 2xx.
    """

    method: str = "GET"
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    json_body: Any = None
    credentials: str = ""
    expect_status: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ScaleTarget:
    """Something with a replica count, and the actuator that reads and sets it.

    The desired count reaches the actuator as a structured value: the extra var
    ``homeostat_replicas`` (playbook), the environment variable ``HOMEOSTAT_VAR_REPLICAS``
    (command), the JSON field ``replicas`` (HTTP ``PUT``). The current count is read by
    ``read_argv`` (prints an integer) or by ``GET url`` (answers ``{"replicas": n}``).

    Attributes:
        name: a human name of the target, for records.
        actuator: how the count is changed.
        playbook: playbook file (``actuator: playbook``).
        argv: command that sets the count (``actuator: command``).
        read_argv: command that prints the current count.
        url: endpoint that answers and accepts ``{"replicas": n}`` (``actuator: http``).
        credentials: credential name for the HTTP actuator.
        variables: further structured variables handed to the actuator.
    """

    name: str
    actuator: Actuator
    playbook: str = ""
    argv: tuple[str, ...] = ()
    read_argv: tuple[str, ...] = ()
    url: str = ""
    credentials: str = ""
    variables: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class RatePolicy:
    """At most ``value`` replicas (or percent of the current count) of change per ``period``."""

    kind: RatePolicyKind
    value: int
    period: timedelta


@dataclass(frozen=True, slots=True, kw_only=True)
class ScaleBehavior:
    """One direction's behaviour, as in the Kubernetes HPA ``behavior`` field.

    Attributes:
        stabilization: the highest (down) or lowest (up) recommendation within this
            window is used, so a flapping metric does not flap the replica count.
        policies: rate policies; none means no rate limit.
        select: which policy wins.
    """

    stabilization: timedelta = timedelta(0)
    policies: tuple[RatePolicy, ...] = ()
    select: SelectPolicy = SelectPolicy.MAX


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalePolicy:
    """The HPA rule: desired = ceil(current x metric / target), within bounds.

    Attributes:
        metric: PromQL giving the current per-replica metric value (one number).
        target: the metric value per replica to aim for.
        min_replicas: lower bound.
        max_replicas: upper bound.
        tolerance: no change while |metric / target - 1| is at most this.
        scale_up: behaviour when growing.
        scale_down: behaviour when shrinking (default: 5-minute stabilization).
    """

    metric: str
    target: float
    min_replicas: int = 1
    max_replicas: int
    tolerance: float = 0.1
    scale_up: ScaleBehavior = ScaleBehavior()
    scale_down: ScaleBehavior = ScaleBehavior(stabilization=timedelta(minutes=5))


@dataclass(frozen=True, slots=True, kw_only=True)
class StepBase:
    """What every step has.

    Attributes:
        id: unique within its plan (or its ``for_each``); names the step in records.
        when: CEL condition over earlier results; the step is skipped when false.
        timeout: start-to-close timeout of the step's activity (or its wait).
        heartbeat: heartbeat timeout of the step's activity, for long-running ones.
        retry: retry policy for transient errors.
        on_failure: what a failure of this step does to the rest of the plan.
    """

    id: str
    when: str = ""
    timeout: timedelta | None = None
    heartbeat: timedelta | None = None
    retry: Retry = Retry()
    on_failure: OnFailure = OnFailure.ESCALATE


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybookStep(StepBase):
    """Run an Ansible playbook; values reach it as extra vars, never as text in it.

    Attributes:
        playbook: path relative to the playbooks directory.
        hosts: inventory hosts to run against (``${item}`` inside a ``for_each``);
            empty (and no ``groups``) means the playbook's own ``hosts:``.
        groups: inventory groups whose hosts run too (templates); listed when the
            playbook starts, batched and resumable host by host.
        vars: extra vars (templates resolved into structured values).
        check: run in check mode.
        tags: only these tags.
        retry_failed_hosts: re-run this many times against only the failed hosts.
    """

    kind: Literal["playbook"] = "playbook"
    playbook: str
    hosts: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    vars: Mapping[str, Any] = field(default_factory=dict)
    check: bool = False
    tags: tuple[str, ...] = ()
    retry_failed_hosts: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ScaleStep(StepBase):
    """Set a target's replica count: fixed, relative, or by the HPA policy.

    Exactly one of ``replicas``, ``by`` and ``policy`` is set.
    """

    kind: Literal["scale"] = "scale"
    target: ScaleTarget
    replicas: int | None = None
    by: int | None = None
    policy: ScalePolicy | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandStep(StepBase):
    """Run a command (Terraform, kubectl, any CLI) without a shell.

    ``argv`` is literal: the loader rejects ``${...}`` in it. Values reach the command as
    environment variables (``env``, plus every variable as ``HOMEOSTAT_VAR_<NAME>``).
    """

    kind: Literal["command"] = "command"
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str = ""
    ok_exit_codes: tuple[int, ...] = (0,)


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpStep(StepBase):
    """Call a REST API (for systems without a Terraform provider)."""

    kind: Literal["http"] = "http"
    request: HttpRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class ApproveStep(StepBase):
    """Wait for a human to approve or deny, until a deadline.

    Attributes:
        deadline: how long to wait for an answer.
        on_timeout: what happens when nobody answered in time.
        message: shown to the approver (templates allowed).
        approvers: who may answer: authenticated identities (operator-token names,
            ``slack:<user id>``, OS users of the CLI) and approver-group names; empty
            means anyone who authenticated.
        slack: a Slack channel to ask in, with Approve/Deny buttons; empty: none.
        on_deny: what a denial does: stop the plan, or stop it and escalate.
    """

    kind: Literal["approve"] = "approve"
    deadline: timedelta = timedelta(hours=1)
    on_timeout: OnTimeout = OnTimeout.ESCALATE
    on_deny: OnDeny = OnDeny.STOP
    message: str = ""
    approvers: tuple[str, ...] = ()
    slack: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyStep(StepBase):
    """A condition that must hold within a time, else the plan escalates.

    Exactly one of ``promql`` (true when the query returns a non-empty result) and
    ``cel`` (over ``vars``, ``labels`` and, with ``http``, the ``response``) is set.
    """

    kind: Literal["verify"] = "verify"
    promql: str = ""
    cel: str = ""
    http: HttpRequest | None = None
    within: timedelta = timedelta(minutes=5)
    interval: timedelta = timedelta(seconds=15)


@dataclass(frozen=True, slots=True, kw_only=True)
class PageStep(StepBase):
    """Page (PagerDuty Events API v2) with the episode's dedup key.

    Attributes:
        summary: the page's summary (templates allowed).
        severity: defaults to the rule's severity.
        routing: name of a configured routing key; empty means the default.
        details: custom details.
    """

    kind: Literal["page"] = "page"
    summary: str = ""
    severity: transitions.Severity | None = None
    routing: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class SlackStep(StepBase):
    """Post a message to a Slack channel: one message per step of an episode.

    Attributes:
        channel: the channel id or name (``C0123``, ``#deploys``), literal.
        text: the message (templates allowed; Slack's mrkdwn).
    """

    kind: Literal["slack"] = "slack"
    channel: str
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketStep(StepBase):
    """Open (or find, by the episode's label) a ticket.

    Attributes:
        project: project key.
        summary: title (templates allowed).
        description: body (templates allowed).
        issue_type: issue type name.
        priority: priority name; empty means the project's default.
        labels: extra labels (the episode label is always added).
    """

    kind: Literal["ticket"] = "ticket"
    project: str
    summary: str = ""
    description: str = ""
    issue_type: str = "Incident"
    priority: str = ""
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitStep(StepBase):
    """Wait for a while (a durable timer)."""

    kind: Literal["wait"] = "wait"
    duration: timedelta


@dataclass(frozen=True, slots=True, kw_only=True)
class ForEachStep(StepBase):
    """Run ``steps`` once per host or item, at most ``concurrency`` at a time.

    Exactly one of ``hosts`` (an inventory group, listed by ``fetch_inventory``),
    ``items`` and ``items_from`` (a variable reference holding a comma-separated list) is
    set. Inside, ``${item}`` is the current host or item.

    Attributes:
        fail_fast: stop starting new items after the first failure.
        min_success: fraction of items that must succeed for the step to succeed.
    """

    kind: Literal["for_each"] = "for_each"
    hosts: str = ""
    items: tuple[str, ...] = ()
    items_from: str = ""
    concurrency: int = 1
    steps: tuple[Step, ...]
    fail_fast: bool = False
    min_success: float = 1.0


Step = (
    PlaybookStep
    | ScaleStep
    | CommandStep
    | HttpStep
    | ApproveStep
    | VerifyStep
    | PageStep
    | TicketStep
    | WaitStep
    | ForEachStep
    | SlackStep
)
"""Any step of a plan."""

EscalationAction = PageStep | TicketStep
"""What an escalation level does."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EscalationLevel:
    """One rung of the escalation ladder.

    Attributes:
        after: wait this long after the previous rung (unless the episode resolved).
        action: page or ticket.
    """

    after: timedelta = timedelta(0)
    action: EscalationAction


@dataclass(frozen=True, slots=True, kw_only=True)
class Budget:
    """At most ``runs`` remediations of this plan per resource within ``per``."""

    runs: int
    per: timedelta


@dataclass(frozen=True, slots=True, kw_only=True)
class OnResolve:
    """What happens when the episode resolves.

    Attributes:
        resolve_page: resolve the episode's page, if one was sent.
        ticket: what happens to the episode's ticket, if one was opened.
        comment: comment added to the ticket (templates allowed).
        cancel_remediation: stop a remediation still running for the episode.
    """

    resolve_page: bool = True
    ticket: TicketOnResolve = TicketOnResolve.RESOLVE
    comment: str = "Resolved: the condition no longer holds."
    cancel_remediation: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """A remediation plan: steps, limits and the escalation ladder.

    Attributes:
        name: the plan's name (its file name without ``.yaml``); rules refer to it.
        description: what the plan is for.
        source: the file it was loaded from.
        revision: content hash of that file, recorded in every episode's history.
        cooldown: no new remediation of this plan for the resource within this time
            after the last one ended; an episode then escalates instead.
        budget: at most this many runs per window; over it, an episode escalates.
        concurrency: what a second episode does while one is being remediated.
        timeout: the longest a whole remediation may take.
        variables: default values of ``${vars.NAME}``; labels of the same name win.
        steps: the remediation, in order.
        escalation: the ladder run when remediation is not possible or did not help.
        on_resolve: what happens when the episode resolves.
    """

    name: str
    description: str = ""
    source: str = ""
    revision: str = ""
    cooldown: timedelta = timedelta(0)
    budget: Budget | None = None
    concurrency: Concurrency = Concurrency.QUEUE
    timeout: timedelta = timedelta(hours=2)
    variables: Mapping[str, str] = field(default_factory=dict)
    steps: tuple[Step, ...] = ()
    escalation: tuple[EscalationLevel, ...] = ()
    on_resolve: OnResolve = OnResolve()
