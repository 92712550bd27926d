"""Hot reload: notice when rules, plans or playbooks change on disk and load the set again.

``Watcher`` polls the set's content hash (``bundle.fingerprint``); when it changes, the
whole set is checked by ``bundle.check``, the same validation as ``homeostat rules lint``.
A set with problems is reported with their positions and the last good set stays in
force; it is tried again at the next change and every ``retry_after`` until it loads. The
polling loop cannot die: an unexpected failure of one check (a bug, a panic in a native
extension) is handed to ``on_crash`` and the check runs again at the next poll.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from controller import errors
from controller.plans import bundle


@dataclass(frozen=True, slots=True, kw_only=True)
class Reload:
    """The outcome of one reload: a new set, or the problems that kept the old one."""

    loaded: bundle.Bundle | None
    problems: tuple[errors.RuleFileError, ...] = ()


class Watcher:
    """Reloads rules, plans and playbooks as one set, keeping the last good one."""

    def __init__(
        self,
        sources: bundle.Sources,
        *,
        current: bundle.Bundle,
        retry_after: timedelta = timedelta(minutes=1),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Watch ``sources``; ``current`` is the set in force now.

        Args:
            sources: the folders of the set.
            current: the set in force.
            retry_after: how long after a failed load it is tried again without a change.
            clock: seconds, monotonic (tests pass their own).
        """
        self._sources = sources
        self._retry_after = retry_after.total_seconds()
        self._clock = clock
        self.current = current
        self._seen = current.revision.content_hash
        self._failed_at: float | None = None

    @property
    def failing(self) -> bool:
        """Whether the last load failed (the set on disk is not the one in force)."""
        return self._failed_at is not None

    def check(self) -> Reload | None:
        """Load the set if it changed, or if it failed and ``retry_after`` passed.

        Returns ``None`` when there was nothing to do. A change is marked as seen only
        once it loaded or its problems were reported, so a check that raises is repeated
        by the next one.
        """
        try:
            digest = bundle.fingerprint(self._sources)
        except OSError as exc:
            digest = f"unreadable: {exc}"
        now = self._clock()
        retry = self._failed_at is not None and now - self._failed_at >= self._retry_after
        if digest == self._seen and not retry:
            return None
        checked = bundle.check(self._sources)
        self._seen = checked.fingerprint
        if checked.bundle is None:
            self._failed_at = now
            return Reload(loaded=None, problems=checked.problems)
        self._failed_at = None
        self.current = checked.bundle
        return Reload(loaded=checked.bundle)

    def forget(self) -> None:
        """Make the next check load the set again, changed or not."""
        self._seen = ""

    async def run(
        self,
        *,
        interval: timedelta,
        on_reload: Callable[[bundle.Bundle], None],
        on_problems: Callable[[tuple[errors.RuleFileError, ...]], None],
        on_crash: Callable[[BaseException], None],
    ) -> None:
        """Check every ``interval`` until cancelled, calling back on each outcome.

        Args:
            interval: the time between two checks.
            on_reload: a new set loaded.
            on_problems: the set did not load; the last good one stays in force.
            on_crash: a check or a callback raised; the set is loaded again next time.
        """
        while True:
            await asyncio.sleep(interval.total_seconds())
            try:
                outcome = await asyncio.to_thread(self.check)
                if outcome is None:
                    continue
                if outcome.loaded is not None:
                    on_reload(outcome.loaded)
                else:
                    on_problems(outcome.problems)
            except asyncio.CancelledError:
                raise
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # noqa: BLE001 - a native panic is a BaseException
                self.forget()
                on_crash(exc)
