"""The ``run_command`` activity, and the command runner the scale actuators share.

A command is an argument list run without a shell: ``argv`` is literal plan text, and
values (labels, variables) reach the command only through its environment
(``HOMEOSTAT_VAR_<NAME>`` and ``HOMEOSTAT_VARS``). Enough to chain ``terraform apply``,
``kubectl apply -f`` and Ansible in one plan.

The command dies with its worker (``processes.dying_with_parent``), runs in a session of
its own (so stopping it stops its children), and is stopped on cancellation, on worker
shutdown, and at its deadline (the activity's start-to-close timeout less a margin, so
the activity can still report). Output goes to files in the step's run directory (the
``log_ref``); the history gets the last ``OUTPUT_TAIL_BYTES`` of each stream, secrets
masked.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.exceptions import CancelledError

from controller import errors
from controller.activities import config as config_module
from controller.activities import failures, processes, redaction, rundirs
from controller.workflows import activity_io

_ALWAYS_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER")
_NAME = re.compile(r"[^A-Za-z0-9]")
_POLL = 0.25
_HEARTBEAT_EVERY = 1.0
_MARGIN = timedelta(seconds=5)
"""Time left to the activity after its command's deadline, to report the timeout."""
RUN_MARKER = "HOMEOSTAT_RUN_DIR"
"""Environment variable carrying the attempt's directory: how a sweep finds a command's
children (the step's directory, a prefix of it, finds those of every attempt)."""


def variable_env(variables: Mapping[str, str]) -> dict[str, str]:
    """``HOMEOSTAT_VAR_<NAME>`` for every variable, and all of them as ``HOMEOSTAT_VARS``."""
    found = {
        f"HOMEOSTAT_VAR_{_NAME.sub('_', name).upper()}": str(v) for name, v in variables.items()
    }
    found["HOMEOSTAT_VARS"] = json.dumps(dict(variables), sort_keys=True)
    return found


@dataclass(frozen=True, slots=True, kw_only=True)
class Finished:
    """How a command ended.

    Attributes:
        exit_code: its exit code (negative: the signal that ended it).
        stdout: the tail of standard output, secrets masked.
        stderr: the tail of standard error, secrets masked.
        log_ref: the directory holding the full output.
        seconds: how long it ran.
    """

    exit_code: int
    stdout: str
    stderr: str
    log_ref: str
    seconds: float


class CommandRunner:
    """Runs commands for activities (sync; call it from a running activity's thread)."""

    def __init__(
        self,
        *,
        settings: config_module.CommandsConfig,
        state_dir: Path,
        redactor: redaction.Redactor,
        keep: int = 200,
    ) -> None:
        """Run commands as ``settings`` say, keeping their output under ``state_dir``."""
        self._settings = settings
        self._root = state_dir / "commands"
        self._redactor = redactor
        self._keep = keep

    def run(
        self,
        *,
        context: activity_io.ActivityContext,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: str = "",
    ) -> Finished:
        """Run ``argv`` to its end.

        Raises:
            errors.PermanentError: the program or working directory does not exist.
            errors.TransientError: it ran past its deadline, or the worker is shutting down.
            CancelledError: the activity was cancelled (the command was stopped).
        """
        if not argv:
            raise errors.PermanentError("empty command")
        _check_nul(argv=argv, env=env or {}, cwd=cwd)
        workdir = self._workdir(cwd)
        full_env = self._env(env or {})
        program = _program(argv[0], workdir, full_env.get("PATH", ""))
        step_dir = rundirs.step_dir(self._root, context, keep=self._keep)
        attempt_dir = step_dir / f"attempt-{activity.info().attempt:04d}"
        attempt_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        full_env[RUN_MARKER] = str(attempt_dir)
        processes.sweep(f"{RUN_MARKER}={step_dir}/")  # leftovers of earlier attempts
        started = time.monotonic()
        deadline = started + self._timeout().total_seconds()
        with (attempt_dir / "stdout").open("wb") as out, (attempt_dir / "stderr").open("wb") as err:
            try:
                child = subprocess.Popen(
                    processes.dying_with_parent([program, *argv[1:]]),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    cwd=workdir,
                    env=full_env,
                    start_new_session=True,
                )
            except (OSError, ValueError) as exc:
                raise errors.PermanentError(f"{argv[0]} cannot start: {exc}") from exc
            stopped = self._wait(child, deadline=deadline)
        # Only this attempt's processes: a newer attempt may already run here.
        processes.sweep(f"{RUN_MARKER}={attempt_dir}\0")
        finished = Finished(
            exit_code=child.returncode,
            stdout=self._tail(attempt_dir / "stdout"),
            stderr=self._tail(attempt_dir / "stderr"),
            log_ref=str(attempt_dir),
            seconds=time.monotonic() - started,
        )
        if stopped == "cancelled":
            raise CancelledError(f"{argv[0]} cancelled and stopped")
        if stopped == "worker_shutdown":
            raise errors.TransientError(f"{argv[0]} stopped: the worker is shutting down")
        if stopped == "deadline":
            tail = (finished.stderr or finished.stdout)[-500:]
            raise errors.TransientError(
                f"{argv[0]} timed out after {finished.seconds:.0f} s and was stopped: {tail}"
            )
        return finished

    def _wait(self, child: subprocess.Popen[bytes], *, deadline: float) -> str:
        """Wait for ``child``; why it was stopped, or empty when it ended by itself."""
        last_beat = 0.0
        while True:
            try:
                child.wait(timeout=_POLL)
            except subprocess.TimeoutExpired:
                pass
            else:
                return ""
            why = ""
            if activity.is_worker_shutdown():
                why = "worker_shutdown"
            elif activity.is_cancelled():
                why = "cancelled"
            elif time.monotonic() > deadline:
                why = "deadline"
            if why:
                self._stop(child)
                return why
            if time.monotonic() - last_beat >= _HEARTBEAT_EVERY:
                activity.heartbeat()
                last_beat = time.monotonic()

    def _stop(self, child: subprocess.Popen[bytes]) -> None:
        """SIGTERM the command's session, then SIGKILL it after the grace period."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=self._settings.grace.total_seconds())
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()

    def _timeout(self) -> timedelta:
        limit = activity.info().start_to_close_timeout
        if limit is None or limit <= _MARGIN * 2:
            return self._settings.default_timeout if limit is None else limit / 2
        return limit - _MARGIN

    def _workdir(self, cwd: str) -> Path:
        base = self._settings.workdir
        path = base / cwd if cwd else base
        if not path.is_dir():
            raise errors.PermanentError(f"working directory {path} does not exist")
        return path

    def _env(self, env: Mapping[str, str]) -> dict[str, str]:
        inherited = (*_ALWAYS_INHERITED, *self._settings.inherit_env)
        found = {name: os.environ[name] for name in inherited if name in os.environ}
        found.update(env)
        found.update(self._settings.secret_env)
        return found

    def _tail(self, path: Path) -> str:
        """The file's last ``OUTPUT_TAIL_BYTES``, secrets masked.

        Read with a margin, so that a secret cut by the boundary is still recognized.
        """
        limit = activity_io.OUTPUT_TAIL_BYTES
        try:
            with path.open("rb") as stream:
                size = stream.seek(0, os.SEEK_END)
                stream.seek(max(0, size - limit - self._redactor.longest))
                data = stream.read()
        except OSError:
            return ""
        text = self._redactor.text(data.decode("utf-8", errors="replace"))
        return text.encode()[-limit:].decode("utf-8", errors="ignore")


def _check_nul(*, argv: Sequence[str], env: Mapping[str, str], cwd: str) -> None:
    """Refuse NUL bytes, which no argument, variable or path can carry (labels can hold them).

    Raises:
        errors.PermanentError: naming where the NUL is, never the value.
    """
    where = [f"argument {n}" for n, arg in enumerate(argv) if "\0" in arg]
    where += [f"variable {name}" for name, value in env.items() if "\0" in name + value]
    if "\0" in cwd:
        where.append("working directory")
    if where:
        raise errors.PermanentError(
            f"{argv[0]!r} not started: a NUL byte in its {', '.join(where)} "
            "(from a label or variable?) cannot be passed to a program"
        )


def _program(name: str, workdir: Path, path: str) -> str:
    """The program's path; a name without a slash is looked up on ``path``.

    Raises:
        errors.PermanentError: there is no such executable.
    """
    if "/" in name:
        candidate = Path(name) if Path(name).is_absolute() else workdir / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
        raise errors.PermanentError(f"command {name!r} not found or not executable")
    found = shutil.which(name, path=path)
    if found is None:
        raise errors.PermanentError(f"command {name!r} not found on PATH")
    return found


class CommandActivities:
    """``run_command``, with its runner injected."""

    def __init__(self, *, runner: CommandRunner) -> None:
        """Run commands with ``runner``."""
        self._runner = runner

    @activity.defn(name=activity_io.RUN_COMMAND, no_thread_cancel_exception=True)
    def run_command(self, request: activity_io.RunCommandInput) -> activity_io.RunCommandOutput:
        """Run the command; a non-zero exit is an answer (``ok=False``), not an error."""
        with failures.reported():
            finished = self._runner.run(
                context=request.context,
                argv=request.argv,
                env={**variable_env(request.variables), **request.env},
                cwd=request.cwd,
            )
            return activity_io.RunCommandOutput(
                ok=finished.exit_code in request.ok_exit_codes,
                exit_code=finished.exit_code,
                stdout=finished.stdout,
                stderr=finished.stderr,
                log_ref=finished.log_ref,
                stdout_json=_json_document(finished.stdout),
            )


def _json_document(text: str) -> Any:
    """``text`` parsed when it is one JSON object or array, else ``None``."""
    if not text.lstrip().startswith(("{", "[")):
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict | list) else None
