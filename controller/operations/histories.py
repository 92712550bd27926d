"""Fetch the histories behind a timeline: an episode's remediation, a resource's runs.

``timeline_of`` takes what an operator types (an episode id, a resource key, or either's
workflow id) and returns the ``Timeline``: for an episode, the history of its remediation
workflow; for a resource, the histories of its workflow's runs across continue-as-new
(the newest ``runs`` of them), with one line per episode. An episode that never had a
remediation workflow (suppressed, or recorded only) is told from its resource's histories.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Final

from temporalio import client as temporal_client
from temporalio import service as temporal_service

from controller import errors
from controller.domain import resources
from controller.operations import links as links_module
from controller.operations import timeline
from controller.operations import timeline_model as tm

DEFAULT_RUNS: Final = 20
"""Runs of a resource workflow read by default, newest first."""
_STAMP = re.compile(r"^\d{8}T\d{6}\.\d{6}Z$")
_RESOURCE_PREFIX = resources.resource_workflow_id(resources.ResourceKey(""))
_EPISODE_PREFIX = resources.remediation_workflow_id(resources.EpisodeId(""))


def parse_target(text: str) -> tuple[str, str]:
    """``("episode", id)`` or ``("resource", key)`` for what an operator typed.

    Raises:
        errors.ConfigError: neither an episode id (``rule/kind/name/STAMP``) nor a
            resource key (``kind/name``), nor the workflow id of one.
    """
    if text.startswith(_EPISODE_PREFIX):
        return "episode", text.removeprefix(_EPISODE_PREFIX)
    if text.startswith(_RESOURCE_PREFIX):
        text = text.removeprefix(_RESOURCE_PREFIX)
    elif _STAMP.fullmatch(text.rsplit("/", 1)[-1]) and text.count("/") >= 3:  # noqa: PLR2004
        return "episode", text
    try:
        return "resource", resources.parse_resource_key(text)
    except ValueError:
        raise errors.ConfigError(
            f"{text!r} is neither an episode id (rule/kind/name/STAMP, see `homeostat "
            "resource show`) nor a resource (kind/name)"
        ) from None


def episode_resource(episode: str) -> resources.ResourceKey:
    """The resource of an episode id (``rule/kind/name/STAMP``)."""
    middle = episode.split("/", 1)[1].rsplit("/", 1)[0]
    return resources.ResourceKey(middle)


def _status(execution: temporal_client.WorkflowExecution) -> str:
    status = execution.status
    return status.name.lower() if status is not None else "unknown"


def _run_ref(execution: temporal_client.WorkflowExecution, links: links_module.Links) -> tm.RunRef:
    return tm.RunRef(
        workflow_id=execution.id,
        run_id=execution.run_id,
        workflow_type=execution.workflow_type,
        status=_status(execution),
        started_at=execution.start_time,
        closed_at=execution.close_time,
        url=links.workflow(execution.id),
    )


async def _history(
    client: temporal_client.Client, workflow_id: str, run_id: str | None = None
) -> temporal_client.WorkflowHistory:
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    return await handle.fetch_history()


async def episode_timeline(
    client: temporal_client.Client, episode: str, *, links: links_module.Links
) -> tm.Timeline:
    """The timeline of an episode, from its remediation workflow's history.

    An episode whose remediation ended before its condition cleared has its resolve (and
    the page and ticket resolved with it) in the resource workflow's history only: those
    entries are taken from there.

    Raises:
        errors.NotFoundError: neither the episode's remediation nor its resource exists.
    """
    workflow_id = resources.remediation_workflow_id(resources.EpisodeId(episode))
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
        history = await _history(client, workflow_id, description.run_id)
    except temporal_service.RPCError as exc:
        if exc.status is not temporal_service.RPCStatusCode.NOT_FOUND:
            raise errors.DependencyError(f"Temporal refused: {exc.message}") from None
        return await _episode_from_resource(client, episode, links=links)
    run = timeline.entries(workflow_id, history.events)
    closed = [entry for entry in run.entries if entry.kind is tm.EntryKind.CLOSED]
    found = run.entries
    if not any(entry.kind is tm.EntryKind.RESOLVED for entry in found):
        found = tuple(
            sorted((*found, *await _resolve_entries(client, episode, links=links)), key=_at)
        )
    return tm.Timeline(
        schema_version=tm.TIMELINE_SCHEMA_VERSION,
        subject="episode",
        id=episode,
        resource=episode_resource(episode),
        status=closed[-1].status if closed else "running",
        runs=(_run_ref(description, links),),
        entries=found,
    )


def _at(entry: tm.Entry) -> datetime:
    return entry.at


async def _resolve_entries(
    client: temporal_client.Client, episode: str, *, links: links_module.Links
) -> tuple[tm.Entry, ...]:
    """The episode's resolve and on-resolve entries, from its resource's workflow."""
    try:
        whole = await resource_timeline(client, episode_resource(episode), links=links)
    except (errors.NotFoundError, IndexError):
        return ()
    wanted = {tm.EntryKind.RESOLVED, tm.EntryKind.ON_RESOLVE}
    return tuple(e for e in whole.entries if e.episode == episode and e.kind in wanted)


async def _episode_from_resource(
    client: temporal_client.Client, episode: str, *, links: links_module.Links
) -> tm.Timeline:
    """An episode without a remediation workflow: its entries in the resource's histories."""
    try:
        key = episode_resource(episode)
        whole = await resource_timeline(client, key, links=links)
    except (errors.NotFoundError, IndexError):
        raise errors.NotFoundError(f"no episode {episode}") from None
    mine = tuple(entry for entry in whole.entries if entry.episode == episode)
    if not mine:
        raise errors.NotFoundError(
            f"no episode {episode} in the last {DEFAULT_RUNS} runs of {whole.id}'s workflow"
        )
    lines = [line for line in whole.episodes if line.episode == episode]
    status = lines[0].outcome or lines[0].handling if lines else "recorded"
    return replace(whole, subject="episode", id=episode, status=status, entries=mine)


async def resource_timeline(
    client: temporal_client.Client,
    key: resources.ResourceKey,
    *,
    links: links_module.Links,
    runs: int = DEFAULT_RUNS,
) -> tm.Timeline:
    """A resource's timeline across its workflow's runs (the newest ``runs`` of them).

    Raises:
        errors.NotFoundError: the resource's workflow never ran.
    """
    workflow_id = resources.resource_workflow_id(key)
    try:
        executions = [
            execution async for execution in client.list_workflows(f"WorkflowId = '{workflow_id}'")
        ]
    except temporal_service.RPCError as exc:
        raise errors.DependencyError(f"Temporal refused the list query: {exc.message}") from None
    if not executions:
        raise errors.NotFoundError(f"no workflow for {key}: nothing ever fired for it")
    executions.sort(key=lambda execution: execution.start_time)
    executions = executions[-runs:]
    found: list[tm.Entry] = []
    for execution in executions:
        history = await _history(client, workflow_id, execution.run_id)
        found += timeline.entries(workflow_id, history.events).entries
    return tm.Timeline(
        schema_version=tm.TIMELINE_SCHEMA_VERSION,
        subject="resource",
        id=key,
        resource=key,
        status=_status(executions[-1]),
        runs=tuple(_run_ref(execution, links) for execution in executions),
        entries=tuple(found),
        episodes=episode_lines(found),
    )


def episode_lines(found: Sequence[tm.Entry]) -> tuple[tm.EpisodeLine, ...]:
    """One line per episode of a resource's entries, in the order they fired."""
    lines: dict[str, tm.EpisodeLine] = {}
    for entry in found:
        if not entry.episode:
            continue
        line = lines.get(entry.episode) or tm.EpisodeLine(
            episode=entry.episode,
            rule=entry.episode.split("/", 1)[0],
            history=links_module.history_command(entry.episode),
        )
        details = entry.details
        if entry.kind is tm.EntryKind.OPENED:
            line = replace(line, fired_at=line.fired_at or entry.at)
        elif entry.kind is tm.EntryKind.RESOLVED:
            line = replace(line, resolved_at=entry.at)
        elif entry.kind is tm.EntryKind.REMEDIATION and isinstance(details, tm.RemediationDetails):
            if entry.status == "started":
                handling = "remediated" if details.mode == "remediate" else "escalated only"
                line = replace(line, handling=handling, workflow_id=details.workflow_id)
            else:
                line = replace(line, outcome=entry.status)
        elif entry.kind is tm.EntryKind.SUPPRESSED and isinstance(details, tm.SuppressionDetails):
            handling = line.handling if line.handling != "recorded" else "suppressed"
            line = replace(line, handling=handling, reason=line.reason or details.note)
        elif entry.kind is tm.EntryKind.PROBLEM:
            line = replace(line, reason=line.reason or entry.title)
        lines[entry.episode] = line
    return tuple(lines.values())


async def timeline_of(
    client: temporal_client.Client, target: str, *, links: links_module.Links
) -> tm.Timeline:
    """The timeline of an episode or a resource, as the operator named it.

    Raises:
        errors.ConfigError: ``target`` is neither.
        errors.NotFoundError: there is no such episode or resource workflow.
    """
    subject, identifier = parse_target(target)
    if subject == "episode":
        return await episode_timeline(client, identifier, links=links)
    return await resource_timeline(client, resources.ResourceKey(identifier), links=links)
