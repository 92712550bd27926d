"""Helpers of the activity tests: contexts, localhost-alias inventories, visit markers."""

from __future__ import annotations

import base64
import concurrent.futures
import dataclasses
import select
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pydantic
import yaml
from harness import processes
from temporalio.client import Client

from controller.activities import ansible, inventory
from controller.activities import config as config_module
from controller.domain import resources
from controller.workflows import activity_io

PLAYBOOKS = Path(__file__).parent / "playbooks"
ROUTING_KEY = "R0UT1NGKEY0000000000000000000001"
OTHER_ROUTING_KEY = "R0UT1NGKEY0000000000000000000002"


def context(step: str = "restart", episode: str = "rule/service/web/20260101T000000.000000Z"):
    """An activity context of a made-up episode."""
    return activity_io.ActivityContext(
        resource=resources.ResourceKey("service/web"),
        episode=resources.EpisodeId(episode),
        rule="rule",
        plan="plan",
        step=step,
    )


@dataclasses.dataclass
class Hosts:
    """Localhost aliases (and unreachable hosts) with a marker directory to count visits."""

    root: Path
    inventory: Path
    markers: Path
    flags: Path
    state: Path

    def visits(self, host: str) -> int:
        """How many times the playbook recorded a visit of ``host``."""
        path = self.markers / host
        return len(path.read_text().splitlines()) if path.exists() else 0

    def ended(self, host: str) -> bool:
        """Whether the playbook reached its last task on ``host``."""
        return self.ends(host) > 0

    def ends(self, host: str) -> int:
        """How many times the playbook reached its last task on ``host``."""
        path = self.markers / f"{host}.end"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def fail(self, host: str, *, on: bool = True) -> None:
        """Make the playbook fail on ``host`` (or stop failing)."""
        flag = self.flags / host
        if on:
            flag.touch()
        else:
            flag.unlink(missing_ok=True)

    def extra_vars(self, **more: Any) -> dict[str, Any]:
        """The extra vars the visit playbook needs."""
        return {"marker_dir": str(self.markers), "fail_dir": str(self.flags), **more}

    def activities(self, **settings: Any) -> ansible.PlaybookActivities:
        """The playbook activities over this inventory."""
        ansible_settings = config_module.AnsibleConfig(
            inventory=self.inventory, python_interpreter=sys.executable, **settings
        )
        return ansible.PlaybookActivities(
            playbooks_dir=PLAYBOOKS,
            state_dir=self.state,
            settings=ansible_settings,
            hosts=inventory.Inventory(cmdb_client=None, static=self.inventory),
        )


def write_inventory(path: Path, *, local: list[str], unreachable: list[str] = ()) -> Path:
    """An inventory of localhost aliases and hosts nobody answers on."""
    dead_port = processes.free_port()
    hosts: dict[str, Any] = {name: {"ansible_connection": "local"} for name in local}
    for name in unreachable:
        hosts[name] = {
            "ansible_connection": "ssh",
            "ansible_host": "127.0.0.1",
            "ansible_port": dead_port,
            "ansible_user": "nobody",
            "ansible_ssh_common_args": "-o ConnectTimeout=3 -o BatchMode=yes",
        }
    groups = {"web": {"hosts": dict.fromkeys(local[:2])}}
    path.write_text(yaml.safe_dump({"all": {"hosts": hosts, "children": groups}}))
    return path


class WorkerProcess:
    """``worker_main.py`` in a child process: started, killed with SIGKILL, or stopped."""

    def __init__(self, *, address: str, task_queue: str, config: Any, log_path: Path) -> None:
        self.address = address
        self.task_queue = task_queue
        self.config_path = log_path.with_suffix(".json")
        self.config_path.write_bytes(pydantic.TypeAdapter(type(config)).dump_json(config))
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        """Start the worker and wait until it polls its task queue."""
        script = Path(__file__).parent / "worker_main.py"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(script), self.address, self.task_queue, str(self.config_path)],
                stdout=subprocess.PIPE,
                stderr=log,
            )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else b""
        if line.strip() != b"ready":
            self.stop()
            raise RuntimeError(f"worker did not start:\n{self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the worker, as a crash or an OOM kill would."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """Stop the worker if it still runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()


async def call_in_worker(
    client: Client,
    activities: list[Any],
    *,
    activity: str,
    arg: Any,
    max_attempts: int = 5,
    workflow_id: str = "",
    interceptors: tuple[Any, ...] = (),
    **timeouts: Any,
) -> tuple[Any, Any]:
    """Call one activity through a real worker and Temporal's retries: (result or error, handle).

    An activity failure comes back as the workflow's ``WorkflowFailureError``.
    """
    from call_workflow import CallActivity, CallInput  # noqa: PLC0415
    from temporalio.client import WorkflowFailureError  # noqa: PLC0415
    from temporalio.worker import Worker  # noqa: PLC0415

    queue = f"activities-{uuid.uuid4().hex[:8]}"
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        async with Worker(
            client,
            task_queue=queue,
            workflows=[CallActivity],
            activities=activities,
            activity_executor=pool,
            interceptors=interceptors,
        ):
            handle = await client.start_workflow(
                CallActivity.run,
                CallInput(activity=activity, arg=arg, max_attempts=max_attempts, **timeouts),
                id=workflow_id or f"call-{queue}",
                task_queue=queue,
            )
            try:
                return await handle.result(), handle
            except WorkflowFailureError as exc:
                return exc, handle


def decoded_history(history: Any) -> str:
    """A history's JSON with every payload's data decoded (to_json keeps it base64)."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "data" and isinstance(item, str):
                    found.append(base64.b64decode(item).decode("utf-8", "replace"))
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            found.append(value)

    walk(history.to_json_dict())
    return "\n".join(found)
