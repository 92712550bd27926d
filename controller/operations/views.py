"""Resources as operators see them, built from Temporal visibility: no worker, no query.

``list_resources`` asks ``ListWorkflowExecutions`` for running resource workflows
(filtered server-side by the ``Homeostat*`` search attributes) and reads each one's memo;
``show_resource`` asks ``DescribeWorkflowExecution`` for one. Both answer while no worker
runs, and cost one call per page of 1,000 resources, never one per resource. The memo
is written by the workflow (``workflows.resource_memo``); a workflow started before it
existed has none, and its view says so (``details: false``) with the phase from its
search attributes.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from temporalio import client as temporal_client
from temporalio import common as temporal_common
from temporalio import service as temporal_service
from temporalio.api.workflow.v1 import message_pb2 as workflow_pb
from temporalio.api.workflowservice.v1 import request_response_pb2 as workflowservice_pb

from controller import errors
from controller.domain import contract, resources
from controller.operations import links as links_module
from controller.operations import payload_fields
from controller.workflows import remediation_io, resource_io, resource_memo

SCHEMA_VERSION: Final = 1
"""Version of the JSON schema of ``ResourceList`` and ``ResourceView``; fields are only added."""

_PHASE = temporal_common.SearchAttributeKey.for_keyword("HomeostatPhase")
_RULE = temporal_common.SearchAttributeKey.for_keyword("HomeostatRule")
_VALUE = re.compile(r"^[A-Za-z0-9_.:@/-]{1,320}$")
_PAGE = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceFilter:
    """Which resources to list; ``None`` means any.

    Attributes:
        phase: only resources in this phase.
        rule: only resources whose current (or last) episode is of this rule.
        kind: only resources of this kind (``service`` in ``service/web``).
    """

    phase: resource_io.Phase | None = None
    rule: str | None = None
    kind: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceSummary:
    """One line of ``homeostat resource list``.

    Attributes:
        resource: ``kind/name``.
        kind: its kind.
        phase: where it stands.
        since: when it entered that phase (``None`` for workflows without a memo).
        open_episodes: episodes open now.
        last_rule: the rule of the episode it is about now, else of its last one.
        cooldown_until: the latest cooldown deadline still ahead.
        cooldown_left: time left until then.
        silenced_until: automation is silenced until then.
        paused: automation is paused.
        workflow_id: its workflow.
        workflow_url: its Temporal Web UI page ("" without a UI URL).
        details: the workflow publishes a memo (``False``: started by an older version).
    """

    resource: resources.ResourceKey
    kind: str
    phase: resource_io.Phase
    since: datetime | None
    open_episodes: int
    last_rule: str
    cooldown_until: datetime | None
    cooldown_left: timedelta | None
    silenced_until: datetime | None
    paused: bool
    workflow_id: str
    workflow_url: str
    details: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceList:
    """The answer of ``homeostat resource list --json`` and ``GET /v1/resources``.

    Attributes:
        schema_version: ``SCHEMA_VERSION``.
        query: the visibility query that selected the resources.
        count: how many are listed.
        resources: the resources, sorted by name.
    """

    schema_version: int
    query: str
    count: int
    resources: tuple[ResourceSummary, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class EpisodeView:
    """An open episode of a resource.

    Attributes:
        episode: its id.
        rule: the rule that fired.
        severity: the rule's severity.
        plan: the remediation plan ("" for none).
        status: what the resource workflow did about it (``running``, ``suppressed`` ...).
        started_at: when its condition started firing.
        resolved: its condition cleared.
        outcome: how its remediation ended, once it did.
        note: why it was not remediated, or what went wrong.
        merged_into: the episode whose remediation covers it.
        workflow_id: its remediation workflow, when it has one.
        workflow_url: that workflow's Web UI page.
        history: the command that prints its timeline.
    """

    episode: resources.EpisodeId
    rule: str
    severity: str
    plan: str
    status: resource_io.EpisodeStatus
    started_at: datetime
    resolved: bool
    outcome: remediation_io.Outcome | None
    note: str
    merged_into: resources.EpisodeId | None
    workflow_id: str
    workflow_url: str
    history: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RunningView:
    """The remediation running now."""

    episode: resources.EpisodeId
    plan: str
    mode: remediation_io.Mode
    phase: resource_io.Phase
    started_at: datetime
    workflow_id: str
    workflow_url: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CooldownView:
    """No remediation of ``plan`` until ``until`` (``left`` from now)."""

    plan: str
    until: datetime
    left: timedelta


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetView:
    """``used`` remediations of ``plan`` in the last ``per``, of ``limit`` allowed.

    ``limit`` is 0 when unknown (uses recorded before limits were); ``frees_at`` is when the
    oldest use leaves the window.
    """

    plan: str
    used: int
    limit: int
    per: timedelta
    frees_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class SilenceView:
    """Automation is silenced: episodes are recorded, nothing is run or paged."""

    until: datetime
    left: timedelta
    by: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PauseView:
    """Automation is paused until someone resumes it."""

    since: datetime | None
    by: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OutcomeView:
    """How a closed episode ended."""

    episode: resources.EpisodeId
    rule: str
    plan: str
    status: resource_io.EpisodeStatus
    outcome: remediation_io.Outcome | None
    closed_at: datetime
    note: str
    history: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ResourceView:
    """The answer of ``homeostat resource show --json`` and ``GET /v1/resources/{id}``.

    Attributes:
        schema_version: ``SCHEMA_VERSION``.
        resource: ``kind/name``.
        kind: its kind.
        workflow_id: the resource workflow.
        workflow_status: ``running``, or how its last run ended (a quiet resource's
            workflow completes; the next transition starts a new one).
        workflow_url: its Web UI page.
        phase: where it stands.
        since: when it entered that phase.
        open_episodes: how many episodes are open (``episodes`` lists the newest 20).
        episodes: open episodes, newest first.
        running: the remediation running now.
        queued: episodes waiting for a remediation.
        cooldowns: cooldowns still ahead.
        budget: remediation budgets in use.
        silence: the silence in force.
        pause: the pause in force.
        last_outcomes: the last closed episodes, newest first.
        last_rule: the rule it is about now, else of its last episode.
        details: the workflow publishes a memo (``False``: only ``phase`` is known).
        history: the command that prints its timeline.
    """

    schema_version: int
    resource: resources.ResourceKey
    kind: str
    workflow_id: str
    workflow_status: str
    workflow_url: str
    phase: resource_io.Phase
    since: datetime | None
    open_episodes: int
    episodes: tuple[EpisodeView, ...]
    running: RunningView | None
    queued: int
    cooldowns: tuple[CooldownView, ...]
    budget: tuple[BudgetView, ...]
    silence: SilenceView | None
    pause: PauseView | None
    last_outcomes: tuple[OutcomeView, ...]
    last_rule: str
    details: bool
    history: str


def _checked(name: str, value: str) -> str:
    if not _VALUE.fullmatch(value):
        raise errors.ConfigError(
            f"--{name}: {value!r} is not a valid {name} (letters, digits, '_.:@/-')"
        )
    return value


def visibility_query(selection: ResourceFilter) -> str:
    """The visibility query selecting running resource workflows that match ``selection``.

    Raises:
        errors.ConfigError: a filter value holds characters no rule or kind has.
    """
    parts = [
        f"WorkflowType = '{contract.RESOURCE_WORKFLOW}'",
        "ExecutionStatus = 'Running'",
    ]
    if selection.phase is not None:
        parts.append(f"HomeostatPhase = '{selection.phase.value}'")
    if selection.rule is not None:
        parts.append(f"HomeostatRule = '{_checked('rule', selection.rule)}'")
    if selection.kind is not None:
        parts.append(f"HomeostatResourceKind = '{_checked('kind', selection.kind)}'")
    return " AND ".join(parts)


def _phase_of(attributes: temporal_common.TypedSearchAttributes) -> resource_io.Phase:
    value = attributes.get(_PHASE)
    try:
        return resource_io.Phase(value) if value else resource_io.Phase.HEALTHY
    except ValueError:
        return resource_io.Phase.HEALTHY


async def _memo(execution: temporal_client.WorkflowExecution) -> resource_memo.ResourceMemo | None:
    if resource_memo.MEMO_KEY not in execution.raw_info.memo.fields:
        return None
    try:
        memo: resource_memo.ResourceMemo = await execution.memo_value(
            resource_memo.MEMO_KEY, type_hint=resource_memo.ResourceMemo
        )
    except (KeyError, TypeError, ValueError):
        return None
    return memo


def _attribute(info: workflow_pb.WorkflowExecutionInfo, name: str) -> str:
    payload = info.search_attributes.indexed_fields.get(name)
    value = payload_fields.decode(payload) if payload is not None else None
    return value if isinstance(value, str) else ""


def _summary(
    info: workflow_pb.WorkflowExecutionInfo, *, links: links_module.Links, now: datetime
) -> ResourceSummary:
    """A list line from a raw visibility record: its search attributes and memo, as JSON.

    Read field by field rather than through the data converter: a list of 10,000 would
    otherwise spend most of its time building typed values it does not show.
    """
    workflow_id = info.execution.workflow_id
    key = resources.resource_key_of(workflow_id)
    payload = info.memo.fields.get(resource_memo.MEMO_KEY)
    memo = payload_fields.obj(payload_fields.decode(payload)) if payload is not None else {}
    try:
        phase = resource_io.Phase(memo.get("phase") or _attribute(info, "HomeostatPhase"))
    except ValueError:
        phase = resource_io.Phase.HEALTHY
    ahead = [
        until
        for cooldown in memo.get("cooldowns") or []
        if (until := payload_fields.moment(payload_fields.obj(cooldown).get("until"))) is not None
        and until > now
    ]
    cooldown_until = max(ahead, default=None)
    silenced_until = payload_fields.moment(memo.get("silenced_until"))
    return ResourceSummary(
        resource=key,
        kind=_attribute(info, "HomeostatResourceKind") or resources.resource_kind(key),
        phase=phase,
        since=payload_fields.moment(memo.get("phase_since")),
        open_episodes=payload_fields.integer(memo.get("open_episodes")) or 0,
        last_rule=payload_fields.text(memo.get("last_rule")) or _attribute(info, "HomeostatRule"),
        cooldown_until=cooldown_until,
        cooldown_left=cooldown_until - now if cooldown_until else None,
        silenced_until=silenced_until if silenced_until and silenced_until > now else None,
        paused=memo.get("paused") is True,
        workflow_id=workflow_id,
        workflow_url=links.workflow(workflow_id),
        details=bool(memo),
    )


async def pages(
    client: temporal_client.Client, query: str
) -> AsyncGenerator[Sequence[workflow_pb.WorkflowExecutionInfo], None]:
    """The workflow executions ``query`` selects, a page of up to 1,000 at a time.

    One visibility call (``ListWorkflowExecutions``) per page, made when the page is
    wanted; Temporal's errors come out of the iteration as they are.
    """
    request = workflowservice_pb.ListWorkflowExecutionsRequest(
        namespace=client.namespace, query=query, page_size=_PAGE
    )
    while True:
        answer = await client.workflow_service.list_workflow_executions(request, retry=True)
        yield answer.executions
        if not answer.next_page_token:
            return
        request.next_page_token = answer.next_page_token


async def list_resources(
    client: temporal_client.Client,
    *,
    selection: ResourceFilter,
    links: links_module.Links,
    now: datetime,
    limit: int | None = None,
) -> ResourceList:
    """The resources whose workflow runs, as selected, sorted by name.

    One visibility call per 1,000 resources (``ListWorkflowExecutions``), no query.

    Raises:
        errors.ConfigError: a filter value is not valid.
        errors.DependencyError: Temporal refused the visibility query.
    """
    query = visibility_query(selection)
    found: list[ResourceSummary] = []
    try:
        async with contextlib.aclosing(pages(client, query)) as listed:
            async for page in listed:
                found += [_summary(info, links=links, now=now) for info in page]
                if limit is not None and len(found) >= limit:
                    break
    except temporal_service.RPCError as exc:
        raise errors.DependencyError(f"Temporal refused the list query: {exc.message}") from None
    found = found[:limit] if limit is not None else found
    found.sort(key=lambda summary: summary.resource)
    return ResourceList(
        schema_version=SCHEMA_VERSION, query=query, count=len(found), resources=tuple(found)
    )


def _episode_view(episode: resource_memo.MemoEpisode, links: links_module.Links) -> EpisodeView:
    has_workflow = (
        episode.status is resource_io.EpisodeStatus.RUNNING or episode.outcome is not None
    ) and episode.status is not resource_io.EpisodeStatus.MERGED
    return EpisodeView(
        episode=episode.episode,
        rule=episode.rule,
        severity=episode.severity,
        plan=episode.plan,
        status=episode.status,
        started_at=episode.started_at,
        resolved=episode.resolved,
        outcome=episode.outcome,
        note=episode.note,
        merged_into=episode.merged_into,
        workflow_id=resources.remediation_workflow_id(episode.episode) if has_workflow else "",
        workflow_url=links.episode(episode.episode) if has_workflow else "",
        history=links_module.history_command(episode.episode),
    )


def _view(
    description: temporal_client.WorkflowExecutionDescription,
    memo: resource_memo.ResourceMemo | None,
    *,
    links: links_module.Links,
    now: datetime,
) -> ResourceView:
    key = resources.resource_key_of(description.id)
    status = description.status
    running_status = status in {None, temporal_client.WorkflowExecutionStatus.RUNNING}
    workflow_status = status.name.lower() if status is not None else "running"
    if memo is None:
        return ResourceView(
            schema_version=SCHEMA_VERSION,
            resource=key,
            kind=resources.resource_kind(key),
            workflow_id=description.id,
            workflow_status=workflow_status,
            workflow_url=links.workflow(description.id),
            phase=_phase_of(description.typed_search_attributes),
            since=None,
            open_episodes=0,
            episodes=(),
            running=None,
            queued=0,
            cooldowns=(),
            budget=(),
            silence=None,
            pause=None,
            last_outcomes=(),
            last_rule=description.typed_search_attributes.get(_RULE) or "",
            details=False,
            history=links_module.history_command(key),
        )
    running = memo.running
    silenced = memo.silenced_until is not None and memo.silenced_until > now
    return ResourceView(
        schema_version=SCHEMA_VERSION,
        resource=key,
        kind=resources.resource_kind(key),
        workflow_id=description.id,
        workflow_status=workflow_status,
        workflow_url=links.workflow(description.id),
        phase=memo.phase if running_status else resource_io.Phase.HEALTHY,
        since=memo.phase_since,
        open_episodes=memo.open_episodes,
        episodes=tuple(_episode_view(episode, links) for episode in memo.episodes),
        running=RunningView(
            episode=running.episode,
            plan=running.plan,
            mode=running.mode,
            phase=running.phase,
            started_at=running.started_at,
            workflow_id=running.workflow_id,
            workflow_url=links.workflow(running.workflow_id),
        )
        if running is not None
        else None,
        queued=memo.queued,
        cooldowns=tuple(
            CooldownView(plan=cooldown.plan, until=cooldown.until, left=cooldown.until - now)
            for cooldown in memo.cooldowns
            if cooldown.until > now
        ),
        budget=tuple(
            BudgetView(
                plan=use.plan, used=use.used, limit=use.limit, per=use.per, frees_at=use.frees_at
            )
            for use in memo.budget
            if use.frees_at > now
        ),
        silence=SilenceView(
            until=memo.silenced_until,
            left=memo.silenced_until - now,
            by=memo.silenced_by,
            reason=memo.silence_reason,
        )
        if silenced and memo.silenced_until is not None
        else None,
        pause=PauseView(since=memo.paused_at, by=memo.paused_by, reason=memo.pause_reason)
        if memo.paused
        else None,
        last_outcomes=tuple(
            OutcomeView(
                episode=outcome.episode,
                rule=outcome.rule,
                plan=outcome.plan,
                status=outcome.status,
                outcome=outcome.outcome,
                closed_at=outcome.closed_at,
                note=outcome.note,
                history=links_module.history_command(outcome.episode),
            )
            for outcome in memo.outcomes
        ),
        last_rule=memo.last_rule,
        details=True,
        history=links_module.history_command(key),
    )


async def show_resource(
    client: temporal_client.Client,
    key: resources.ResourceKey,
    *,
    links: links_module.Links,
    now: datetime,
) -> ResourceView:
    """The resource's view, from its workflow's latest run.

    Raises:
        errors.NotFoundError: no workflow was ever started for ``key`` (it never fired).
        errors.DependencyError: Temporal refused the call.
    """
    handle = client.get_workflow_handle(resources.resource_workflow_id(key))
    try:
        description = await handle.describe()
    except temporal_service.RPCError as exc:
        if exc.status is temporal_service.RPCStatusCode.NOT_FOUND:
            raise errors.NotFoundError(
                f"no workflow for {key}: nothing ever fired for it (or its history was deleted)"
            ) from None
        raise errors.DependencyError(
            f"Temporal refused to describe {handle.id}: {exc.message}"
        ) from None
    return _view(description, await _memo(description), links=links, now=now)
