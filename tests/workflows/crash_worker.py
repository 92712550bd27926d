"""A Homeostat worker in its own process, for the test that kills it mid-episode.

It runs the real workflows; the activities are stand-ins (the real ones are another
issue's) that append every start and finish to a JSON-lines file, so the test can count
how often each step ran across the two worker processes. The step whose command is
``slow`` hangs, heartbeating, on its first attempt: that is where the test kills it.

Usage: python crash_worker.py ADDRESS TASK_QUEUE PLANS_DIR LOG_FILE
"""

import asyncio
import json
import os
import sys
from pathlib import Path

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from controller import workflows
from controller.activities import episodes
from controller.plans import loader
from controller.workflows import activity_io as aio
from controller.workflows import converter


def _record(log: Path, event: str, step: str) -> None:
    line = {"event": event, "step": step, "attempt": activity.info().attempt, "pid": os.getpid()}
    with log.open("a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


def _activities(plans: Path, log: Path) -> list:
    @activity.defn(name=aio.LOAD_PLAN)
    async def load_plan(request: aio.LoadPlanInput) -> aio.LoadPlanOutput:
        return aio.LoadPlanOutput(plan=loader.find_plan(plans, request.name))

    @activity.defn(name=aio.RUN_COMMAND)
    async def run_command(request: aio.RunCommandInput) -> aio.RunCommandOutput:
        step = request.context.step
        _record(log, "start", step)
        if request.argv[0] == "slow" and activity.info().attempt == 1:
            while True:
                activity.heartbeat()
                await asyncio.sleep(0.2)
        _record(log, "done", step)
        return aio.RunCommandOutput(ok=True, exit_code=0)

    return [load_plan, episodes.start_episode, run_command]


async def main(address: str, task_queue: str, plans: Path, log: Path) -> None:
    converter.warm_up()
    client = await Client.connect(address, data_converter=converter.DATA_CONVERTER)
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=workflows.WORKFLOWS,
        activities=_activities(plans, log),
    ):
        print("ready", flush=True)  # noqa: T201 - the test waits for this line
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])))
