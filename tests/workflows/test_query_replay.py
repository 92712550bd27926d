"""A resource history written while an operator queried the workflow still replays (a worker restart or cache eviction must not wedge it)."""

import asyncio
import uuid

import pytest
from fakes import FakeActivities, fired, make_plan, send, state, until, worker

from controller.operations import replay
from controller.workflows import resource_io as io

QUICK = "steps:\n  - {id: restart, command: [systemctl, restart, web]}\n"
SETTLED = {io.EpisodeStatus.DONE, io.EpisodeStatus.OPEN}


@pytest.mark.parametrize("plan", ["quick", "nowhere"])
async def test_a_query_answered_while_the_plan_loads_leaves_a_history_that_replays(
    dev_client, plan
):
    """A query waiting when the first task starts is answered while load_plan runs; that run's history replays without a divergence, plan found or not."""
    acts = FakeActivities(plans={"quick": make_plan(QUICK, name="quick")})
    resource = f"service/queried-{uuid.uuid4().hex[:6]}"
    episode = fired(resource, plan=plan)
    task_queue = f"test-{uuid.uuid4()}"
    handle = await send(dev_client, episode, task_queue=task_queue)
    # No worker yet: the query waits, and goes to the worker with the first workflow task.
    asked = asyncio.create_task(state(dev_client, resource))
    await asyncio.sleep(1)
    async with worker(dev_client, acts, task_queue=task_queue):
        answered = await asyncio.wait_for(asked, timeout=60)
        await until(
            dev_client,
            resource,
            lambda s: bool(s.episodes) and s.episodes[0].status in SETTLED and s.running is None,
        )
        history = await handle.fetch_history()
    result = await replay.HistoryReplayer().replay(history)
    assert answered.resource == resource
    assert result.ok, result.divergence
