"""An episode's remediation workflow is started by a local activity, eagerly, not as a child: at most once, and its end always reaches the resource."""

import uuid
from dataclasses import replace
from datetime import timedelta

from fakes import FakeActivities, fired, make_plan, send, until, worker
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner

from controller.activities import episodes
from controller.domain import resources
from controller.workflows import activity_io as aio
from controller.workflows import remediation_io as rio
from controller.workflows import resource_io as io
from controller.workflows import steps

QUICK = "steps:\n  - {id: restart, command: [systemctl, restart, web]}\n"
SLOW = "steps:\n  - {id: settle, wait: 1h}\n  - {id: restart, command: [systemctl, restart, web]}\n"


def _start(resource: str, started_by: str) -> rio.StartEpisode:
    episode = fired(resource, plan="quick")
    return rio.StartEpisode(
        request=rio.RemediationInput(
            episode=episode.episode,
            resource=episode.resource,
            fired=episode,
            plan=make_plan(QUICK, name="quick"),
            report_result=True,
        ),
        workflow_id=resources.remediation_workflow_id(episode.episode),
        started_by=started_by,
    )


async def test_a_retried_start_takes_its_own_episode_and_never_starts_a_second_run(dev_client):
    """The same decision started twice is one run, answered 'started' both times; another run's decision is answered 'exists'."""
    start = _start(f"service/start-{uuid.uuid4().hex[:6]}", started_by="run-a")
    env = ActivityEnvironment(client=dev_client)
    first = await env.run(episodes.start_episode, start)
    again = await env.run(episodes.start_episode, start)
    other = await env.run(episodes.start_episode, replace(start, started_by="run-b"))
    handle = dev_client.get_workflow_handle(start.workflow_id)
    await handle.terminate("test over")
    closed = await env.run(episodes.start_episode, start)
    runs = [item async for item in dev_client.list_workflows(f"WorkflowId = '{start.workflow_id}'")]
    assert (first.outcome, again.outcome, other.outcome) == (
        rio.StartOutcome.STARTED,
        rio.StartOutcome.STARTED,
        rio.StartOutcome.EXISTS,
    )
    assert closed.outcome is rio.StartOutcome.STARTED  # a closed run is never started again
    assert len({item.run_id for item in runs}) <= 1
    assert (await handle.describe()).status is WorkflowExecutionStatus.TERMINATED
    assert first.plan == "quick"
    assert first.workflow_id == start.workflow_id


async def test_an_episode_remediated_by_an_earlier_resource_run_is_not_remediated_again(dev_client):
    """After the resource workflow is terminated and the same episode fires again, its plan does not run a second time."""
    acts = FakeActivities(plans={"quick": make_plan(QUICK, name="quick")})
    resource = "service/remediated-before"
    episode = fired(resource, plan="quick")
    async with worker(dev_client, acts) as running:
        handle = await send(dev_client, episode, task_queue=running.task_queue)
        await until(dev_client, resource, lambda s: s.running is None and bool(s.episodes))
        await handle.terminate("state lost")
        await send(dev_client, episode, task_queue=running.task_queue)
        again = await until(
            dev_client,
            resource,
            lambda s: bool(s.episodes) and s.episodes[0].status is io.EpisodeStatus.DONE,
        )
    assert len(acts.named(aio.RUN_COMMAND, resource)) == 1
    assert "already remediated by an earlier run" in again.episodes[0].note


async def test_a_cancelled_remediation_frees_its_resource_at_once(dev_client):
    """Cancelling the episode's workflow (as from the Web UI) reports it failed to the resource, which runs the next episode."""
    acts = FakeActivities(
        plans={"slow": make_plan(SLOW, name="slow"), "quick": make_plan(QUICK, name="quick")}
    )
    resource = "service/cancelled-episode"
    first = fired(resource, plan="slow")
    second = fired(resource, plan="quick", rule="disk-full", at=timedelta(seconds=1))
    async with worker(dev_client, acts) as running:
        await send(dev_client, first, task_queue=running.task_queue)
        await until(dev_client, resource, lambda s: s.running is not None)
        await send(dev_client, second, task_queue=running.task_queue)
        await dev_client.get_workflow_handle(
            resources.remediation_workflow_id(first.episode)
        ).cancel()
        final = await until(
            dev_client,
            resource,
            lambda s: s.running is None and len(acts.named(aio.RUN_COMMAND)) == 1,
        )
    cancelled = next(item for item in final.episodes if item.episode == first.episode)
    assert cancelled.outcome is rio.Outcome.FAILED
    assert "cancelled" in cancelled.note
    assert [call.arg.context.episode for call in acts.named(aio.RUN_COMMAND)] == [second.episode]


async def _broken_command(env, step, path, item, results):
    """A command step whose workflow code fails the remediation workflow itself."""
    raise ApplicationError("the command action broke", non_retryable=True)


async def test_a_failed_remediation_frees_its_resource_at_once(dev_client, monkeypatch):
    """A remediation workflow that fails (not one of its steps: the workflow) reports it failed to the resource, which is free at once, not hours later."""
    monkeypatch.setitem(steps._ACTIONS, "command", _broken_command)
    acts = FakeActivities(plans={"quick": make_plan(QUICK, name="quick")})
    resource = f"service/failed-episode-{uuid.uuid4().hex[:6]}"
    episode = fired(resource, plan="quick")
    async with worker(dev_client, acts, workflow_runner=UnsandboxedWorkflowRunner()) as running:
        await send(dev_client, episode, task_queue=running.task_queue)
        final = await until(
            dev_client,
            resource,
            lambda s: bool(s.episodes) and s.episodes[0].outcome is not None,
        )
        handle = dev_client.get_workflow_handle(resources.remediation_workflow_id(episode.episode))
        described = await handle.describe()
    assert described.status is WorkflowExecutionStatus.FAILED
    assert final.running is None
    assert final.episodes[0].outcome is rio.Outcome.FAILED
    assert "the remediation workflow failed: the command action broke" in final.episodes[0].note
