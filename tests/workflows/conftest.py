"""Fixtures of the workflow tests: clients with Homeostat's data converter, and workers."""

import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import fakes
import pytest
import pytest_asyncio
from harness import processes
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from controller import embedded, workflows
from controller.domain import contract
from controller.workflows import converter


@pytest.fixture(scope="session")
def ts_client(time_skipping_env: WorkflowEnvironment) -> Client:
    """A client of the time-skipping server that speaks Homeostat's payloads."""
    converter.warm_up()
    return fakes.with_converter(time_skipping_env.client)


@pytest.fixture(scope="session")
def dev_client(temporal_client: Client) -> Client:
    """A client of the dev server that speaks Homeostat's payloads."""
    converter.warm_up()
    return fakes.with_converter(temporal_client)


@pytest_asyncio.fixture(scope="module")
async def tmpfs_dev_client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Client]:
    """A dev server of its own with its SQLite file in memory (/dev/shm), for volume tests.

    Same binary and features as the session's dev server; only its database skips the
    disk, whose fsyncs (not Temporal) would otherwise set the pace of a 200-resource
    test on these machines. Stopped when the module's tests are done.
    """
    shm = Path("/dev/shm")  # noqa: S108 - a tmpfs on Linux, not a shared temp dir
    base = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() else tmp_path_factory.mktemp("shm")
    server = embedded.EmbeddedTemporal(
        db_file=base / "temporal.db",
        port=processes.free_port(),
        ui=False,
        search_attributes=contract.SEARCH_ATTRIBUTES,
    )
    await server.start()
    try:
        converter.warm_up()
        yield fakes.with_converter(await Client.connect(server.address))
    finally:
        await server.stop()
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class TimeSkipping:
    """The time-skipping server, a client, and the one worker of all its tests."""

    env: WorkflowEnvironment
    client: Client
    acts: fakes.FakeActivities
    task_queue: str


@pytest_asyncio.fixture(scope="session")
async def ts(
    ts_client: Client, time_skipping_env: WorkflowEnvironment
) -> AsyncIterator[TimeSkipping]:
    """One worker for every time-skipping test, alive until the session ends.

    Workflows left open by a test keep their worker, so their timers never leave a
    workflow task that no worker takes (which would stop the server skipping time). Tests
    use their own resources and plan names, and look only at their own calls.
    """
    acts = fakes.FakeActivities()
    task_queue = "time-skipping"
    async with Worker(
        ts_client,
        task_queue=task_queue,
        workflows=workflows.WORKFLOWS,
        activities=acts.activities(),
    ):
        yield TimeSkipping(
            env=time_skipping_env, client=ts_client, acts=acts, task_queue=task_queue
        )
