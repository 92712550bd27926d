"""The open episodes a restarted ingest reads from visibility: what the resource workflows' memos list, group_by conditions included."""

import asyncio
import dataclasses
import time
import uuid
from datetime import timedelta

from fakes import FakeActivities, fired, resolved, send, send_batch, until, worker

from controller.domain import transitions
from controller.operations import open_episodes
from controller.workflows import resource_memo


async def _open_of(client, resource, *, count):
    """What visibility lists for ``resource`` once it lists ``count`` episodes (it lags a little)."""
    deadline = time.monotonic() + 30
    while True:
        found = await open_episodes.read(client)
        mine = [episode for episode in found.episodes if episode.resource == resource]
        if len(mine) == count or time.monotonic() > deadline:
            return found, mine
        await asyncio.sleep(0.2)


async def test_visibility_lists_the_unresolved_episodes_with_their_conditions(dev_client):
    """A workflow's open episode is read back with its rule, id, start and the group_by values that fit in the memo, without a query; once resolved it is no longer listed."""
    resource = f"app/shop-{uuid.uuid4().hex[:6]}"
    crashing = dataclasses.replace(
        fired(resource, plan=None, rule="PodCrashing"),
        groups=(
            (("namespace", "prod"),),
            (("namespace", "staging"),),
            (("namespace", "x" * resource_memo.GROUPS_CHARS),),
        ),
    )
    async with worker(dev_client, FakeActivities()) as running:
        await send(dev_client, crashing, task_queue=running.task_queue)
        await until(dev_client, resource, lambda s: len(s.episodes) == 1)
        _, mine = await _open_of(dev_client, resource, count=1)
        assert mine == [
            transitions.OpenEpisode(
                rule="PodCrashing",
                resource=crashing.resource,
                episode=crashing.episode,
                started_at=crashing.started_at,
                groups=crashing.groups[:2],
            )
        ]
        await send(dev_client, resolved(crashing), task_queue=running.task_queue)
        await until(dev_client, resource, lambda s: not s.episodes)
        _, mine = await _open_of(dev_client, resource, count=0)
        assert mine == []


async def test_episodes_beyond_what_the_memo_lists_are_counted(dev_client):
    """With more open episodes than a memo lists, the newest are read and the rest counted as unlisted."""
    resource = f"host/busy-{uuid.uuid4().hex[:6]}"
    kept = resource_memo.EPISODES_KEPT
    batch = [
        fired(resource, plan=None, rule=f"Rule{n}", at=timedelta(seconds=n))
        for n in range(kept + 2)
    ]
    async with worker(dev_client, FakeActivities()) as running:
        await send_batch(dev_client, batch, task_queue=running.task_queue)
        await until(dev_client, resource, lambda s: len(s.episodes) == kept + 2)
        found, mine = await _open_of(dev_client, resource, count=kept)
        assert sorted(episode.rule for episode in mine) == sorted(
            f"Rule{n}" for n in range(2, kept + 2)
        )
        assert found.unlisted >= 2
