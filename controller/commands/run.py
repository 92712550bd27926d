"""``homeostat run PLAN RESOURCE``: start a remediation plan by hand.

The run is an episode like any other: it goes through the resource's workflow (so it
respects cooldown, budget, silences and the one-remediation-at-a-time rule) and gets its
own history. The episode ends when the plan does; no resolve follows.

While it waits, the command prints each step as it ends, read from the episode's history
through the same timeline as ``homeostat history``; an episode the resource workflow
did not run is read from the workflow's memo (``not run: why``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Final

import typer
from temporalio import client as temporal_client
from temporalio import service as temporal_service

from controller import errors
from controller.commands import session, terminal
from controller.domain import contract, resources, transitions
from controller.operations import histories, links, timeline, views
from controller.operations import timeline_model as tm
from controller.plans import loader as plans_loader
from controller.workflows import resource_io

_STARTING: Final = frozenset({resource_io.EpisodeStatus.DONE, resource_io.EpisodeStatus.OPEN})
_NOT_RUN: Final = frozenset(
    {
        resource_io.EpisodeStatus.SKIPPED,
        resource_io.EpisodeStatus.SUPPRESSED,
        resource_io.EpisodeStatus.MERGED,
        resource_io.EpisodeStatus.OPEN,
        resource_io.EpisodeStatus.DONE,
    }
)
_SHOWN: Final = frozenset(
    {
        tm.EntryKind.STEP,
        tm.EntryKind.VERIFICATION,
        tm.EntryKind.ESCALATION,
        tm.EntryKind.APPROVAL_REQUESTED,
        tm.EntryKind.APPROVAL,
        tm.EntryKind.SUPPRESSED,
    }
)
_POLL_SECONDS: Final = 0.5


class Ending(StrEnum):
    """How a run ended, as far as the command saw it."""

    SUCCEEDED = "succeeded"
    NOT_SUCCEEDED = "not_succeeded"
    NOT_RUN = "not_run"
    STILL_RUNNING = "still_running"
    SENT = "sent"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Watch:
    fired: transitions.Transition
    links: links.Links
    deadline: float
    timeout: int


def _labels(pairs: list[str]) -> dict[str, str]:
    found = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--var")
        found[key] = value
    return found


def _check_plan(remediations: Path, plan: str) -> None:
    """Exit 2 unless ``plan`` is a valid plan in ``remediations``."""
    if not remediations.is_dir():
        session.fail(
            f"no remediations folder at {remediations} (rules.remediations_dir): run from "
            "your Homeostat folder, or name its settings with --config",
            session.USAGE,
        )
    try:
        found = plans_loader.find_plan(remediations, plan)
        known = sorted(plans_loader.load_plans(remediations)) if found is None else []
    except errors.HomeostatError as exc:
        session.fail(str(exc), session.USAGE)
    if found is None:
        session.fail(
            f"no plan {plan!r} in {remediations} (known: {', '.join(known) or 'none'})",
            session.USAGE,
        )


def run(
    plan: Annotated[str, typer.Argument(help="The plan's name (its file in remediations/).")],
    resource: Annotated[str, typer.Argument(help="The resource as kind/name, e.g. host/db-1.")],
    var: Annotated[
        list[str] | None,
        typer.Option("--var", "-v", help="NAME=VALUE, given to the plan as labels.NAME."),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the outcome.")] = True,
    timeout: Annotated[int, typer.Option(help="Seconds to wait at most.", min=1)] = 3600,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Settings file (YAML).", dir_okay=False)
    ] = None,
) -> None:
    """Run a remediation plan for a resource now, as an episode of its own.

    Prints the episode's Temporal Web UI link, then each step as it ends, then the outcome.
    Exits 0 when the plan succeeded, 1 when it failed, escalated, was not run (cooldown,
    budget, silence, another remediation running: `not run: ...` says why) or was still
    running at --timeout, 2 on a usage or configuration error.
    """
    settings = session.load_settings(config)
    try:
        key = resources.parse_resource_key(resource)
    except ValueError as exc:
        session.fail(str(exc), session.USAGE)
    _check_plan(settings.rules.remediations_dir, plan)
    now = datetime.now(UTC)
    fired = transitions.Transition(
        kind=transitions.TransitionKind.FIRED,
        rule=contract.MANUAL_RULE,
        resource=key,
        episode=transitions.episode_id(rule=contract.MANUAL_RULE, resource=key, started_at=now),
        started_at=now,
        at=now,
        severity=transitions.Severity.INFO,
        remediation=plan,
        labels=_labels(var or []),
        annotations={"summary": f"{plan} run by hand for {key}"},
    )
    watch = _Watch(
        fired=fired,
        links=session.links_of(settings),
        deadline=time.monotonic() + timeout,
        timeout=timeout,
    )
    task_queue = settings.temporal.task_queue

    async def start(client: temporal_client.Client) -> Ending:
        from controller import assembly  # noqa: PLC0415 - the ingest side, for its one hand-off

        send = assembly.temporal_sender(
            client, task_queue, options=assembly.resource_options(settings)
        )
        await send(fired.resource, [fired])
        typer.echo(f"episode {fired.episode} sent to {resources.resource_workflow_id(key)}")
        url = watch.links.episode(fired.episode)
        if url:
            typer.echo(f"web UI:  {url}")
        typer.echo(f"history: {links.history_command(fired.episode)}")
        return await _follow(client, watch) if wait else Ending.SENT

    ending = session.run(settings, start)
    raise typer.Exit(0 if ending in {Ending.SUCCEEDED, Ending.SENT} else session.FAILED)


async def _not_run(client: temporal_client.Client, watch: _Watch) -> str | None:
    """Why the resource workflow did not run the episode, once its memo says so."""
    episode = watch.fired.episode
    try:
        view = await views.show_resource(
            client, watch.fired.resource, links=watch.links, now=datetime.now(UTC)
        )
    except errors.NotFoundError:
        return None
    for record in view.episodes:
        if record.episode == episode and record.status in _NOT_RUN and record.outcome is None:
            # Done or open without a note: its remediation is being started (the resource
            # workflow records the episode before the child exists); with a note it never will.
            if record.status in _STARTING and not record.note:
                return None
            return record.note or record.status.value
    for outcome in view.last_outcomes:
        if outcome.episode == episode and outcome.outcome is None:
            return outcome.note or outcome.status.value
    return None


async def _entries(client: temporal_client.Client, workflow_id: str) -> list[tm.Entry] | None:
    """The episode's timeline so far; ``None`` while its remediation workflow does not exist."""
    try:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
    except temporal_service.RPCError as exc:
        if exc.status is temporal_service.RPCStatusCode.NOT_FOUND:
            return None
        raise
    return list(timeline.entries(workflow_id, history.events).entries)


def _progress(entry: tm.Entry) -> str:
    line = f"  {terminal.clock(entry.at)}  {entry.title}"
    if entry.kind is tm.EntryKind.APPROVAL_REQUESTED:
        resource = histories.episode_resource(entry.episode)
        line += f"\n            homeostat resource approve {resource} {entry.episode}"
    return line


async def _follow(client: temporal_client.Client, watch: _Watch) -> Ending:
    """Print each step as it ends until the remediation does, or the deadline passes."""
    workflow_id = resources.remediation_workflow_id(watch.fired.episode)
    shown: set[tuple[int, str, str]] = set()
    while time.monotonic() < watch.deadline:
        found = await _entries(client, workflow_id)
        if found is None:
            why = await _not_run(client, watch)
            if why is not None:
                typer.echo(f"not run: {why}")
                return Ending.NOT_RUN
        for entry in found or []:
            key = (entry.event_id, entry.step, entry.kind.value)
            if entry.kind in _SHOWN and entry.status != "running" and key not in shown:
                shown.add(key)
                typer.echo(_progress(entry))
            if entry.kind is tm.EntryKind.CLOSED:
                typer.echo(f"outcome: {entry.title.removeprefix('remediation ')}")
                return Ending.SUCCEEDED if entry.status == "succeeded" else Ending.NOT_SUCCEEDED
        await asyncio.sleep(_POLL_SECONDS)
    link = watch.links.episode(watch.fired.episode) or workflow_id
    typer.echo(f"still running after {watch.timeout}s: follow it at {link}")
    return Ending.STILL_RUNNING
