"""Hot reload: notice when rule files change on disk (a ``git pull``) and load them again.

``Watcher`` polls the folder's content hash; when it changes the files are loaded again. A
broken edit is reported with its positions and the last good rule set stays in force. The
polling loop cannot die: an unexpected failure of one check (a bug, a panic in a native
extension) is handed to ``on_crash`` and the same change is tried again at the next poll.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from controller import errors
from controller.rules import loader, model, revision, sourcemap


@dataclass(frozen=True, slots=True, kw_only=True)
class Reload:
    """The outcome of one reload: a new rule set, or the errors that kept the old one."""

    rule_set: model.RuleSet | None
    problems: tuple[errors.RuleFileError, ...] = ()


class Watcher:
    """Reloads a rules folder when its content changes, keeping the last good rule set."""

    def __init__(
        self,
        rules_dir: Path,
        *,
        known_remediations: set[str] | None,
        current: model.RuleSet,
    ) -> None:
        """Watch ``rules_dir``; ``current`` is the rule set in force now."""
        self._rules_dir = rules_dir
        self._known = known_remediations
        self.current = current
        self._seen = current.revision.content_hash

    def check(self) -> Reload | None:
        """Reload if the files changed since the last check; ``None`` if they did not.

        A change is marked as seen only once it loaded or its problems were reported, so
        a check that raises is repeated by the next one.
        """
        try:
            digest = revision.content_hash(
                (str(path.relative_to(self._rules_dir)), _fingerprint(path))
                for path in loader.rule_files(self._rules_dir)
            )
        except OSError as exc:
            position = errors.SourcePosition(path=str(self._rules_dir), line=1, column=1)
            return Reload(
                rule_set=None, problems=(errors.RuleFileError(position, f"cannot read: {exc}"),)
            )
        if digest == self._seen:
            return None
        try:
            rule_set = loader.load_rule_set(self._rules_dir, known_remediations=self._known)
        except loader.RuleSetError as exc:
            self._seen = digest
            return Reload(rule_set=None, problems=tuple(exc.problems))
        self._seen = digest
        self.current = rule_set
        return Reload(rule_set=rule_set)

    async def run(
        self,
        *,
        interval: timedelta,
        on_reload: Callable[[model.RuleSet], None],
        on_problems: Callable[[tuple[errors.RuleFileError, ...]], None],
        on_crash: Callable[[BaseException], None],
    ) -> None:
        """Check every ``interval`` until cancelled, calling back on each change.

        Args:
            interval: the time between two checks.
            on_reload: a new rule set loaded.
            on_problems: a change did not load; the last good set stays in force.
            on_crash: a check or a callback raised; the change is retried next time.
        """
        while True:
            await asyncio.sleep(interval.total_seconds())
            try:
                outcome = await asyncio.to_thread(self.check)
                if outcome is None:
                    continue
                if outcome.rule_set is not None:
                    on_reload(outcome.rule_set)
                else:
                    on_problems(outcome.problems)
            except asyncio.CancelledError:
                raise
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # noqa: BLE001 - a native panic is a BaseException
                self._seen = ""  # whatever the change was, try it again next time
                on_crash(exc)


def _fingerprint(path: Path) -> bytes:
    """What identifies a file's content: its bytes, or its size and time when too large."""
    status = path.stat()
    if status.st_size > sourcemap.MAX_FILE_BYTES:
        return f"too large: {status.st_size} bytes, modified {status.st_mtime_ns}".encode()
    return path.read_bytes()
