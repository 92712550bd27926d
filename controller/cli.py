"""The ``homeostat`` command line: the composition root that reads settings and logs.

Every sub-command loads the settings (``--config`` file, then ``HOMEOSTAT_*`` variables),
configures logging once, and turns a ``HomeostatError`` into a one-paragraph message on
standard error and exit status 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import console as rich_console
from typer import core as typer_core

from controller import __version__, errors
from controller import settings as settings_module
from controller.observability import logging as logging_setup

if TYPE_CHECKING:
    from controller import service


# Sub-commands are imported when they are used (or listed by --help): each pulls in its own
# part of Homeostat (the rules engine, the workflows, the activities, the HTTP server), and a
# command should not pay for all of them at start-up (`resource list` starts in about half
# the time).


_Command = Any
"""A click command; typer vendors click (``typer._click``) and names none of its types."""


def _single(command: Callable[..., Any]) -> _Command:
    """A one-command Typer app as a click command (Typer collapses it to the command)."""
    single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    single.command()(command)
    return typer.main.get_command(single)


@functools.cache
def _rules() -> _Command:
    from controller.commands import backtest, rule_status, rules  # noqa: PLC0415

    rules.app.command("backtest")(backtest.command)
    rules.app.command("status")(rule_status.status)
    return typer.main.get_group(rules.app)


@functools.cache
def _resource() -> _Command:
    from controller.commands import resources, steering  # noqa: PLC0415

    steering.register(resources.app)
    return typer.main.get_group(resources.app)


@functools.cache
def _slack() -> _Command:
    from controller.commands import slack  # noqa: PLC0415

    # A group even with one command: get_command would collapse a one-command app into that
    # command, and `homeostat slack check` would refuse "check" as an extra argument.
    return typer.main.get_group(slack.app)


@functools.cache
def _run() -> _Command:
    from controller.commands import run  # noqa: PLC0415

    return _single(run.run)


@functools.cache
def _demo() -> _Command:
    from controller.commands import demo  # noqa: PLC0415

    return _single(demo.demo)


@functools.cache
def _history() -> _Command:
    from controller.commands import history  # noqa: PLC0415

    return _single(history.history)


@functools.cache
def _replay() -> _Command:
    from controller.commands import replay  # noqa: PLC0415

    return _single(replay.replay)


_LAZY: dict[str, Callable[[], _Command]] = {
    "rules": _rules,
    "resource": _resource,
    "slack": _slack,
    "run": _run,
    "demo": _demo,
    "history": _history,
    "replay": _replay,
}


class _LazyGroup(typer_core.TyperGroup):
    """The top-level group: the commands above are built on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        eager = super().list_commands(ctx)
        return [*eager, *(name for name in _LAZY if name not in eager)]

    def get_command(self, ctx: Any, cmd_name: str) -> _Command | None:
        loader = _LAZY.get(cmd_name)
        if loader is None:
            return super().get_command(ctx, cmd_name)
        command = loader()
        command.name = cmd_name
        # Built on its own, a sub-app is a root and gets the completion options: not here.
        command.params = [
            param
            for param in command.params
            if param.name not in {"install_completion", "show_completion"}
        ]
        return command


app = typer.Typer(
    name="homeostat",
    help="Event-driven autoscaling and self-healing controller on Temporal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_LazyGroup,
)
config_app = typer.Typer(help="Inspect the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")

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
