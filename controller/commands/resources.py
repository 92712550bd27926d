"""``homeostat resource ...``: what an operator asks of one resource's workflow.

Every command talks to the resource workflow through Temporal (query or update), so the
answer is the workflow's own state and every change lands in its history with who made
it and why.
"""

from __future__ import annotations

import asyncio
import dataclasses
import getpass
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from temporalio import client as temporal_client
from temporalio import service as temporal_service

from controller import errors, service
from controller import settings as settings_module
from controller.domain import contract, durations, resources
from controller.workflows import resource_io

app = typer.Typer(
    help="Inspect and steer one resource's workflow: state, approvals, silences, pauses.",
    no_args_is_help=True,
)

Result = TypeVar("Result")

ResourceArg = Annotated[str, typer.Argument(help="The resource as kind/name, e.g. service/web.")]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Settings file (YAML).", dir_okay=False)
]
ByOption = Annotated[str, typer.Option("--by", help="Who acts (recorded in the history).")]
ReasonOption = Annotated[str, typer.Option("--reason", "-m", help="Why (recorded).")]


def _run(
    config: Path | None,
    resource: str,
    action: Callable[[temporal_client.WorkflowHandle[Any, Any]], Awaitable[Result]],
) -> Result:
    try:
        settings = settings_module.load(config)
        key = resources.parse_resource_key(resource)
    except (errors.ConfigError, ValueError) as exc:
        typer.echo(f"homeostat: {exc}", err=True)
        raise typer.Exit(2) from None

    async def call() -> Result:
        client = await service.connect(settings.temporal, settings.temporal.client_address)
        return await action(client.get_workflow_handle(resources.resource_workflow_id(key)))

    try:
        return asyncio.run(call())
    except temporal_service.RPCError as exc:
        if exc.status is temporal_service.RPCStatusCode.NOT_FOUND:
            typer.echo(
                f"homeostat: no workflow for {resource} (it never fired, or ended)", err=True
            )
        else:
            typer.echo(f"homeostat: Temporal refused: {exc.message}", err=True)
        raise typer.Exit(1) from None
    except (
        temporal_client.WorkflowUpdateFailedError,
        temporal_client.WorkflowQueryFailedError,
    ) as exc:
        cause = exc.cause if isinstance(exc, temporal_client.WorkflowUpdateFailedError) else exc
        typer.echo(f"homeostat: refused by the workflow: {cause}", err=True)
        raise typer.Exit(1) from None
    except errors.DependencyError as exc:
        typer.echo(f"homeostat: {exc}", err=True)
        raise typer.Exit(1) from None


def _print_state(state: resource_io.ResourceState) -> None:
    typer.echo(json.dumps(dataclasses.asdict(state), indent=2, default=str))


@app.command()
def show(resource: ResourceArg, config: ConfigOption = None) -> None:
    """Print the resource's state: phase, open episodes, cooldowns, budget, outcomes."""

    async def query(handle: temporal_client.WorkflowHandle[Any, Any]) -> resource_io.ResourceState:
        state: resource_io.ResourceState = await handle.query(
            contract.QUERY_STATE, result_type=resource_io.ResourceState
        )
        return state

    _print_state(_run(config, resource, query))


def _decide(
    update: str, *, resource: str, episode: str, by: str, reason: str, config: Path | None
) -> None:
    request = resource_io.DecisionRequest(
        episode=resources.EpisodeId(episode),
        by=by or getpass.getuser(),
        comment=reason,
        channel="cli",
    )

    async def send(handle: temporal_client.WorkflowHandle[Any, Any]) -> resource_io.DecisionAck:
        answer: resource_io.DecisionAck = await handle.execute_update(
            update, request, result_type=resource_io.DecisionAck
        )
        return answer

    ack = _run(config, resource, send)
    typer.echo(f"{update}d episode {ack.episode} ({ack.workflow_id})")


EpisodeArg = Annotated[str, typer.Argument(help="The episode id (see `homeostat resource show`).")]


@app.command()
def approve(
    resource: ResourceArg,
    episode: EpisodeArg,
    by: ByOption = "",
    reason: ReasonOption = "",
    config: ConfigOption = None,
) -> None:
    """Approve the approval step the episode's remediation waits at."""
    _decide(
        contract.UPDATE_APPROVE,
        resource=resource,
        episode=episode,
        by=by,
        reason=reason,
        config=config,
    )


@app.command()
def deny(
    resource: ResourceArg,
    episode: EpisodeArg,
    by: ByOption = "",
    reason: ReasonOption = "",
    config: ConfigOption = None,
) -> None:
    """Deny the approval step; the plan stops there."""
    _decide(
        contract.UPDATE_DENY,
        resource=resource,
        episode=episode,
        by=by,
        reason=reason,
        config=config,
    )


@app.command()
def silence(
    resource: ResourceArg,
    duration: Annotated[str, typer.Argument(help="How long, e.g. 2h or 30m.")],
    by: ByOption = "",
    reason: ReasonOption = "",
    config: ConfigOption = None,
) -> None:
    """Silence automation for a while: episodes are recorded, nothing is run or paged."""
    try:
        until = datetime.now(UTC) + durations.parse_duration(duration)
    except ValueError as exc:
        typer.echo(f"homeostat: duration: {exc}", err=True)
        raise typer.Exit(2) from None
    request = resource_io.SilenceRequest(until=until, by=by or getpass.getuser(), reason=reason)

    async def send(handle: temporal_client.WorkflowHandle[Any, Any]) -> resource_io.ResourceState:
        answer: resource_io.ResourceState = await handle.execute_update(
            contract.UPDATE_SILENCE, request, result_type=resource_io.ResourceState
        )
        return answer

    _print_state(_run(config, resource, send))


def _operate(update: str, resource: str, by: str, reason: str, config: Path | None) -> None:
    request = resource_io.OperatorRequest(by=by or getpass.getuser(), reason=reason)

    async def send(handle: temporal_client.WorkflowHandle[Any, Any]) -> resource_io.ResourceState:
        answer: resource_io.ResourceState = await handle.execute_update(
            update, request, result_type=resource_io.ResourceState
        )
        return answer

    _print_state(_run(config, resource, send))


@app.command()
def unsilence(
    resource: ResourceArg, by: ByOption = "", reason: ReasonOption = "", config: ConfigOption = None
) -> None:
    """End a silence now."""
    _operate(contract.UPDATE_UNSILENCE, resource, by, reason, config)


@app.command()
def pause(
    resource: ResourceArg, by: ByOption = "", reason: ReasonOption = "", config: ConfigOption = None
) -> None:
    """Pause automation for the resource until resumed (episodes are still recorded)."""
    _operate(contract.UPDATE_PAUSE, resource, by, reason, config)


@app.command()
def resume(
    resource: ResourceArg, by: ByOption = "", reason: ReasonOption = "", config: ConfigOption = None
) -> None:
    """Resume automation paused with `homeostat resource pause`."""
    _operate(contract.UPDATE_RESUME, resource, by, reason, config)
