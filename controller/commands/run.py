"""``homeostat run PLAN RESOURCE``: start a remediation plan by hand.

The run is an episode like any other: it goes through the resource's workflow (so it
respects cooldown, budget, silences and the one-remediation-at-a-time rule) and gets its
own history. The episode ends when the plan does; no resolve follows.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from temporalio import client as temporal_client

from controller import assembly, errors, service
from controller import settings as settings_module
from controller.domain import contract, resources, transitions
from controller.plans import loader as plans_loader
from controller.workflows import remediation_io, resource_io

_NOT_RUN = {
    resource_io.EpisodeStatus.SKIPPED,
    resource_io.EpisodeStatus.SUPPRESSED,
    resource_io.EpisodeStatus.MERGED,
    resource_io.EpisodeStatus.OPEN,
}


def _labels(pairs: list[str]) -> dict[str, str]:
    found = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--var")
        found[key] = value
    return found


def run(
    plan: Annotated[str, typer.Argument(help="The plan's name (its file in remediations/).")],
    resource: Annotated[str, typer.Argument(help="The resource as kind/name, e.g. host/db-1.")],
    var: Annotated[
        list[str] | None,
        typer.Option("--var", "-v", help="NAME=VALUE, given to the plan as labels.NAME."),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the outcome.")] = True,
    timeout: Annotated[int, typer.Option(help="Seconds to wait at most.")] = 3600,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Settings file (YAML).", dir_okay=False)
    ] = None,
) -> None:
    """Run a remediation plan for a resource now, as an episode of its own.

    Exits 0 when the plan succeeded, 1 when it failed, escalated or was not run (cooldown,
    budget, silence, another remediation running), 2 on a usage or configuration error.
    """
    try:
        settings = settings_module.load(config)
        key = resources.parse_resource_key(resource)
        if plans_loader.find_plan(settings.rules.remediations_dir, plan) is None:
            known = sorted(plans_loader.load_plans(settings.rules.remediations_dir))
            raise errors.ConfigError(
                f"no plan {plan!r} in {settings.rules.remediations_dir} (known: {', '.join(known)})"
            )
    except (errors.HomeostatError, ValueError) as exc:
        typer.echo(f"homeostat: {exc}", err=True)
        raise typer.Exit(2) from None
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
    try:
        outcome = asyncio.run(_start(settings, fired, wait=wait, wait_seconds=timeout))
    except errors.DependencyError as exc:
        typer.echo(f"homeostat: {exc}", err=True)
        raise typer.Exit(1) from None
    raise typer.Exit(0 if outcome in {None, remediation_io.Outcome.SUCCEEDED} else 1)


async def _start(
    settings: settings_module.Settings,
    fired: transitions.Transition,
    *,
    wait: bool,
    wait_seconds: int,
) -> remediation_io.Outcome | None:
    client = await service.connect(settings.temporal, settings.temporal.client_address)
    await assembly.temporal_sender(client, settings.temporal.task_queue)(fired.resource, [fired])
    child = resources.remediation_workflow_id(fired.episode)
    typer.echo(f"episode {fired.episode} sent to {resources.resource_workflow_id(fired.resource)}")
    if not wait:
        return None
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        handle = client.get_workflow_handle(child, result_type=remediation_io.RemediationResult)
        try:
            await handle.describe()
        except temporal_client.RPCError:
            note = await _not_run(client, fired)
            if note is not None:
                typer.echo(f"not run: {note}")
                return remediation_io.Outcome.ESCALATED
            await asyncio.sleep(0.5)
            continue
        result: remediation_io.RemediationResult = await asyncio.wait_for(
            handle.result(), deadline - time.monotonic()
        )
        typer.echo(json.dumps(dataclasses.asdict(result), indent=2, default=str))
        return result.outcome
    typer.echo(f"still running after {timedelta(seconds=wait_seconds)}: see workflow {child}")
    return remediation_io.Outcome.ESCALATED


async def _not_run(client: temporal_client.Client, fired: transitions.Transition) -> str | None:
    handle = client.get_workflow_handle(resources.resource_workflow_id(fired.resource))
    try:
        state: resource_io.ResourceState = await handle.query(
            contract.QUERY_STATE, result_type=resource_io.ResourceState
        )
    except temporal_client.RPCError:
        return None
    for record in state.episodes:
        if record.fired.episode == fired.episode and record.status in _NOT_RUN:
            return record.note or record.status.value
    return None
