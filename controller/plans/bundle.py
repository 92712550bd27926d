"""Rules, plans and playbooks as one set: checked together, loaded together, revised together.

A rule names a plan and a plan names playbooks, so a change to any of the three folders
can make the others valid or invalid (a new plan with the rule that uses it; a playbook
renamed under a plan). ``check`` is the one validation of the whole set:
``homeostat rules lint``, start-up and hot reload all call it, so what lint accepts is
exactly what loads. The set's revision is a content hash over every file of the three
folders (with the git commit of the rules folder when there is one); every transition
carries it, so an episode names the exact rules, plans and playbooks in force.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from controller import errors
from controller.plans import loader as plans_loader
from controller.plans import spec
from controller.rules import loader as rules_loader
from controller.rules import model, revision, sourcemap


@dataclass(frozen=True, slots=True, kw_only=True)
class Sources:
    """Where one set lives: rule files or folders, the plans folder, the playbooks folder.

    ``remediations`` unset skips the plans and the "unknown remediation" check (linting
    rule files alone); ``playbooks`` unset skips the check that playbooks exist.
    """

    rules: tuple[Path, ...]
    remediations: Path | None = None
    playbooks: Path | None = None


@dataclass(frozen=True, kw_only=True)
class Bundle:
    """A set that loaded: the rule set (carrying the whole set's revision) and its plans."""

    rule_set: model.RuleSet
    plans: Mapping[str, spec.Plan] = field(default_factory=dict)

    @property
    def revision(self) -> model.Revision:
        """The revision of the whole set."""
        return self.rule_set.revision


@dataclass(frozen=True, kw_only=True)
class Checked:
    """What ``check`` found: the set when it has no problem, and every problem."""

    bundle: Bundle | None
    problems: tuple[errors.RuleFileError, ...]
    fingerprint: str
    """The content hash the check read (the revision's, when it loaded)."""


class SetError(rules_loader.RuleSetError):
    """The set did not load; ``problems`` lists every problem, the first one in the message."""


def fingerprint(sources: Sources) -> str:
    """The content hash of every file of the set (cheap to compare between two polls).

    Raises:
        OSError: a folder or file cannot be listed or read.
    """
    return revision.content_hash((name, _content(path)) for name, path in _files(sources))


def check(sources: Sources) -> Checked:
    """Validate rules, plans and playbooks together, as lint and every load do.

    A rules folder that does not exist holds no rules (``homeostat up`` warns about that);
    ``homeostat rules lint`` refuses paths that do not exist before it gets here.
    """
    try:
        digest = fingerprint(sources)
    except OSError as exc:
        position = errors.SourcePosition(
            path=str(exc.filename or sources.rules[0]), line=1, column=1
        )
        problem = errors.RuleFileError(position, f"cannot read: {exc.strerror or exc}")
        return Checked(bundle=None, problems=(problem,), fingerprint=f"unreadable: {exc}")
    problems: list[errors.RuleFileError] = []
    plans: dict[str, spec.Plan] = {}
    known: set[str] | None = None
    if sources.remediations is not None:
        if sources.remediations.is_dir():
            known = {path.stem for path in plans_loader.plan_files(sources.remediations)}
            plans, plan_problems = plans_loader.check_plans(
                sources.remediations, playbooks_dir=sources.playbooks
            )
            problems += plan_problems
        else:
            known = set()
    files = [
        path
        for folder in sources.rules
        if folder.exists()
        for path in rules_loader.rule_files(folder)
    ]
    rule_set, rule_problems = rules_loader.compile_files(
        files, known_remediations=known, base=_base(sources)
    )
    problems = rule_problems + problems
    if problems:
        return Checked(bundle=None, problems=tuple(problems), fingerprint=digest)
    commit = revision.git_commit(_base(sources)) if sources.rules else None
    whole = model.Revision(content_hash=digest, commit=commit)
    rule_set = dataclasses.replace(rule_set, revision=whole)
    return Checked(bundle=Bundle(rule_set=rule_set, plans=plans), problems=(), fingerprint=digest)


def load(sources: Sources) -> Bundle:
    """The set, when it has no problem.

    Raises:
        SetError: at least one problem; ``problems`` has all of them.
    """
    checked = check(sources)
    if checked.bundle is None:
        raise SetError(checked.problems)
    return checked.bundle


def _base(sources: Sources) -> Path:
    first = sources.rules[0] if sources.rules else Path()
    return first if first.is_dir() else first.parent


def _files(sources: Sources) -> Iterator[tuple[str, Path]]:
    """Every file of the set with the name it is hashed under, in a stable order."""
    for folder in sources.rules:
        if folder.exists():
            for path in rules_loader.rule_files(folder):
                yield f"rules/{_relative(path, folder)}", path
    if sources.remediations is not None and sources.remediations.is_dir():
        for path in plans_loader.plan_files(sources.remediations):
            yield f"remediations/{path.name}", path
    if sources.playbooks is not None and sources.playbooks.is_dir():
        for path in sorted(_visible_files(sources.playbooks)):
            yield f"playbooks/{path.relative_to(sources.playbooks)}", path


def _visible_files(folder: Path) -> Sequence[Path]:
    return [
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    ]


def _relative(path: Path, folder: Path) -> str:
    return path.name if folder.is_file() else str(path.relative_to(folder))


def _content(path: Path) -> bytes:
    """A file's bytes, or its size and time when it is too large to be a rule or plan."""
    status = path.stat()
    if status.st_size > sourcemap.MAX_FILE_BYTES:
        return f"size {status.st_size}, modified {status.st_mtime_ns}".encode()
    return hashlib.sha256(path.read_bytes()).digest()
