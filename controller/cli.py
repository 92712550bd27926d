"""The ``homeostat`` command line: the composition root that reads settings and logs.

Every sub-command loads the settings (``--config`` file, then ``HOMEOSTAT_*`` variables),
configures logging once, and turns a ``HomeostatError`` into a one-paragraph message on
standard error and exit status 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich import console as rich_console

from controller import __version__, errors
from controller import settings as settings_module
from controller.commands import backtest as backtest_commands
from controller.commands import demo as demo_command
from controller.commands import history as history_command
from controller.commands import replay as replay_command
from controller.commands import resources as resource_commands
from controller.commands import rule_status as rule_status_command
from controller.commands import rules as rules_commands
from controller.commands import run as run_command
from controller.commands import slack as slack_commands
from controller.commands import steering as steering_commands
from controller.observability import logging as logging_setup

if TYPE_CHECKING:
    from controller import service

app = typer.Typer(
    name="homeostat",
    help="Event-driven autoscaling and self-healing controller on Temporal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")
rules_commands.app.command("backtest")(backtest_commands.command)
rules_commands.app.command("status")(rule_status_command.status)
app.add_typer(rules_commands.app, name="rules")
steering_commands.register(resource_commands.app)
app.add_typer(resource_commands.app, name="resource")
app.add_typer(slack_commands.app, name="slack")
app.command(name="run")(run_command.run)
app.command(name="demo")(demo_command.demo)
app.command(name="history")(history_command.history)
app.command(name="replay")(replay_command.replay)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Settings file (YAML). Default: ./homeostat.yaml when present. "
        "HOMEOSTAT_* environment variables override it (nested with __).",
        dir_okay=False,
    ),
]


def _fail(error: errors.HomeostatError) -> typer.Exit:
    sys.stderr.write(f"homeostat: {error}\n")
    return typer.Exit(code=2)


def _load(config: Path | None) -> settings_module.Settings:
    try:
        return settings_module.load(config)
    except errors.ConfigError as exc:
        raise _fail(exc) from None


RoleOption = Annotated[
    settings_module.Role | None,
    typer.Option(
        "--role",
        help="Run only ingest or only the worker (default: service.role, normally all).",
    ),
]


@app.command()
def up(config: ConfigOption = None, role: RoleOption = None) -> None:
    """Run Homeostat until Ctrl-C: Temporal, the worker, ingest and the HTTP API.

    Ingest: the webhooks (/v1/alertmanager, /v1/events, /v1/gitlab), Kafka when
    kafka.bootstrap_servers is set, and Prometheus polling when prometheus.url is set.
    Without temporal.address an embedded Temporal dev server (with its Web UI) runs as a
    child process and stops with Homeostat.
    """
    # Imported here: the service pulls in the worker, the HTTP server and every activity,
    # which the other commands do not need (they start in a fraction of the time).
    from controller import service  # noqa: PLC0415
    from controller import worker as worker_module  # noqa: PLC0415

    settings = _load(config)
    if role is not None:
        settings = settings.model_copy(
            update={"service": settings.service.model_copy(update={"role": role})}
        )
    fmt = settings.logging.format
    logging_setup.configure(
        level=settings.logging.level,
        json=None
        if fmt == settings_module.LogFormat.AUTO
        else fmt == settings_module.LogFormat.JSON,
        mask=worker_module.secret_mask(settings),
    )

    def announce(endpoints: service.Endpoints) -> None:
        console = rich_console.Console(highlight=False)
        console.print(f"Homeostat {__version__} is running.")
        console.print(f"  HTTP API         {endpoints.api_url}  (/readyz, /metrics, /docs)")
        console.print(f"  Temporal         {endpoints.temporal_address}")
        if endpoints.temporal_ui_url is not None:
            console.print(f"  Temporal Web UI  {endpoints.temporal_ui_url}")
        console.print("Press Ctrl-C to stop.")

    try:
        asyncio.run(service.run(settings, on_ready=announce))
    except errors.HomeostatError as exc:
        raise _fail(exc) from None


@config_app.command("show")
def config_show(config: ConfigOption = None) -> None:
    """Print the effective settings as JSON, secrets masked."""
    settings = _load(config)
    typer.echo(json.dumps(settings.model_dump(mode="json"), indent=2))


@config_app.command("check")
def config_check(config: ConfigOption = None) -> None:
    """Validate the settings; exit 2 with the offending key when they are invalid."""
    _load(config)
    typer.echo("configuration is valid")


@config_app.command("reference")
def config_reference() -> None:
    """Print every setting (key, environment variable, default, meaning) as Markdown."""
    typer.echo(settings_module.reference())


@app.command()
def version() -> None:
    """Print the version of Homeostat."""
    typer.echo(__version__)


def main() -> None:
    """Entry point of the ``homeostat`` console script."""
    app()
