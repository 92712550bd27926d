"""Resource and remediation workflows at volume, on the real Temporal dev server.

Activities are the recording stand-ins of ``fakes`` (the real ones are another issue's),
registered under the real activity names with the real ``activity_io`` types.
"""

import asyncio
import time
from datetime import timedelta

import pytest
from fakes import (
    FakeActivities,
    fired,
    make_plan,
    remediation_result,
    resolved,
    send,
    send_batch,
    until,
    worker,
)

from controller.domain import contract, resources
from controller.workflows import activity_io as aio
from controller.workflows import remediation_io as rio
from controller.workflows import resource_io as io

MANY_PLAN = """
cooldown: 1h
steps:
  - {id: restart, command: [systemctl, restart, web]}
escalation:
  - page: "{{ resource }} failing again within the hour"
"""


async def _paced(items, worker_count, action):
    """Run ``action`` on every item with at most ``worker_count`` in flight, each lane in order."""
    lanes = [items[index::worker_count] for index in range(worker_count)]

    async def lane(chunk):
        for item in chunk:
            await action(item)

    await asyncio.gather(*(lane(chunk) for chunk in lanes))


async def _run_ids(client, workflow_id, first_run_id):
    """Every run of a workflow from ``first_run_id``, following continue-as-new, with its event count."""
    runs = []
    run_id = first_run_id
    while run_id:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        events = [event async for event in handle.fetch_history_events()]
        runs.append((run_id, len(events)))
        last = events[-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.HasField("workflow_execution_continued_as_new_event_attributes")
            else None
        )
    return runs


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_ten_thousand_transitions_to_one_resource(dev_client):
    """10,000 transitions to one resource: every run stays under 10,000 events and the state survives each continue-as-new.

    They arrive as the dispatcher sends them: signal-with-start with batches of 20, one
    call after the other. The runs continue as new every 50 signals (the production
    default is 1,000), so the state crosses many runs.
    """
    resource = "service/busy"
    episodes = 5_000
    acts = FakeActivities(plans={"devfix": make_plan(MANY_PLAN, name="devfix")})
    fired_all = [
        fired(resource, plan="devfix" if index % 1000 == 0 else None, at=timedelta(seconds=index))
        for index in range(episodes)
    ]
    # Plan episodes stay open until the end, so each one's remediation runs to its end.
    plan_episodes = [transition for transition in fired_all if transition.remediation]
    batches = [
        [
            item
            for transition in fired_all[start : start + 10]
            for item in (
                (transition,) if transition.remediation else (transition, resolved(transition))
            )
        ]
        for start in range(0, episodes, 10)
    ]
    options = io.ResourceOptions(continue_as_new_after=50)
    began = time.monotonic()
    async with worker(dev_client, acts, max_cached_workflows=100, terminate=False) as running:
        first = await send_batch(
            dev_client, batches[0], task_queue=running.task_queue, options=options
        )
        await _paced(
            batches[1:],
            1,
            lambda batch: send_batch(
                dev_client, batch, task_queue=running.task_queue, options=options
            ),
        )
        plan_results = [await remediation_result(dev_client, item) for item in plan_episodes]
        await send_batch(
            dev_client,
            [resolved(item) for item in plan_episodes],
            task_queue=running.task_queue,
            options=options,
        )
        final = await until(
            dev_client,
            resource,
            lambda s: s.transitions_total == 2 * episodes and not s.episodes and s.running is None,
            timeout=120,
        )
    elapsed = time.monotonic() - began
    runs = await _run_ids(dev_client, first.id, first.first_execution_run_id)
    assert len(runs) >= 5
    assert max(count for _, count in runs) < 10_000
    assert final.runs == len(runs) - 1
    # The first plan episode restarted; the four later ones, each in a later run, found
    # the one-hour cooldown carried across continue-as-new and escalated instead.
    assert [result.outcome for result in plan_results] == [rio.Outcome.SUCCEEDED] + [
        rio.Outcome.ESCALATED
    ] * 4
    assert all("cooling down" in result.message for result in plan_results[1:])
    assert len(acts.named(aio.RUN_COMMAND)) == 1
    assert len(acts.named(aio.PAGE_TRIGGER)) == 4
    assert len(acts.named(aio.PAGE_RESOLVE)) == 4
    assert [cooldown.plan for cooldown in final.cooldowns] == ["devfix"]
    assert len(final.seen) == io.ResourceOptions().dedupe_window
    assert elapsed < 240, f"10,000 transitions took {elapsed:.0f} s"


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_two_hundred_resources_remediate_concurrently(tmpfs_dev_client):
    """200 resources each get an episode at once: every remediation runs, and 50 restarts are in progress at the same moment.

    Each restart waits until 50 run at once (or a minute passes), so remediations that
    queued behind one another would show a peak of 1. The 1,000-episode figure and its
    bottleneck are measured by bench/temporal_side.py, not here.
    """
    count, together = 200, 50
    acts = FakeActivities(
        plans={"bulk": make_plan("steps:\n  - {id: restart, command: [restart]}\n", name="bulk")},
        command_gate=together,
    )
    transitions = [fired(f"bulk/node-{index:04d}", plan="bulk") for index in range(count)]
    async with worker(
        tmpfs_dev_client, acts, max_cached_workflows=2 * count + 100, terminate=False
    ) as running:
        await _paced(
            transitions,
            64,
            lambda transition: send(tmpfs_dev_client, transition, task_queue=running.task_queue),
        )
        query = (
            f"WorkflowType = '{contract.REMEDIATION_WORKFLOW}' "
            "AND HomeostatResourceKind = 'bulk' AND ExecutionStatus = 'Completed'"
        )
        deadline = time.monotonic() + 240
        while (done := (await tmpfs_dev_client.count_workflows(query)).count) < count:
            assert time.monotonic() < deadline, f"only {done} of {count} remediations completed"
            await asyncio.sleep(1)
        last = f"bulk/node-{count - 1:04d}"
        sample = await until(tmpfs_dev_client, last, lambda s: s.running is None)
    restarted = {call.arg.context.resource for call in acts.named(aio.RUN_COMMAND)}
    assert len(restarted) == count
    assert sample.episodes[0].outcome is rio.Outcome.SUCCEEDED
    assert acts.peak_commands >= together, f"at most {acts.peak_commands} restarts ran at once"


async def test_continue_as_new_keeps_a_running_remediation(dev_client):
    """A run that continues as new while a remediation runs still hears its result."""
    plan = make_plan(
        "steps:\n  - {id: settle, wait: 3s}\n  - {id: restart, command: [x]}\n", name="slow"
    )
    acts = FakeActivities(plans={"slow": plan})
    resource = "service/can-running"
    options = io.ResourceOptions(continue_as_new_after=5)
    async with worker(dev_client, acts) as running:
        episode = fired(resource, plan="slow")
        first = await send(dev_client, episode, task_queue=running.task_queue, options=options)
        for index in range(1, 12):
            await send(
                dev_client,
                fired(resource, plan=None, rule=f"noise-{index}"),
                task_queue=running.task_queue,
                options=options,
            )
        result = await remediation_result(dev_client, episode)
        final = await until(
            dev_client,
            resource,
            lambda s: s.running is None and s.transitions_total == 12,
        )
    assert result.outcome is rio.Outcome.SUCCEEDED
    assert final.runs >= 1
    record = next(item for item in final.episodes if item.episode == episode.episode)
    assert record.outcome is rio.Outcome.SUCCEEDED
    assert first.first_execution_run_id != (await first.describe()).run_id
    assert resources.remediation_workflow_id(episode.episode).startswith("episode/")
