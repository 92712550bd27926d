"""The activities the workflows call: their names and their one-in, one-out payload types.

This module is the contract between the workflows (which call activities by name, never
by importing them) and ``controller.activities`` (which implements each name with
``@activity.defn(name=activity_io.RUN_PLAYBOOK)`` and exactly these types). Renaming a
name or a field breaks running workflows; new fields are added with defaults.

Payloads travel through ``controller.workflows.converter.DATA_CONVERTER`` (pydantic), so
``timedelta``, ``datetime``, tuples and nested dataclasses round-trip.

Errors, as the workflows expect them:

- An action that ran and did not achieve its goal returns an output with ``ok=False``
  (a playbook with failed hosts, a command with a non-zero exit, a verification that did
  not hold): the workflow records it and follows the plan's ``on_failure``.
- An action that could not run raises ``ApplicationError(type=TRANSIENT_ERROR)``
  (timeouts, connection errors, 5xx, 429): Temporal retries it per the step's policy.
- An action that can never succeed raises ``ApplicationError(type=PERMANENT_ERROR,
  non_retryable=True)`` (missing playbook, 4xx, bad arguments).

Every activity is idempotent for the same input: ``ActivityContext.idempotency_key`` is
stable across retries and worker crashes (page dedup keys, ticket labels and playbook
locks derive from it or from the episode id).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from controller.domain import resources, transitions
    from controller.plans import spec

TRANSIENT_ERROR: Final = "TransientError"
"""``ApplicationError.type`` of a failure that a retry may fix (``errors.TransientError``)."""
PERMANENT_ERROR: Final = "PermanentError"
"""``ApplicationError.type`` of a failure that no retry can fix (``errors.PermanentError``)."""

LOAD_PLAN: Final = "load_plan"
START_EPISODE: Final = "start_episode"
"""Starts an episode's remediation workflow; its payloads are in ``remediation_io``."""
FETCH_INVENTORY: Final = "fetch_inventory"
RUN_PLAYBOOK: Final = "run_playbook"
SCALE_READ: Final = "scale_read"
SCALE: Final = "scale"
QUERY_METRIC: Final = "query_metric"
RUN_COMMAND: Final = "run_command"
HTTP_CALL: Final = "http_call"
PAGE_TRIGGER: Final = "page_trigger"
PAGE_RESOLVE: Final = "page_resolve"
TICKET_CREATE: Final = "ticket_create"
TICKET_COMMENT: Final = "ticket_comment"
TICKET_RESOLVE: Final = "ticket_resolve"
VERIFY_PROMQL: Final = "verify_promql"
VERIFY_CEL: Final = "verify_cel"
SLACK_POST_APPROVAL: Final = "slack_post_approval"
SLACK_UPDATE_APPROVAL: Final = "slack_update_approval"
"""Slack approval messages; their payloads are in ``controller.workflows.slack_io``."""
SLACK_NOTIFY: Final = "slack_notify"
"""A ``slack`` step's message; its payloads are in ``controller.workflows.slack_io``."""

ALL: Final = (
    LOAD_PLAN,
    START_EPISODE,
    FETCH_INVENTORY,
    RUN_PLAYBOOK,
    SCALE_READ,
    SCALE,
    QUERY_METRIC,
    RUN_COMMAND,
    HTTP_CALL,
    PAGE_TRIGGER,
    PAGE_RESOLVE,
    TICKET_CREATE,
    TICKET_COMMENT,
    TICKET_RESOLVE,
    VERIFY_PROMQL,
    VERIFY_CEL,
    SLACK_POST_APPROVAL,
    SLACK_UPDATE_APPROVAL,
    SLACK_NOTIFY,
)
"""Every activity name a workflow may schedule; a worker must register all of them."""

OUTPUT_TAIL_BYTES: Final = 8192
"""Text outputs (stdout, stderr, bodies) are cut to their last this many bytes."""


def page_dedup_key(episode: resources.EpisodeId) -> str:
    """The PagerDuty dedup key of an episode: every page of the episode is one incident."""
    return f"homeostat/{episode}"


def ticket_label(episode: resources.EpisodeId) -> str:
    """The ticket label that marks an episode's ticket (Jira labels allow no spaces)."""
    return "homeostat-" + hashlib.sha256(episode.encode()).hexdigest()[:20]


@dataclass(frozen=True, slots=True, kw_only=True)
class ActivityContext:
    """Who asks for the side effect, carried by every activity input except ``load_plan``.

    Attributes:
        resource: the resource being remediated.
        episode: the episode the remediation belongs to.
        rule: the rule that fired.
        plan: the plan's name.
        step: the step's path in the plan, ``restart`` or ``per-host/web-1/restart``.
    """

    resource: resources.ResourceKey
    episode: resources.EpisodeId
    rule: str
    plan: str
    step: str

    @property
    def idempotency_key(self) -> str:
        """Stable for this step of this episode across retries and worker crashes."""
        return f"{self.episode}/{self.step}"


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadPlanInput:
    """Load the plan a rule names (the activity reads ``remediations/NAME.yaml``)."""

    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadPlanOutput:
    """The plan, or why there is none.

    Attributes:
        plan: the validated plan; ``None`` when there is no such plan or it is invalid.
        problem: why ``plan`` is ``None`` (``file:line:column: message`` when invalid).
        name: the plan asked for (a local activity's marker does not record its input).
    """

    plan: spec.Plan | None = None
    problem: str = ""
    name: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchInventoryInput:
    """List the hosts of an inventory group (CMDB or Ansible inventory)."""

    context: ActivityContext
    group: str
    selector: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchInventoryOutput:
    """The group's hosts, sorted, without duplicates."""

    hosts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPlaybookInput:
    """Run an Ansible playbook with ansible-runner.

    ``extra_vars`` values come from labels and annotations: the activity passes them as
    data that Ansible does not template (ansible-core 2.19 trusts only templates that come
    from playbook files; mark them unsafe otherwise).

    Attributes:
        context: who asks.
        playbook: path relative to the configured playbooks directory.
        hosts: inventory hosts; empty (and no ``groups``) means the playbook's own
            ``hosts:`` pattern.
        groups: inventory groups whose hosts run too, listed when the activity starts
            (so the run is batched and resumable host by host, like ``hosts``).
        limit: restrict the run to these hosts (a retry of the failed hosts).
        extra_vars: structured extra vars.
        check: run in check mode.
        tags: only these tags.
    """

    context: ActivityContext
    playbook: str
    hosts: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    limit: tuple[str, ...] = ()
    extra_vars: Mapping[str, Any] = field(default_factory=dict)
    check: bool = False
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class HostResult:
    """What a playbook did on one host.

    Attributes:
        host: the inventory host name.
        ok: every task succeeded (or was skipped).
        changed: at least one task changed something.
        unreachable: the host could not be reached.
        failed_task: the first failed task's name, if any.
        message: the failure's message, cut short.
    """

    host: str
    ok: bool
    changed: bool = False
    unreachable: bool = False
    failed_task: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPlaybookOutput:
    """The play's recap.

    Attributes:
        ok: every host succeeded.
        status: ansible-runner's status (``successful``, ``failed`` ...).
        rc: ansible-playbook's exit code.
        hosts: one result per host, sorted by host.
        log_ref: where the full output is kept (a path or URL), outside the history.
        attempt: the activity attempt that finished the run.
        ran: the hosts that attempt ran; the others were finished by earlier attempts
            (their last heartbeat) and were not run again.
    """

    ok: bool
    status: str = ""
    rc: int = 0
    hosts: tuple[HostResult, ...] = ()
    log_ref: str = ""
    attempt: int = 1
    ran: tuple[str, ...] = ()

    @property
    def failed_hosts(self) -> tuple[str, ...]:
        """Hosts that failed or were unreachable."""
        return tuple(result.host for result in self.hosts if not result.ok)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScaleReadInput:
    """Read a target's current replica count."""

    context: ActivityContext
    target: spec.ScaleTarget


@dataclass(frozen=True, slots=True, kw_only=True)
class ScaleReadOutput:
    """The current replica count."""

    replicas: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ScaleInput:
    """Set a target's replica count (idempotent: setting the current count is a no-op).

    Attributes:
        context: who asks.
        target: the target and its actuator.
        replicas: the desired count.
        previous: the count the workflow last read, for the record and for actuators
            that take a delta.
    """

    context: ActivityContext
    target: spec.ScaleTarget
    replicas: int
    previous: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ScaleOutput:
    """The count after the change, as the actuator reports it."""

    replicas: int
    changed: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryMetricInput:
    """Evaluate an instant PromQL query that yields one number (the scaling metric)."""

    context: ActivityContext
    query: str


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryMetricOutput:
    """The number, or ``None`` when the query returned no series.

    Attributes:
        value: the value of the single (or first) series.
        series: how many series the query returned.
    """

    value: float | None = None
    series: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCommandInput:
    """Run a command without a shell.

    Attributes:
        context: who asks.
        argv: the literal command line (never holds values from labels).
        env: environment variables set by the plan (values may come from labels).
        variables: every resolved variable; the activity exports each as
            ``HOMEOSTAT_VAR_<NAME>`` (upper-cased, non-alphanumerics as ``_``) and all of
            them as JSON in ``HOMEOSTAT_VARS``.
        cwd: working directory; empty means the activity's configured one.
        ok_exit_codes: exit codes that count as success.
    """

    context: ActivityContext
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    variables: Mapping[str, str] = field(default_factory=dict)
    cwd: str = ""
    ok_exit_codes: tuple[int, ...] = (0,)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCommandOutput:
    """How the command ended.

    Attributes:
        ok: the exit code is one of ``ok_exit_codes``.
        exit_code: the exit code (negative: killed by that signal).
        stdout: the last ``OUTPUT_TAIL_BYTES`` of standard output.
        stderr: the last ``OUTPUT_TAIL_BYTES`` of standard error.
        log_ref: where the full output is kept, if anywhere.
        stdout_json: standard output parsed, when it is one JSON object or array (as
            ``terraform output -json`` or ``kubectl -o json`` print); else ``None``.
    """

    ok: bool
    exit_code: int
    stdout: str = ""
    stderr: str = ""
    log_ref: str = ""
    stdout_json: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpCallInput:
    """Make one HTTP request (``${...}`` already resolved by the workflow)."""

    context: ActivityContext
    request: spec.HttpRequest


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpCallOutput:
    """The response.

    Attributes:
        ok: the status is expected (``expect_status``, or any 2xx).
        status: HTTP status code.
        json_body: the body parsed as JSON, when it is JSON.
        text: the last ``OUTPUT_TAIL_BYTES`` of the body, when it is not JSON.
    """

    ok: bool
    status: int
    json_body: Any = None
    text: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Link:
    """A link shown with a page or ticket (runbook, Grafana, Temporal Web UI)."""

    href: str
    text: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PageTriggerInput:
    """Trigger (or re-trigger: same dedup key, same incident) a page.

    Attributes:
        context: who asks.
        dedup_key: the episode's ``page_dedup_key``; stable across retries.
        summary: one line.
        severity: PagerDuty severity.
        source: the affected resource.
        component: the rule.
        routing: name of a configured routing key; empty means the default.
        details: custom details.
        links: links to show.
    """

    context: ActivityContext
    dedup_key: str
    summary: str
    severity: transitions.Severity
    source: str
    component: str = ""
    routing: str = ""
    details: Mapping[str, Any] = field(default_factory=dict)
    links: tuple[Link, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PageResolveInput:
    """Resolve the page with this dedup key (resolving twice is harmless)."""

    context: ActivityContext
    dedup_key: str
    routing: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PageOutput:
    """What the Events API answered."""

    dedup_key: str
    status: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketCreateInput:
    """Open a ticket, unless one labelled ``episode_label`` exists already.

    Attributes:
        context: who asks.
        episode_label: the episode's ``ticket_label``; searched for before creating, added
            to the new ticket.
        project: project key.
        summary: title.
        description: body.
        issue_type: issue type name.
        priority: priority name; empty means the project's default.
        labels: further labels.
        links: links to add to the description.
    """

    context: ActivityContext
    episode_label: str
    project: str
    summary: str
    description: str = ""
    issue_type: str = "Incident"
    priority: str = ""
    labels: tuple[str, ...] = ()
    links: tuple[Link, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketOutput:
    """The ticket.

    Attributes:
        key: the ticket's key (``OPS-123``).
        url: its web address.
        created: false when an existing ticket with the episode label was found.
    """

    key: str
    url: str = ""
    created: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketCommentInput:
    """Add a comment to a ticket."""

    context: ActivityContext
    key: str
    body: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketCommentOutput:
    """The new comment's id."""

    comment_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketResolveInput:
    """Comment on a ticket, then move it to a done state (no-op if it is done already)."""

    context: ActivityContext
    key: str
    comment: str = ""
    transition: str = "Done"


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketResolveOutput:
    """The ticket's status after the transition."""

    key: str
    status: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyPromqlInput:
    """Poll a PromQL query until it returns a non-empty result, or ``within`` elapses.

    The activity heartbeats after every poll; its start-to-close timeout is ``within``
    plus a margin.

    Attributes:
        context: who asks.
        query: the query, with label values already escaped into string literals.
        within: how long to keep trying.
        interval: time between polls.
    """

    context: ActivityContext
    query: str
    within: timedelta
    interval: timedelta = timedelta(seconds=15)


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyCelInput:
    """Poll a CEL condition until it is true, or ``within`` elapses.

    Attributes:
        context: who asks.
        expression: the CEL condition.
        variables: bound in the expression (``vars``, ``labels``, ``annotations``,
            ``resource``, ``steps`` ...).
        http: when set, requested before every evaluation and bound as ``response``
            (``status``, ``json``, ``text``).
        within: how long to keep trying.
        interval: time between polls.
    """

    context: ActivityContext
    expression: str
    variables: Mapping[str, Any] = field(default_factory=dict)
    http: spec.HttpRequest | None = None
    within: timedelta = timedelta(minutes=5)
    interval: timedelta = timedelta(seconds=15)


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyOutput:
    """Whether the condition held in time.

    Attributes:
        ok: it held before the deadline.
        checks: how many polls were made.
        observed: the last observed value or result, short, for the record.
    """

    ok: bool
    checks: int = 0
    observed: str = ""
