"""Hot reload: notice when rule files change on disk (a ``git pull``) and load them again.

``Watcher`` polls the folder's content hash; when it changes the files are loaded again. A
broken edit is reported with its positions and the last good rule set stays in force.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from controller import errors
from controller.rules import loader, model, revision


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
        """Reload if the files changed since the last check; ``None`` if they did not."""
        try:
            files = loader.rule_files(self._rules_dir)
            digest = revision.content_hash(
                (str(path.relative_to(self._rules_dir)), path.read_bytes()) for path in files
            )
        except OSError as exc:
            position = errors.SourcePosition(path=str(self._rules_dir), line=1, column=1)
            return Reload(
                rule_set=None, problems=(errors.RuleFileError(position, f"cannot read: {exc}"),)
            )
        if digest == self._seen:
            return None
        self._seen = digest
        try:
            rule_set = loader.load_rule_set(self._rules_dir, known_remediations=self._known)
        except loader.RuleSetError as exc:
            return Reload(rule_set=None, problems=tuple(exc.problems))
        self.current = rule_set
        return Reload(rule_set=rule_set)

    async def run(
        self,
        *,
        interval: timedelta,
        on_reload: Callable[[model.RuleSet], None],
        on_problems: Callable[[tuple[errors.RuleFileError, ...]], None],
    ) -> None:
        """Check every ``interval`` until cancelled, calling back on each change."""
        while True:
            await asyncio.sleep(interval.total_seconds())
            outcome = await asyncio.to_thread(self.check)
            if outcome is None:
                continue
            if outcome.rule_set is not None:
                on_reload(outcome.rule_set)
            else:
                on_problems(outcome.problems)
