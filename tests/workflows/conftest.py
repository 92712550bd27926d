"""Fixtures of the workflow tests: clients with Homeostat's data converter, and workers."""

from collections.abc import AsyncIterator
from dataclasses import dataclass

import fakes
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from controller import workflows
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
