"""What the scenario tests share: settings over the shipped content, Homeostat in-process, waits.

Each scenario runs the shipped rules/, remediations/ and playbooks/ (or a copy whose
durations are compressed by configuration) against the session's Temporal dev server, with
Homeostat's service running in the test's process on its own task queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from harness import inprocess
from temporalio.client import Client

from controller import service, settings
from controller.domain import contract, durations, resources
from controller.workflows import remediation_io, resource_io

REPO = Path(__file__).resolve().parents[2]
ROUTING_KEY = "R0UT1NGKEY000000000000000SCENARI"
JIRA_USER = "homeostat@example.com"
JIRA_TOKEN = "jira-api-token"
TASK_QUEUES: list[str] = []
"""The task queues of the scenarios run in this session: their workflows are the ones
scenario 7 replays."""


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def shipped(folder: Path | None = None) -> dict[str, str]:
    """The ``rules`` settings group naming the shipped folders (or a copy of them in ``folder``)."""
    root = folder or REPO
    return {
        "rules_dir": str(root / "rules"),
        "remediations_dir": str(root / "remediations"),
        "playbooks_dir": str(root / "playbooks"),
    }


def paging(fake: Any) -> dict[str, Any]:
    """The ``paging`` settings group for the PagerDuty contract server."""
    return {"routing_key": ROUTING_KEY, "events_url": fake.url, "ca_file": str(fake.ca_file)}


def ticketing(fake: Any) -> dict[str, Any]:
    """The ``ticketing`` settings group for the Jira contract server."""
    return {"url": fake.url, "user": JIRA_USER, "token": JIRA_TOKEN, "flavor": "cloud"}


def make_settings(tmp_path: Path, temporal_address: str, **groups: dict[str, Any]) -> Path:
    """Write ``tmp_path/homeostat.yaml`` for one scenario; its path (for the CLI too).

    Defaults: the shipped rules, plans and playbooks; a task queue and HTTP port of its
    own; run folders under ``tmp_path``; playbooks run with this interpreter.
    """
    values: dict[str, Any] = {
        "temporal": {"address": temporal_address, "task_queue": f"scen-{uuid.uuid4().hex[:8]}"},
        "http": {"port": free_port()},
        "rules": shipped(),
        "activities": {"state_dir": str(tmp_path / "runs")},
        "ansible": {"python_interpreter": sys.executable},
    }
    for group, extra in groups.items():
        values[group] = {**values.get(group, {}), **extra}
    TASK_QUEUES.append(values["temporal"]["task_queue"])
    path = tmp_path / "homeostat.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


_DURATION_KEYS = frozenset(
    {"for", "keep_firing_for", "cooldown", "stale_after", "interval", "within", "per", "after"}
    | {"timeout", "heartbeat", "deadline", "duration", "stabilization", "period"}
    | {"initial_interval", "max_interval"}
)
_RANGE = re.compile(r"\[(\d+[smhd])\]")


def _scaled(text: str, factor: int) -> str:
    seconds = durations.parse_duration(text).total_seconds() / factor
    return f"{max(1, round(seconds))}s"


def _compress(value: Any, factor: int, key: str = "") -> Any:
    if isinstance(value, dict):
        return {name: _compress(item, factor, str(name)) for name, item in value.items()}
    if isinstance(value, list):
        return [_compress(item, factor, key) for item in value]
    if isinstance(value, str) and key in _DURATION_KEYS and value not in {"0", ""}:
        return _scaled(value, factor)
    if isinstance(value, str) and key in {"expr", "metric", "promql"}:
        return _RANGE.sub(lambda found: f"[{_scaled(found[1], factor)}]", value)
    return value


def compressed_copy(
    folder: Path,
    *,
    factor: int,
    files: dict[str, dict[str, Any] | None],
    replace: dict[str, str] | None = None,
) -> dict[str, str]:
    """Copy the shipped rules/ and remediations/ to ``folder``, with time compressed.

    Each of ``files`` (``rules/services.yaml``, ``remediations/scale-web.yaml``) gets every
    duration, and every PromQL range, divided by ``factor`` (at least one second), and the
    texts of ``replace`` replaced (the example URLs by the test's servers); its mapping, if
    any, then sets top-level keys. The result is the ``rules`` settings group.
    """
    for name in ("rules", "remediations"):
        shutil.copytree(REPO / name, folder / name)
    for name, overrides in files.items():
        text = (REPO / name).read_text()
        for old, new in (replace or {}).items():
            assert old in text, f"{old!r} is not in {name}"
            text = text.replace(old, new)
        data = _compress(yaml.safe_load(text), factor)
        data.update(overrides or {})
        (folder / name).write_text(yaml.safe_dump(data, sort_keys=False))
    return {**shipped(folder), "playbooks_dir": str(REPO / "playbooks")}


def load(path: Path) -> settings.Settings:
    """The settings a scenario wrote."""
    return settings.load(path)


def running(config: settings.Settings) -> contextlib.AbstractAsyncContextManager[service.Endpoints]:
    """`homeostat up` in this process until the block ends (its workflows are left as they are)."""
    return inprocess.running(config, end_workflows=False)


client = inprocess.client


async def eventually(check: Callable[[], Any], *, timeout: float, interval: float = 0.25) -> Any:
    """Await ``check()`` until it returns something truthy without raising; return it."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = await check()
        except Exception as exc:  # noqa: BLE001 - e.g. the workflow does not exist yet
            last = exc
        else:
            if value:
                return value
        await asyncio.sleep(interval)
    raise AssertionError(f"not true within {timeout} s (last error: {last!r})")


async def resource_state(temporal: Client, resource: str) -> resource_io.ResourceState:
    """The resource workflow's state, by query."""
    handle = temporal.get_workflow_handle(
        resources.resource_workflow_id(resources.ResourceKey(resource))
    )
    return await handle.query(contract.QUERY_STATE, result_type=resource_io.ResourceState)


async def closed_episodes(
    temporal: Client, resource: str, *, count: int = 1, timeout: float = 90
) -> resource_io.ResourceState:
    """The resource's state once ``count`` episodes are closed and none is open."""

    async def closed() -> resource_io.ResourceState | None:
        state = await resource_state(temporal, resource)
        return state if len(state.outcomes) >= count and not state.episodes else None

    return await eventually(closed, timeout=timeout, interval=0.5)


async def remediation(
    temporal: Client, episode: str, *, timeout: float = 60
) -> remediation_io.RemediationResult:
    """The episode's remediation result (its workflow's completion)."""
    handle = temporal.get_workflow_handle(
        resources.remediation_workflow_id(resources.EpisodeId(episode)),
        result_type=remediation_io.RemediationResult,
    )
    return await asyncio.wait_for(handle.result(), timeout)


async def completed_steps(temporal: Client, workflow_id: str) -> list[str]:
    """The step paths of the activities a workflow's history records as completed, in order."""
    history = await temporal.get_workflow_handle(workflow_id).fetch_history()
    scheduled: dict[int, str] = {}
    done: list[str] = []
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            payloads = event.activity_task_scheduled_event_attributes.input.payloads
            arg = json.loads(payloads[0].data) if payloads else {}
            scheduled[event.event_id] = arg.get("context", {}).get("step", "")
        if event.HasField("activity_task_completed_event_attributes"):
            done.append(
                scheduled[event.activity_task_completed_event_attributes.scheduled_event_id]
            )
    return done


async def activity_inputs(temporal: Client, workflow_id: str, activity: str) -> list[Any]:
    """The inputs (as JSON) of every activity of type ``activity`` a workflow scheduled."""
    history = await temporal.get_workflow_handle(workflow_id).fetch_history()
    return [
        json.loads(event.activity_task_scheduled_event_attributes.input.payloads[0].data)
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
        and event.activity_task_scheduled_event_attributes.activity_type.name == activity
    ]


async def activities_run(temporal: Client, workflow_id: str) -> list[str]:
    """The activity types a workflow scheduled, in order, read from its history."""
    history = await temporal.get_workflow_handle(workflow_id).fetch_history()
    return [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in history.events
        if event.HasField("activity_task_scheduled_event_attributes")
    ]


async def homeostat_cli(config_path: Path, *args: str, cwd: Path = REPO) -> tuple[int, str, str]:
    """Run ``homeostat ARGS --config CONFIG`` as an operator would: exit status, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller",
        *args,
        "--config",
        str(config_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


class Homeostat:
    """`homeostat up` as a child process, as an operator runs it (and as a crash kills it)."""

    def __init__(self, config_path: Path, log_path: Path) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, timeout: float = 60) -> None:
        api = f"http://127.0.0.1:{load(self.config_path).http.port}/readyz"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "controller", "up", "--config", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "HOMEOSTAT_LOGGING__FORMAT": "json"},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"homeostat exited:\n{self.output()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(api, timeout=1) as answer:
                if answer.status == 200:
                    return
            time.sleep(0.2)
        raise AssertionError(f"homeostat not ready:\n{self.output()}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, no last heartbeat."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


async def history(config_path: Path, target: str) -> dict[str, Any]:
    """`homeostat history TARGET --json`, as a tool would read it."""
    code, out, err = await homeostat_cli(config_path, "history", target, "--json")
    assert code == 0, out + err
    found: dict[str, Any] = json.loads(out)
    return found


def steps_of(timeline: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The timeline's step and verification entries by step path (the last one of each)."""
    return {
        entry["step"]: entry
        for entry in timeline["entries"]
        if entry["kind"] in {"step", "verification", "escalation"}
    }
