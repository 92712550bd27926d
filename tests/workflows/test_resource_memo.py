"""The resource workflow's memo, which lists and views read without a worker, follows its state and survives continue-as-new."""

from datetime import UTC, datetime, timedelta

from fakes import FakeActivities, fired, resolved, send, until, worker

from controller.domain import resources
from controller.operations import links, views
from controller.workflows import resource_io as io


async def _view(client, resource):
    return await views.show_resource(
        client, resources.ResourceKey(resource), links=links.Links(), now=datetime.now(UTC)
    )


async def test_the_memo_follows_the_state_across_continue_as_new(dev_client):
    """Three open episodes and a silence show in the view; `since` keeps the time the phase began after the run continued as new."""
    resource = "service/memo-carry"
    options = io.ResourceOptions(continue_as_new_after=3)
    acts = FakeActivities()
    async with worker(dev_client, acts) as running:
        queue = running.task_queue
        first = fired(resource, plan=None, rule="first")
        handle = await send(dev_client, first, task_queue=queue, options=options)
        await until(dev_client, resource, lambda s: len(s.episodes) == 1)
        began = (await _view(dev_client, resource)).since
        for index in range(4):
            noise = fired(
                resource, plan=None, rule=f"noise-{index}", at=timedelta(minutes=index + 1)
            )
            await send(dev_client, noise, task_queue=queue, options=options)
            await send(dev_client, resolved(noise), task_queue=queue, options=options)
        await until(dev_client, resource, lambda s: s.runs >= 1 and s.transitions_total == 9)
        view = await _view(dev_client, resource)
        assert view.phase is io.Phase.FIRING
        assert view.since == began
        assert view.open_episodes == 1
        assert [episode.rule for episode in view.episodes] == ["first"]
        assert [outcome.rule for outcome in view.last_outcomes] == [
            "noise-3",
            "noise-2",
            "noise-1",
            "noise-0",
        ]
        assert (await handle.describe()).run_id != handle.first_execution_run_id
