"""A Homeostat activity worker in its own process, for tests that kill it.

Usage: python worker_main.py ADDRESS TASK_QUEUE CONFIG_JSON; prints "ready" once polling.
CONFIG_JSON is an ``ActivitiesConfig`` dumped with pydantic.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
from pathlib import Path

import pydantic
from temporalio.client import Client
from temporalio.worker import Worker

sys.path.insert(0, str(Path(__file__).resolve().parent))

import call_workflow

from controller import activities
from controller.workflows.converter import DATA_CONVERTER


async def main(address: str, task_queue: str, config_path: str) -> None:
    config = pydantic.TypeAdapter(activities.ActivitiesConfig).validate_json(
        Path(config_path).read_text()
    )
    client = await Client.connect(address, data_converter=DATA_CONVERTER)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=[call_workflow.CallActivity],
            activities=activities.build(config),
            activity_executor=pool,
        )
        async with worker:
            sys.stdout.write("ready\n")
            sys.stdout.flush()
            await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
