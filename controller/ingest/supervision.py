"""Loops that must outlive their own failures: run, and on any failure report and restart.

A background task that dies takes its job with it silently: asyncio keeps the exception
until someone awaits the task, which may be at shutdown. ``supervise`` runs a loop again
after any failure (a bug, a panic from a native extension surfacing as a
``BaseException``), after reporting it, so the caller can log it, count it and say so in
``/readyz``. Only cancellation (and the interpreter's own exits) stop it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta


async def supervise(
    run: Callable[[], Awaitable[None]],
    *,
    on_crash: Callable[[BaseException], None],
    pause: timedelta,
) -> None:
    """Run ``run()`` until cancelled, starting it again ``pause`` after it failed or returned.

    Args:
        run: starts the loop; a new call for every restart.
        on_crash: told of each failure before the restart.
        pause: the wait before a restart, so a loop that fails at once does not spin.
    """
    while True:
        try:
            await run()
        except asyncio.CancelledError:
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - a native panic is a BaseException
            on_crash(exc)
        await asyncio.sleep(pause.total_seconds())
