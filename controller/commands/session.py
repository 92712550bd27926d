"""The one way a command talks to Temporal: connect, act, and let the client go before exit.

The Temporal client is a handle on a Rust runtime whose threads call back into Python.
Left for the interpreter's shutdown to collect, it aborts the process now and then
(``PyGILState_Release ... finalizing``, exit 134): about one run in four here. So ``run``
owns the client for the length of one action, keeps it out of every exception that leaves
(an expected failure becomes a plain message before the client is dropped) and collects it
while the interpreter is whole. Commands never connect by themselves; a test checks that.

Expected failures end as ``homeostat: <message>`` on standard error, never a traceback:
exit 1 when the thing asked about is missing or refused, or Temporal is unreachable, and
exit 2 for a usage or configuration error.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, TypeVar

import typer
from temporalio import client as temporal_client
from temporalio import service as temporal_service

from controller import connection, errors
from controller import settings as settings_module
from controller.operations import links

T = TypeVar("T")

USAGE = 2
"""Exit status of a usage or configuration error."""
FAILED = 1
"""Exit status of an expected failure: not found, refused, unreachable, not done."""


def fail(message: str, code: int = FAILED) -> NoReturn:
    """Print ``homeostat: message`` on standard error and exit with ``code``."""
    sys.stderr.write(f"homeostat: {message}\n")
    raise typer.Exit(code)


def load_settings(config: Path | None) -> settings_module.Settings:
    """The settings, or exit 2 naming the bad key."""
    try:
        return settings_module.load(config)
    except errors.ConfigError as exc:
        fail(str(exc), USAGE)


def links_of(settings: settings_module.Settings) -> links.Links:
    """How to link to the Temporal Web UI, from the settings."""
    return links.Links(
        ui_url=settings.temporal.effective_web_ui_url or "",
        namespace=settings.temporal.namespace,
    )


@dataclass(frozen=True, slots=True)
class _Failure:
    message: str
    code: int


def _explain(exc: BaseException) -> _Failure | None:  # noqa: PLR0911 - one case per kind
    """The message and exit status of an expected failure; ``None`` for a bug."""
    if isinstance(exc, errors.ConfigError):
        return _Failure(str(exc), USAGE)
    if isinstance(exc, errors.HomeostatError):
        return _Failure(str(exc), FAILED)
    if isinstance(exc, temporal_service.RPCError):
        if exc.status is temporal_service.RPCStatusCode.NOT_FOUND:
            return _Failure(f"not found: {exc.message}", FAILED)
        return _Failure(f"Temporal refused: {exc.message}", FAILED)
    if isinstance(exc, temporal_client.WorkflowUpdateFailedError):
        return _Failure(f"refused by the workflow: {exc.cause or exc}", FAILED)
    if isinstance(exc, temporal_client.WorkflowQueryFailedError):
        return _Failure(f"the workflow could not answer: {exc}", FAILED)
    if isinstance(exc, temporal_client.RPCTimeoutOrCancelledError | TimeoutError):
        return _Failure("Temporal did not answer in time", FAILED)
    return None


async def _session(
    settings: settings_module.Settings,
    action: Callable[[temporal_client.Client], Awaitable[T]],
) -> T | _Failure:
    failure: _Failure | None = None
    try:
        client = await connection.connect(settings.temporal, settings.temporal.client_address)
    except errors.DependencyError as exc:
        return _Failure(str(exc), FAILED)
    try:
        return await action(client)
    except Exception as exc:
        failure = _explain(exc)
        if failure is None:
            raise
    finally:
        del client
    return failure


def run(
    settings: settings_module.Settings,
    action: Callable[[temporal_client.Client], Awaitable[T]],
) -> T:
    """Connect to Temporal, run ``action`` with the client, and drop the client.

    Expected failures exit (see the module docstring); the client is collected before.
    """
    outcome = asyncio.run(_session(settings, action))
    gc.collect()
    if isinstance(outcome, _Failure):
        fail(outcome.message, outcome.code)
    return outcome
