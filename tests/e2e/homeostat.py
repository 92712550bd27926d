"""Homeostat's service running in the test's process, against the session's Temporal."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from harness import inprocess, processes
from temporalio.client import Client

from controller import settings
from controller.domain import contract, resources
from controller.workflows import resource_io


def write_rules(folder: Path, text: str) -> Path:
    """Write a rule file into a fresh rules folder beside an empty remediations folder."""
    (folder / "rules").mkdir(parents=True, exist_ok=True)
    (folder / "remediations").mkdir(exist_ok=True)
    (folder / "rules" / "rules.yaml").write_text(textwrap.dedent(text))
    return folder


def make_settings(
    folder: Path, temporal_address: str, **groups: dict[str, Any]
) -> settings.Settings:
    """Settings for one test: its own task queue, a free HTTP port, its own rules."""
    values: dict[str, Any] = {
        "temporal": {"address": temporal_address, "task_queue": f"e2e-{uuid.uuid4().hex[:8]}"},
        "http": {"port": processes.free_port()},
        "rules": {
            "rules_dir": str(folder / "rules"),
            "remediations_dir": str(folder / "remediations"),
            "playbooks_dir": str(folder / "playbooks"),
        },
    }
    for group, extra in groups.items():
        values[group] = {**values.get(group, {}), **extra}
    config = folder / "homeostat.yaml"
    config.write_text(yaml.safe_dump(values))
    return settings.load(config)


running = inprocess.running
end_open_workflows = inprocess.end_open_workflows
client = inprocess.client


async def resource_state(temporal: Client, resource: str) -> resource_io.ResourceState:
    """The resource workflow's state, by query."""
    handle = temporal.get_workflow_handle(
        resources.resource_workflow_id(resources.ResourceKey(resource))
    )
    return await handle.query(contract.QUERY_STATE, result_type=resource_io.ResourceState)


async def runs_of(temporal: Client, resource: str) -> int:
    """How many runs of the resource's workflow exist (continue-as-new chains count once each)."""
    workflow_id = resources.resource_workflow_id(resources.ResourceKey(resource))
    return len([wf async for wf in temporal.list_workflows(f"WorkflowId = '{workflow_id}'")])


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


class Process:
    """`homeostat up` as a child process, as an operator runs it."""

    def __init__(self, config_path: Path, log_path: Path) -> None:
        self.config_path = config_path
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, api_url: str, *, timeout: float = 60) -> None:
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
                raise AssertionError(f"homeostat exited:\n{self.log_path.read_text()[-4000:]}")
            if processes.http_ok(f"{api_url}/readyz"):
                return
            time.sleep(0.1)
        raise AssertionError(f"homeostat not ready:\n{self.log_path.read_text()[-4000:]}")

    def kill(self) -> None:
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
