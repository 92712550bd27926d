"""The plan is loaded by a local activity in the resource workflow's first task: no round trip before the episode starts."""

from fakes import FakeActivities, fired, make_plan, remediation_result, send, until, worker
from temporalio.api.enums.v1 import EventType

from controller.operations import timeline
from controller.operations import timeline_model as tm
from controller.workflows import activity_io as aio
from controller.workflows import remediation_io as rio

QUICK_PLAN = "steps:\n  - {id: restart, command: [systemctl, restart, web]}\n"


async def test_the_episode_starts_in_the_same_workflow_task_that_loaded_its_plan(dev_client):
    """The resource history has no load_plan activity; the plan's marker and the child's start come from one task."""
    acts = FakeActivities(plans={"quick": make_plan(QUICK_PLAN, name="quick")})
    episode = fired("service/plan-local", plan="quick")
    async with worker(dev_client, acts) as running:
        handle = await send(dev_client, episode, task_queue=running.task_queue)
        result = await remediation_result(dev_client, episode)
        history = await handle.fetch_history()
    assert result.outcome is rio.Outcome.SUCCEEDED
    assert [call.name for call in acts.calls][:2] == [aio.LOAD_PLAN, aio.RUN_COMMAND]
    events = list(history.events)
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    assert aio.LOAD_PLAN not in scheduled
    [marker] = [
        e
        for e in events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]
    [child] = [
        e
        for e in events
        if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
    ]
    task = marker.marker_recorded_event_attributes.workflow_task_completed_event_id
    assert child.start_child_workflow_execution_initiated_event_attributes.workflow_task_completed_event_id == task


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
