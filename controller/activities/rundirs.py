"""Where a step's runs keep their files: one directory per step, outside every history.

A step is named by its idempotency key (episode and step path), so every attempt of a
step, on any worker of the machine, uses the same directory: that is how a retried
attempt finds (and ends) what a killed one left running. Old directories are pruned.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from datetime import timedelta
from pathlib import Path

from controller.workflows import activity_io

PRUNE_AFTER = timedelta(days=1)
"""A directory is removed only when it is beyond the kept number and this old."""


def step_dir(root: Path, context: activity_io.ActivityContext, *, keep: int) -> Path:
    """The directory of the step ``context`` names, under ``root``, created if needed."""
    digest = hashlib.sha256(context.idempotency_key.encode()).hexdigest()[:24]
    path = root / digest
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    (path / "step.txt").write_text(context.idempotency_key + "\n", encoding="utf-8")
    prune(root, keep=keep, current=path)
    return path


def prune(root: Path, *, keep: int, current: Path) -> None:
    """Remove the oldest directories of ``root`` beyond ``keep``, if untouched for a day."""
    try:
        entries = sorted(
            (p for p in root.iterdir() if p.is_dir() and p != current),
            key=lambda p: p.stat().st_mtime,
        )
    except OSError:
        return
    too_old = time.time() - PRUNE_AFTER.total_seconds()
    for path in entries[: max(0, len(entries) - keep + 1)]:
        try:
            if path.stat().st_mtime < too_old:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            continue
