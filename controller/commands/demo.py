"""``homeostat demo``: the self-healing scenario on this machine, in about a minute.

A composition root: it reads the settings only for where the rules, plans and playbooks
are, then hands everything to ``controller.demo.run``, which starts and stops all it needs.
"""

from __future__ import annotations

import asyncio
import gc
import shutil
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from controller import errors
from controller import settings as settings_module
from controller.commands import history as history_command
from controller.observability import logging as logging_setup


def demo(
    keep: Annotated[
        bool,
        typer.Option(
            "--keep", help="At the end, keep Temporal and its Web UI running until Ctrl-C."
        ),
    ] = False,
    work_dir: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Folder for the demo's files, kept afterwards "
            "(default: a temporary one, removed at the end).",
            file_okay=False,
        ),
    ] = None,
    ui_port: Annotated[
        int, typer.Option(help="Port of the Temporal Web UI (another one if it is taken).")
    ] = 8233,
    timeout: Annotated[
        int, typer.Option(help="Seconds the scenario may take from the kill to the resolve.")
    ] = 180,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Also print Homeostat's logs.")
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Settings file; only its rules.* folders are used.",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Show self-healing end to end: a service dies, Homeostat restarts it, nobody touches anything.

    Starts an embedded Temporal server (with its Web UI), a stand-in service, Prometheus and
    Alertmanager (the Debian packages `prometheus` and `prometheus-alertmanager`) and
    Homeostat with the shipped rules, plans and playbooks; kills the service; prints each
    step until the episode is closed, then the episode's history and its Web UI link; and
    stops everything. Exits 0 when the service was healed, 1 when not, 2 when something
    it needs is missing.
    """
    from controller.demo import run as demo_run  # noqa: PLC0415 - it starts a whole server

    try:
        settings = settings_module.load(config)
    except errors.ConfigError as exc:
        typer.echo(f"homeostat: {exc}", err=True)
        raise typer.Exit(2) from None
    logging_setup.configure(level="info" if verbose else "error", json=False)
    temporary = work_dir is None
    folder = Path(tempfile.mkdtemp(prefix="homeostat-demo-")) if work_dir is None else work_dir
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    options = demo_run.Options(
        workdir=folder,
        rules_dir=settings.rules.rules_dir.resolve(),
        remediations_dir=settings.rules.remediations_dir.resolve(),
        playbooks_dir=settings.rules.playbooks_dir.resolve(),
        ui_port=ui_port,
        timeout=timedelta(seconds=timeout),
        keep=keep,
    )
    try:
        code = asyncio.run(demo_run.run(options, out=sys.stdout, show=history_command.render))
    except demo_run.DemoError as exc:
        typer.echo(f"homeostat demo: {exc}", err=True)
        code = 1
    except errors.HomeostatError as exc:
        typer.echo(f"homeostat demo: {exc}", err=True)
        code = 2
    finally:
        gc.collect()  # the Temporal clients' runtime goes before the interpreter does
        if temporary:
            shutil.rmtree(folder, ignore_errors=True)
    raise typer.Exit(code)
