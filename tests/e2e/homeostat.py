"""Homeostat's service running in the test's process, against the session's Temporal."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import yaml
from harness import processes
from temporalio.client import Client
from temporalio.service import RPCError

from controller import service, settings
from controller.domain import contract, resources
from controller.workflows import converter, resource_io


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


@contextlib.asynccontextmanager
async def running(config: settings.Settings) -> AsyncIterator[service.Endpoints]:
    """Run `homeostat up` in-process until the block ends."""
    stop = asyncio.Event()
    ready: asyncio.Future[service.Endpoints] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(service.run(config, stop=stop, on_ready=ready.set_result))
    done, _ = await asyncio.wait({task, ready}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    if ready not in done:
        task.cancel()
        raise TimeoutError("homeostat did not become ready")
    try:
        yield ready.result()
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, 60)
        finally:
            await end_open_workflows(config)


async def end_open_workflows(config: settings.Settings) -> None:
    """Terminate the workflows still open on the test's task queue, whose worker has stopped.

    Resource workflows outlive the test that started them. Left open on a task queue nobody
    serves, one would take the next test's transitions for the same resource key (the
    session shares one Temporal server) and never act on them.
    """
    assert config.temporal.address is not None
    temporal = await Client.connect(config.temporal.address, namespace=config.temporal.namespace)
    query = f"TaskQueue = '{config.temporal.task_queue}' AND ExecutionStatus = 'Running'"
    async for execution in temporal.list_workflows(query):
        handle = temporal.get_workflow_handle(execution.id, run_id=execution.run_id)
        with contextlib.suppress(RPCError):
            await handle.terminate("the test that started it is over")


async def client(address: str) -> Client:
    """A client that speaks Homeostat's payloads."""
    return await Client.connect(address, data_converter=converter.DATA_CONVERTER)


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
