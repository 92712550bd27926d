"""The resource workflow's own activity timeouts come from its options (settings), not constants."""

from datetime import timedelta

from fakes import fired, make_plan, remediation_result, resolved, send, until

from controller import assembly, settings
from controller.domain import resources
from controller.workflows import activity_io as aio
from controller.workflows import resource_io as io

PAGING_PLAN = """
steps:
  - {id: restart, command: [systemctl, restart, web]}
escalation:
  - page: "{{ resource }} still failing"
on_resolve: {resolve_page: true}
"""


async def _scheduled_timeouts(client, resource: str) -> dict[str, list[timedelta]]:
    """Start-to-close timeouts of the activities the resource workflow scheduled, by name."""
    handle = client.get_workflow_handle(resources.resource_workflow_id(resource))
    found: dict[str, list[timedelta]] = {}
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            attributes = event.activity_task_scheduled_event_attributes
            found.setdefault(attributes.activity_type.name, []).append(
                attributes.start_to_close_timeout.ToTimedelta()
            )
    return found


async def test_load_plan_and_page_resolve_take_their_timeouts_from_the_settings(ts):
    """With activities.load_plan_timeout 7s and activities.on_resolve_timeout 13s, the workflow schedules load_plan and page_resolve with exactly those timeouts."""
    configured = settings.Settings(
        activities=settings.ActivitiesSettings(
            load_plan_timeout=timedelta(seconds=7), on_resolve_timeout=timedelta(seconds=13)
        )
    )
    plan = "timeouts"
    ts.acts.plans[plan] = make_plan(PAGING_PLAN, name=plan)
    resource = "service/timeouts"
    ts.acts.command_exit[resource] = 1
    episode = fired(resource, plan=plan)
    options = assembly.resource_options(configured)
    await send(ts.client, episode, task_queue=ts.task_queue, options=options)
    await remediation_result(ts.client, episode, ts.env)
    await send(ts.client, resolved(episode), task_queue=ts.task_queue, options=options)
    await until(ts.client, resource, lambda s: s.phase is io.Phase.HEALTHY)
    assert len(ts.acts.named(aio.PAGE_RESOLVE, resource)) == 1
    # load_plan is a local activity: its timeout is in no history event, only in its call.
    loads = [call.timeout for call in ts.acts.named(aio.LOAD_PLAN) if call.arg.name == plan]
    assert loads == [timedelta(seconds=7)]
    timeouts = await _scheduled_timeouts(ts.client, resource)
    assert timeouts[aio.PAGE_RESOLVE] == [timedelta(seconds=13)]
