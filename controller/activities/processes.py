"""Child processes that die with their worker, and the sweep that ends whatever survives.

Two facts shape this module. A worker killed with SIGKILL cannot stop its children, so
every child is started through a tiny launcher that asks the kernel to kill it when its
parent dies (``PR_SET_PDEATHSIG``) and then ``exec``s the real program. And ansible-core
2.19 runs each task in a session of its own, so killing ``ansible-playbook``'s process
group can miss the task's processes, which go on (the "cancel gap"). Every process started
for a run carries the run's private directory in its environment or command line, so
``sweep`` finds them all by that marker and kills them: after every run, and before a
retried attempt starts on the same machine. Both are Linux facilities; elsewhere the
launcher only execs and the sweep finds nothing.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

_PR_SET_PDEATHSIG = 1
_LAUNCHER = """\
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
except (OSError, AttributeError):
    pass
if os.getppid() != int(sys.argv[1]):
    os._exit(137)
os.execvp(sys.argv[2], sys.argv[2:])
"""
"""Set the parent-death signal, give up if the parent is gone already, exec the program."""
_SWEEP_ROUNDS = 3
_PROC = Path("/proc")


def dying_with_parent(argv: list[str]) -> list[str]:
    """``argv`` wrapped so that the process is killed when this process dies.

    The launcher execs ``argv[0]`` looked up on ``PATH``; it must be started directly by
    this process (the parent-death signal follows the thread that forked it, so start
    it from a thread that outlives the child, as a running activity's thread does).
    """
    if not sys.platform.startswith("linux"):
        return argv
    return [sys.executable, "-c", _LAUNCHER, str(os.getpid()), *argv]


def executable(name: str) -> str:
    """The path of ``name``: on ``PATH``, or beside this Python (a virtualenv's ``bin``)."""
    found = shutil.which(name)
    if found:
        return found
    sibling = Path(sys.executable).parent / name
    return str(sibling) if sibling.exists() else name


def carriers(marker: str) -> list[int]:
    """Process ids (other than this one) whose command line or environment holds ``marker``."""
    if not _PROC.is_dir():
        return []
    needle = marker.encode()
    me = os.getpid()
    found: list[int] = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        for part in ("cmdline", "environ"):
            try:
                if needle in (entry / part).read_bytes():
                    found.append(int(entry.name))
                    break
            except OSError:  # gone meanwhile, or not ours to read
                continue
    return found


def sweep(marker: str) -> list[int]:
    """Kill every process that carries ``marker``; the ids killed.

    Several rounds, since a process may start a child while the sweep runs.
    """
    killed: list[int] = []
    for _ in range(_SWEEP_ROUNDS):
        found = [pid for pid in carriers(marker) if pid not in killed]
        if not found:
            break
        for pid in found:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    if killed:
        log.warning("stray_processes_killed", count=len(killed), marker=marker)
    return killed
