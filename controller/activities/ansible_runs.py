"""One ansible-runner invocation: a playbook against a batch of hosts, watched event by event.

What reaches Ansible, and how:

- Values (labels, annotations, plan variables) go into ``env/extravars`` as JSON, every
  string wrapped as ``{"__ansible_unsafe": ...}``: Ansible never templates them, so
  ``{{ lookup('pipe', ...) }}`` in a label stays text, and a string stays a string (YAML's
  ``!unsafe`` tag would let ``"on"`` become ``True`` and ``"0755"`` become 493). They are
  never put on the command line.
- Host names go into an inventory file of the run (group ``homeostat_run``), after a
  strict check of their spelling; the command line only says ``--limit homeostat_run``,
  so a host name can never act as a pattern (``all``, ``*``, ``!x``).
- The environment of ``ansible-playbook`` is the worker's minus everything not needed,
  so the worker's own secrets never reach ansible-runner's artifacts (its ``command``
  file records the environment).
- ``ansible-playbook`` starts through ``processes.dying_with_parent``, and after the run
  every process still carrying the run's artifact directory is killed (the ansible-core
  2.19 cancel gap, see ``processes``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import ansible_runner
import structlog
import yaml

from controller import errors
from controller.activities import processes
from controller.workflows import activity_io

log = structlog.get_logger(__name__)

RUN_GROUP = "homeostat_run"
"""The inventory group holding the hosts of one invocation; the only ``--limit`` used."""
DONE_GROUP = "homeostat_done"
"""Hosts a previous attempt finished, excluded when the play's own pattern picks hosts."""

_HOST = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
_UNDEFINED = re.compile(r"'([^']{1,200})' is undefined")
_MESSAGE = 300
_PEXPECT_TIMEOUT = 0.25
"""Seconds between two cancel checks while Ansible prints nothing."""
_KEPT_ENV = frozenset(
    {"PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"}
    | {"SSH_AUTH_SOCK", "VIRTUAL_ENV", "PYTHONPATH"}
)
_KEPT_EVENTS = frozenset(
    {"runner_on_failed", "runner_on_unreachable", "playbook_on_stats", "error"}
)
"""Events also written to the artifact directory; the rest only pass through memory."""


def check_host(name: str) -> str:
    """``name`` if it is a plain inventory host name.

    Raises:
        errors.PermanentError: it holds characters that Ansible would read as a pattern.
    """
    if not _HOST.fullmatch(name):
        raise errors.PermanentError(
            f"host {name!r} is not a plain host name (letters, digits, '_.-'; "
            "no ports, patterns or spaces)"
        )
    return name


def check_tag(name: str) -> str:
    """``name`` if it is a plain tag name.

    Raises:
        errors.PermanentError: it is not.
    """
    if not _TAG.fullmatch(name):
        raise errors.PermanentError(f"tag {name!r} is not a plain tag name")
    return name


class Listener(Protocol):
    """Who watches an invocation: progress, heartbeats and the stop signal."""

    def task_started(self, name: str) -> None:
        """A task began."""

    def host_event(self, host: str, *, changed: bool, failed: bool, unreachable: bool) -> None:
        """A task finished on a host."""

    def should_stop(self) -> bool:
        """Whether to stop the run now; also called while Ansible is silent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Invocation:
    """One ``ansible-playbook`` run.

    Attributes:
        project_dir: the playbooks directory (the run's working directory).
        playbook: the playbook, relative to ``project_dir``.
        private_dir: the step's private data directory (shared by its batches).
        ident: this invocation's artifact directory name, unique within ``private_dir``.
        inventories: inventory files or directories, in order.
        targets: the hosts to run on; empty: whatever the play's ``hosts:`` picks.
        exclude: hosts to leave out when ``targets`` is empty.
        check: check mode.
        tags: only these tags.
        forks: parallel hosts.
        env: further environment variables.
        python_interpreter: ``ansible_python_interpreter`` default; empty: discovery.
    """

    project_dir: Path
    playbook: str
    private_dir: Path
    ident: str
    inventories: tuple[Path, ...] = ()
    targets: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    check: bool = False
    tags: tuple[str, ...] = ()
    forks: int = 5
    env: Mapping[str, str] = field(default_factory=dict)
    python_interpreter: str = ""

    @property
    def artifact_dir(self) -> Path:
        """Where ansible-runner keeps this invocation's output; also its sweep marker."""
        return self.private_dir / "artifacts" / self.ident


@dataclass(slots=True, kw_only=True)
class Outcome:
    """What an invocation did.

    Attributes:
        status: ansible-runner's status (``successful``, ``failed``, ``canceled`` ...).
        rc: ansible-playbook's exit code.
        results: per-host results; complete only when ``recap`` is true.
        recap: the play recap arrived (the play ran to its end).
        error: Ansible's own error lines, when it could not run the playbook.
        undefined: the message of a task that failed on an undefined variable.
        stats: what the play reported with ``ansible.builtin.set_stats`` (not per host).
        log_path: the invocation's full output.
    """

    status: str = ""
    rc: int = 0
    results: dict[str, activity_io.HostResult] = field(default_factory=dict)
    recap: bool = False
    error: str = ""
    undefined: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
    log_path: Path | None = None


def write_extra_vars(private_dir: Path, extra_vars: Mapping[str, Any]) -> Path:
    """Write ``extra_vars`` where ansible-runner passes them as ``-e @file``, all unsafe."""
    path = private_dir / "env" / "extravars"
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(json.dumps(_marked(extra_vars)), encoding="utf-8")
    path.chmod(0o600)
    return path


def _marked(value: Any) -> Any:
    """``value`` with every string (not mapping keys) as Ansible's JSON unsafe marker."""
    if isinstance(value, str):
        return {"__ansible_unsafe": value}
    if isinstance(value, Mapping):
        return {str(key): _marked(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_marked(item) for item in value]
    return value


def unsafe_yaml(data: Mapping[str, Any]) -> str:
    """YAML of ``data`` where every string value is tagged ``!unsafe`` (keys stay plain)."""
    return yaml.dump(_keyed(data), Dumper=_UnsafeDumper, default_flow_style=False, width=1 << 16)


class _Key(str):
    """A mapping key: written as a plain string, never tagged."""

    __slots__ = ()


class _UnsafeDumper(yaml.SafeDumper):
    """Tags every string ``!unsafe``, except mapping keys."""


def _represent_unsafe(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("!unsafe", value, style='"')


def _represent_key(dumper: yaml.SafeDumper, value: _Key) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value))


_UnsafeDumper.add_representer(str, _represent_unsafe)
_UnsafeDumper.add_representer(_Key, _represent_key)


def _keyed(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {_Key(str(key)): _keyed(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_keyed(item) for item in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def run(invocation: Invocation, listener: Listener) -> Outcome:
    """Run the invocation to its end, or until ``listener.should_stop()``.

    What Ansible does is reported in the outcome, never raised.

    Raises:
        errors.TransientError: ansible-runner failed to prepare or start the run.
    """
    recorder = _Recorder(listener)
    config = _config(invocation)
    runner = ansible_runner.Runner(
        config, event_handler=recorder.on_event, cancel_callback=listener.should_stop
    )
    try:
        status, rc = runner.run()
    except (ansible_runner.AnsibleRunnerException, OSError) as exc:
        raise errors.TransientError(f"ansible-runner failed: {exc}") from exc
    finally:
        processes.sweep(str(invocation.artifact_dir))
    outcome = recorder.outcome
    outcome.status = str(status)
    outcome.rc = int(rc) if rc is not None else -1
    outcome.log_path = invocation.artifact_dir / "stdout"
    if not outcome.recap:
        outcome.error = _error_lines(outcome.log_path)
    for host in invocation.targets:
        if outcome.recap and host not in outcome.results:
            outcome.results[host] = activity_io.HostResult(
                host=host,
                ok=False,
                message="no play ran on this host (check the play's hosts: and the inventory)",
            )
    return outcome


def _config(invocation: Invocation) -> ansible_runner.RunnerConfig:
    inventories = list(invocation.inventories)
    limit: str | None = None
    groups: dict[str, Any] = {}
    if invocation.targets:
        groups[RUN_GROUP] = {"hosts": {check_host(h): _host_vars(h) for h in invocation.targets}}
        limit = RUN_GROUP
    elif invocation.exclude:
        groups[DONE_GROUP] = {"hosts": {check_host(h): None for h in invocation.exclude}}
        limit = f"all:!{DONE_GROUP}"
    if groups:
        path = invocation.private_dir / "inventory" / f"{invocation.ident}.yml"
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(yaml.safe_dump({"all": {"children": groups}}), encoding="utf-8")
        inventories.append(path)
    config = ansible_runner.RunnerConfig(
        private_data_dir=str(invocation.private_dir),
        project_dir=str(invocation.project_dir),
        artifact_dir=str(invocation.private_dir / "artifacts"),
        ident=invocation.ident,
        playbook=invocation.playbook,
        inventory=[str(path) for path in inventories] or None,
        limit=limit,
        forks=max(1, invocation.forks),
        tags=",".join(check_tag(tag) for tag in invocation.tags) or None,
        cmdline="--check" if invocation.check else None,
        quiet=True,
        suppress_ansible_output=True,
        settings={"pexpect_timeout": _PEXPECT_TIMEOUT, "suppress_ansible_output": True},
        envvars=_envvars(invocation),
    )
    try:
        config.prepare()
    except (ansible_runner.ConfigurationError, OSError) as exc:
        raise errors.TransientError(f"ansible-runner cannot prepare the run: {exc}") from exc
    config.env = _trimmed_env(config.env, invocation.env)
    config.command = processes.dying_with_parent(
        [processes.executable(config.command[0]), *config.command[1:]]
    )
    return config


_LOCAL_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_LOCAL_VARS = {
    "ansible_connection": "local",
    "ansible_python_interpreter": "{{ ansible_playbook_python }}",
}
"""What Ansible's implicit localhost has; a listed localhost would otherwise discover some
other interpreter on the worker's machine."""


def _host_vars(host: str) -> dict[str, str] | None:
    return dict(_LOCAL_VARS) if host in _LOCAL_NAMES else None


def _envvars(invocation: Invocation) -> dict[str, str]:
    env = {"ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", **invocation.env}
    if invocation.python_interpreter:
        env["ANSIBLE_PYTHON_INTERPRETER"] = invocation.python_interpreter
    return env


def _trimmed_env(env: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """ansible-runner's environment without the worker's own variables it does not need."""
    inherited = os.environ
    return {
        name: value
        for name, value in env.items()
        if name in _KEPT_ENV
        or name in extra
        or name.startswith("ANSIBLE_")
        or inherited.get(name) != value
    }


def _error_lines(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    found = [i for i, line in enumerate(lines) if line.startswith(("[ERROR]", "ERROR!"))]
    if not found:
        return "\n".join(lines[-5:])[-activity_io.OUTPUT_TAIL_BYTES :]
    first = found[0]
    return "\n".join(lines[first : first + 6])[:1500]


class _Recorder:
    """Turns ansible-runner events into host results and listener calls."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener
        self.outcome = Outcome()
        self._first_failure: dict[str, tuple[str, str]] = {}

    def on_event(self, event: Mapping[str, Any]) -> bool:
        kind = str(event.get("event", ""))
        data = event.get("event_data") or {}
        if kind == "playbook_on_task_start":
            self.listener.task_started(str(data.get("task", "")))
        elif kind in {"runner_on_ok", "runner_on_failed", "runner_on_unreachable"}:
            self._host_event(kind, data)
        elif kind == "playbook_on_stats":
            self._recap(data)
        return kind in _KEPT_EVENTS

    def _host_event(self, kind: str, data: Mapping[str, Any]) -> None:
        host = str(data.get("host", ""))
        result = data.get("res") or {}
        failed = kind == "runner_on_failed" and not data.get("ignore_errors")
        unreachable = kind == "runner_on_unreachable"
        if failed or unreachable:
            message = str(result.get("msg", "")) if isinstance(result, Mapping) else ""
            self._first_failure.setdefault(host, (str(data.get("task", "")), message))
            undefined = _UNDEFINED.search(message)
            if failed and undefined and not self.outcome.undefined:
                self.outcome.undefined = f"{data.get('task', '')}: {message}"[: _MESSAGE * 2]
        changed = bool(result.get("changed")) if isinstance(result, Mapping) else False
        self.listener.host_event(host, changed=changed, failed=failed, unreachable=unreachable)

    def _recap(self, data: Mapping[str, Any]) -> None:
        self.outcome.recap = True
        custom = data.get("artifact_data")
        if isinstance(custom, Mapping):
            self.outcome.stats.update(custom)
        failures = data.get("failures") or {}
        dark = data.get("dark") or {}
        changed = data.get("changed") or {}
        for host in data.get("processed") or {}:
            task, message = self._first_failure.get(host, ("", ""))
            unreachable = bool(dark.get(host))
            failed = bool(failures.get(host))
            bad = failed or unreachable
            self.outcome.results[host] = activity_io.HostResult(
                host=host,
                ok=not bad,
                changed=bool(changed.get(host)),
                unreachable=unreachable,
                failed_task=task if bad else "",
                message=message[:_MESSAGE] if bad else "",
            )
