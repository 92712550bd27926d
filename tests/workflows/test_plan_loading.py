"""The plan is loaded, and the episode started, by local activities in the resource workflow's first task: no round trip before the episode starts."""

import json

from fakes import FakeActivities, fired, make_plan, remediation_result, send, until, worker
from temporalio.api.enums.v1 import EventType

from controller.domain import resources
from controller.operations import timeline
from controller.operations import timeline_model as tm
from controller.workflows import activity_io as aio
from controller.workflows import remediation_io as rio

QUICK_PLAN = "steps:\n  - {id: restart, command: [systemctl, restart, web]}\n"


async def test_the_episode_starts_in_the_same_workflow_task_that_loaded_its_plan(dev_client):
    """The resource history has no activity and no child: the plan's marker and the episode's start marker come from one task."""
    acts = FakeActivities(plans={"quick": make_plan(QUICK_PLAN, name="quick")})
    episode = fired("service/plan-local", plan="quick")
    async with worker(dev_client, acts) as running:
        handle = await send(dev_client, episode, task_queue=running.task_queue)
        result = await remediation_result(dev_client, episode)
        history = await handle.fetch_history()
        described = await dev_client.get_workflow_handle(
            resources.remediation_workflow_id(episode.episode)
        ).describe()
    assert result.outcome is rio.Outcome.SUCCEEDED
    assert [call.name for call in acts.calls][:2] == [aio.LOAD_PLAN, aio.RUN_COMMAND]
    events = list(history.events)
    kinds = {EventType.Name(e.event_type) for e in events}
    assert "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED" not in kinds
    assert "EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED" not in kinds
    markers = [
        e.marker_recorded_event_attributes
        for e in events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]
    names = [
        json.loads(marker.details["data"].payloads[0].data)["activity_type"] for marker in markers
    ]
    assert names == [aio.LOAD_PLAN, aio.START_EPISODE]
    assert len({marker.workflow_task_completed_event_id for marker in markers}) == 1
    assert described.parent_id is None
    assert described.search_attributes["HomeostatResource"] == ["service/plan-local"]
    entries = timeline.entries(handle.id, events).entries
    [started] = [e for e in entries if e.kind is tm.EntryKind.REMEDIATION and e.status == "started"]
    assert started.title == "remediation started: plan quick"
    assert started.episode == episode.episode


async def test_a_plan_that_cannot_be_loaded_is_a_problem_on_the_resource_timeline(dev_client):
    """The local activity's answer names the missing plan; the timeline shows it as a failed problem entry."""
    acts = FakeActivities(plans={})
    episode = fired("service/plan-missing", plan="nowhere")
    async with worker(dev_client, acts) as running:
        handle = await send(dev_client, episode, task_queue=running.task_queue)
        state = await until(dev_client, "service/plan-missing", lambda s: bool(s.episodes))
        history = await handle.fetch_history()
    assert "no such plan" in state.episodes[0].note
    entries = timeline.entries(handle.id, history.events).entries
    titles = {entry.title: entry for entry in entries if entry.kind is tm.EntryKind.PROBLEM}
    problem = titles["plan nowhere could not be loaded: no such plan"]
    assert problem.status == "failed"
