"""``homeostat resource ...``: what an operator asks of one resource's workflow.

``show`` reads the workflow's state; the verbs that change it (approve, deny, silence,
unsilence, pause, resume, reset) are in ``commands.steering`` and are added to the same
command group, so every change lands in the workflow's history with who made it and why.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from temporalio import client as temporal_client
from temporalio import service as temporal_service

from controller import errors, service
from controller import settings as settings_module
from controller.domain import contract, resources
from controller.workflows import resource_io

app = typer.Typer(
    help="Inspect and steer one resource's workflow: state, approvals, silences, pauses, resets.",
    no_args_is_help=True,
)

Result = TypeVar("Result")

ResourceArg = Annotated[str, typer.Argument(help="The resource as kind/name, e.g. service/web.")]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Settings file (YAML).", dir_okay=False)
]


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
