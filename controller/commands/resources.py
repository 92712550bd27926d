"""``homeostat resource ...``: list resources, show one, and steer its workflow.

``list`` and ``show`` read Temporal visibility (``operations.views``): they answer with no
worker running. The verbs that change a resource (approve, deny, silence, unsilence,
pause, resume, reset) are in ``commands.steering`` and are added to the same command
group, so every change lands in the workflow's history with who made it and why.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich import markup, table
from temporalio import client as temporal_client

from controller import errors
from controller.commands import remote, resource_view, session, terminal
from controller.domain import resources
from controller.operations import encoding, views
from controller.workflows import resource_io

app = typer.Typer(
    help="List resources, show one, and steer its workflow: approvals, silences, pauses, resets.",
    no_args_is_help=True,
)

ResourceArg = Annotated[str, typer.Argument(help="The resource as kind/name, e.g. service/web.")]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Settings file (YAML).", dir_okay=False)
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (the schema in docs/operations.md).")
]
_PHASES = ", ".join(phase.value for phase in resource_io.Phase)


def _key(resource: str) -> resources.ResourceKey:
    try:
        return resources.parse_resource_key(resource)
    except ValueError as exc:
        session.fail(str(exc), session.USAGE)


@app.command("list")
def list_(
    phase: Annotated[
        str | None, typer.Option("--phase", help=f"Only this phase ({_PHASES}).")
    ] = None,
    rule: Annotated[
        str | None, typer.Option("--rule", help="Only resources whose episode is of this rule.")
    ] = None,
    kind: Annotated[
        str | None, typer.Option("--kind", help="Only this kind (service in service/web).")
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    api: remote.ApiOption = "",
    token: remote.TokenOption = "",
) -> None:
    """List the resources Homeostat watches over now, from Temporal visibility (no worker needed).

    A resource is listed while its workflow runs: from its first transition until it has
    had nothing to remember for a day. With --api, through the operator API.
    """
    if api:
        listing = remote.read(
            api,
            token,
            "/v1/resources",
            views.ResourceList,
            {"phase": phase, "rule": rule, "kind": kind},
        )
        _print_list(listing, as_json=as_json, now=datetime.now(UTC))
        return
    settings = session.load_settings(config)
    try:
        selection = views.ResourceFilter(
            phase=resource_io.Phase(phase) if phase else None, rule=rule, kind=kind
        )
        views.visibility_query(selection)
    except ValueError:
        session.fail(f"--phase: {phase!r} is not one of {_PHASES}", session.USAGE)
    except errors.ConfigError as exc:
        session.fail(str(exc), session.USAGE)
    links = session.links_of(settings)
    now = datetime.now(UTC)

    async def fetch(client: temporal_client.Client) -> views.ResourceList:
        return await views.list_resources(client, selection=selection, links=links, now=now)

    _print_list(session.run(settings, fetch), as_json=as_json, now=now)


def _print_list(listing: views.ResourceList, *, as_json: bool, now: datetime) -> None:
    if as_json:
        typer.echo(encoding.dumps(listing))
        return
    out = terminal.console()
    if not listing.resources:
        out.print("no resources (nothing has fired, or every resource is quiet)")
        return
    grid = table.Table(box=None, pad_edge=False)
    for column in ("RESOURCE", "PHASE", "OPEN", "LAST RULE", "SINCE", "COOLDOWN LEFT"):
        grid.add_column(column, no_wrap=column != "LAST RULE")
    for item in listing.resources:
        grid.add_row(
            markup.escape(item.resource),
            terminal.styled(item.phase.value),
            str(item.open_episodes) if item.details else "?",
            markup.escape(item.last_rule) or "-",
            terminal.duration(now - item.since) + " ago" if item.since else "-",
            terminal.duration(item.cooldown_left),
        )
    out.print(grid)
    out.print(f"{listing.count} resources")


@app.command()
def show(
    resource: ResourceArg,
    as_json: JsonOption = False,
    config: ConfigOption = None,
    api: remote.ApiOption = "",
    token: remote.TokenOption = "",
) -> None:
    """Show a resource: phase, open episodes, cooldowns, budget, silence, pause, outcomes.

    Read from Temporal visibility: no worker needs to run. With --api, through the
    operator API.
    """
    key = _key(resource)
    now = datetime.now(UTC)
    if api:
        path = f"/v1/resources/{remote.path_of(key)}"
        view = remote.read(api, token, path, views.ResourceView)
    else:
        settings = session.load_settings(config)
        links = session.links_of(settings)

        async def fetch(client: temporal_client.Client) -> views.ResourceView:
            return await views.show_resource(client, key, links=links, now=now)

        view = session.run(settings, fetch)
    if as_json:
        typer.echo(encoding.dumps(view))
    else:
        resource_view.render(view, now)
