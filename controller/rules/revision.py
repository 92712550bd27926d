"""Which rule files are in force: a content hash, and the git commit when there is one.

A revision is the SHA-256 of the files' names and bytes, plus the git commit when the
folder is inside a git checkout (read from ``.git`` directly: no ``git`` binary needed).
Every transition carries it, so an incident's history names the rules that started it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

_GIT_HASH_LENGTH = 40


def content_hash(files: Iterable[tuple[str, bytes]]) -> str:
    """SHA-256 over (name, content) pairs, independent of their order."""
    digest = hashlib.sha256()
    for name, content in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return digest.hexdigest()


def git_commit(folder: Path) -> str | None:
    """The commit checked out in the git work tree holding ``folder``, if any."""
    for candidate in (folder.resolve(), *folder.resolve().parents):
        git = candidate / ".git"
        if git.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = git.read_text(errors="replace").strip()
            if not text.startswith("gitdir:"):
                return None
            git = (candidate / text.removeprefix("gitdir:").strip()).resolve()
        if git.is_dir():
            return _resolve_head(git)
    return None


def _resolve_head(git: Path) -> str | None:
    try:
        head = (git / "HEAD").read_text().strip()
    except OSError:
        return None
    if not head.startswith("ref:"):
        return head if len(head) == _GIT_HASH_LENGTH else None
    ref = head.removeprefix("ref:").strip()
    common = git
    commondir = git / "commondir"
    if commondir.is_file():
        common = (git / commondir.read_text().strip()).resolve()
    for base in (git, common):
        loose = base / ref
        if loose.is_file():
            return loose.read_text().strip() or None
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            sha, _, name = line.partition(" ")
            if name == ref:
                return sha
    return None
