"""``homeostat replay``: today's workflow code against recorded histories, before a deploy.

Sources are history files (or folders of them), workflow ids, or ``--since 7d`` for every
Homeostat workflow that ran in that window. Each history prints ``OK`` or ``FAIL`` with
the first divergent event; the exit status is 1 when any history diverges. CI replays
``tests/workflows/histories`` through this command.
"""

from __future__ import annotations

import asyncio
import gc
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from temporalio import client as temporal_client
from temporalio import runtime as temporal_runtime

from controller import errors
from controller import settings as settings_module
from controller.commands import session
from controller.domain import durations
from controller.operations import encoding
from controller.operations import replay as replay_ops


def _files(sources: list[str]) -> tuple[list[Path], list[str]]:
    paths: list[Path] = []
    ids: list[str] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            found = sorted(path.glob("*.json"))
            if not found:
                session.fail(f"{path}: no *.json histories in this folder", session.USAGE)
            paths += found
        elif path.is_file() or source.endswith(".json"):
            paths.append(path)
        else:
            ids.append(source)
    return paths, ids


def _quiet_runtime() -> temporal_runtime.Runtime:
    """A runtime whose core logs only errors: divergences are reported here, once."""
    return temporal_runtime.Runtime(
        telemetry=temporal_runtime.TelemetryConfig(
            logging=temporal_runtime.LoggingConfig(
                filter=temporal_runtime.TelemetryFilter(core_level="ERROR", other_level="ERROR")
            )
        )
    )


def _print(result: replay_ops.ReplayResult) -> None:
    name = f"{result.workflow_id} ({result.workflow_type or '?'}, {result.events} events)"
    if result.ok or result.divergence is None:
        typer.echo(f"OK    {name}")
        return
    found = result.divergence
    where = f"event {found.event_id} {found.event_type}" if found.event_id else "an unknown event"
    typer.echo(f"FAIL  {name}: diverges at {where}")
    if found.recorded:
        typer.echo(f"      recorded: {found.recorded}")
    typer.echo(f"      code:     {found.code}")
    if found.code != found.message:
        typer.echo(f"      replayer: {found.message}")


def replay(
    sources: Annotated[
        list[str] | None,
        typer.Argument(
            help="History JSON files (Web UI download or `temporal workflow show -o json`), "
            "folders of them, or workflow ids to fetch from Temporal."
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Also every Homeostat workflow run within this window (7d)."),
    ] = None,
    query: Annotated[
        str | None,
        typer.Option("--query", help="With --since: a further visibility filter."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="With --since: replay at most this many.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object per history.")
    ] = False,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Settings file (YAML).", dir_okay=False)
    ] = None,
) -> None:
    """Replay recorded workflow histories against the current workflow code.

    Prints OK, or the first divergence (event id, what the history recorded, what the code
    did), per history; exits 1 when any history diverges. Run it before deploying changed
    workflow code (see docs/operations.md).
    """
    paths, ids = _files(sources or [])
    if query and since is None:
        session.fail("--query needs --since", session.USAGE)
    try:
        window = durations.parse_duration(since) if since else None
        histories = [replay_ops.load_file(path) for path in paths]
    except (ValueError, errors.ConfigError) as exc:
        session.fail(str(exc), session.USAGE)
    if not histories and not ids and window is None:
        session.fail(
            "nothing to replay: give history files, workflow ids or --since", session.USAGE
        )
    settings = session.load_settings(config) if ids or window is not None else None
    report = _Report(as_json=as_json)
    _replay_everything(
        report,
        histories=histories,
        settings=settings,
        ids=ids,
        query=replay_ops.since_query(datetime.now(UTC), window, query or "") if window else None,
        limit=limit,
    )
    gc.collect()  # the replayer's runtime goes before the interpreter does
    if window is not None and not report.count:
        typer.echo(f"no workflow ran within the last {since}")
    if report.failures:
        raise typer.Exit(session.FAILED)


@dataclass
class _Report:
    """Prints each result as it comes and counts them."""

    as_json: bool
    count: int = 0
    failures: int = 0

    def __call__(self, result: replay_ops.ReplayResult) -> None:
        self.count += 1
        self.failures += 0 if result.ok else 1
        if self.as_json:
            typer.echo(json.dumps(encoding.to_json(result)))
        else:
            _print(result)


def _replay_everything(
    report: _Report,
    *,
    histories: list[temporal_client.WorkflowHistory],
    settings: settings_module.Settings | None,
    ids: list[str],
    query: str | None,
    limit: int | None,
) -> None:
    """Replay the files, then what Temporal holds; the replayer ends with this call."""
    replayer = replay_ops.HistoryReplayer(runtime=_quiet_runtime())

    async def local() -> None:
        async for result in replay_ops.replay_all(replayer, histories):
            report(result)

    asyncio.run(local())
    if settings is None:
        return

    async def remote(client: temporal_client.Client) -> None:
        for workflow_id in ids:
            report(await replayer.replay(await replay_ops.fetch(client, workflow_id)))
        if query is not None:
            listed = replay_ops.listed(client, query, limit=limit)
            async for result in replay_ops.replay_all(replayer, listed):
                report(result)

    session.run(settings, remote)
