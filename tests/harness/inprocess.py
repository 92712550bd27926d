"""`homeostat up` inside the test's own process and event loop, and a client of its Temporal."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from temporalio.client import Client
from temporalio.service import RPCError

from controller import service, settings
from controller.workflows import converter


@contextlib.asynccontextmanager
async def running(
    config: settings.Settings, *, end_workflows: bool = True
) -> AsyncIterator[service.Endpoints]:
    """Run `homeostat up` in this process until the block ends.

    With ``end_workflows``, the workflows still open on its task queue are terminated
    once it stopped (see ``end_open_workflows``).
    """
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
            if end_workflows:
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
    """A Temporal client that speaks Homeostat's payloads."""
    return await Client.connect(address, data_converter=converter.DATA_CONVERTER)
