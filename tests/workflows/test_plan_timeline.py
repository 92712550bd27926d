"""A plan with every kind of step, end to end on the dev server; its histories feed the replay test.

Activities are the recording stand-ins of ``fakes`` (the real ones are another issue's),
registered under the real activity names with the real ``activity_io`` types. With
``HOMEOSTAT_RECORD_HISTORIES=1`` the test writes the workflows' histories to
``histories/``, where ``test_replay.py`` replays them.
"""

import os
from datetime import timedelta
from pathlib import Path

from fakes import (
    FakeActivities,
    fired,
    make_plan,
    remediation_result,
    resolved,
    send,
    until,
    worker,
)

from controller.domain import contract, resources
from controller.workflows import activity_io as aio
from controller.workflows import remediation_io as rio
from controller.workflows import resource_io as io

HISTORIES = Path(__file__).with_name("histories")

FULL_PLAN = """
variables: {service: web}
steps:
  - id: approval
    approve: {message: "Restart {{ vars.service }} on {{ labels.instance }}?", deadline: 10m}
  - id: per_host
    for_each:
      hosts: web
      concurrency: 2
      min_success: 0.5
      steps:
        - id: restart
          playbook:
            path: restart_service.yml
            hosts: ["{{ item }}"]
            vars: {service: "{{ vars.service }}", instance: "{{ labels.instance }}"}
  - id: notify
    http:
      method: POST
      url: "https://hooks.example/{{ labels.instance }}"
      body: {resource: "{{ resource }}", instance: "{{ labels.instance }}"}
  - id: check
    verify: {promql: 'up{instance="{{ labels.instance }}"} == 1', within: 1m, interval: 5s}
  - id: scale_out
    when: "steps.check.ok && steps.per_host.output.succeeded >= 2"
    scale:
      target: {name: web, actuator: command, argv: [scale-web]}
      policy: {metric: cpu, target: 0.6, max_replicas: 10}
  - id: skipped
    when: 'labels.env == "prod"'
    command: [never]
  - id: status
    command: {argv: [systemctl, status, web], env: {INSTANCE: "{{ labels.instance }}"}}
escalation:
  - page: "{{ vars.service }} on {{ labels.instance }} needs a human"
"""
HOSTILE = 'web-1"; rm -rf / #{{ x }}'


async def _record(client, workflow_id: str, name: str) -> None:
    if os.environ.get("HOMEOSTAT_RECORD_HISTORIES") != "1":
        return
    handle = client.get_workflow_handle(workflow_id)
    history = await handle.fetch_history()
    (HISTORIES / f"{name}.json").write_text(history.to_json())


async def test_full_plan_timeline_passes_values_as_data(dev_client):
    """Approval, fan-out, HTTP, verify, HPA scaling, a skipped step and a command run in order, with label values only as data."""
    acts = FakeActivities(
        plans={"full": make_plan(FULL_PLAN, name="full")},
        failing_hosts={"h3"},
        replicas=4,
        metric=0.9,
    )
    resource = "service/timeline"
    episode = fired(resource, plan="full", labels={"instance": HOSTILE, "env": "staging"})
    async with worker(dev_client, acts, terminate=False) as running:
        handle = await send(dev_client, episode, task_queue=running.task_queue)
        await until(dev_client, resource, lambda s: s.phase is io.Phase.AWAITING_APPROVAL)
        await handle.execute_update(
            contract.UPDATE_APPROVE,
            io.DecisionRequest(episode=episode.episode, by="alice"),
            result_type=io.DecisionAck,
        )
        result = await remediation_result(dev_client, episode)
        await send(dev_client, resolved(episode), task_queue=running.task_queue)
        final = await until(dev_client, resource, lambda s: not s.episodes)
    assert result.outcome is rio.Outcome.SUCCEEDED
    timeline = [(r.step, r.outcome.value) for r in result.steps]
    # Two hosts at a time: the order in which they finish is theirs.
    assert sorted(timeline[1:4]) == [
        ("per_host/h1/restart", "succeeded"),
        ("per_host/h2/restart", "succeeded"),
        ("per_host/h3/restart", "failed"),
    ]
    assert timeline[:1] + timeline[4:] == [
        ("approval", "approved"),
        ("per_host", "succeeded"),
        ("notify", "succeeded"),
        ("check", "succeeded"),
        ("scale_out", "succeeded"),
        ("skipped", "skipped"),
        ("status", "succeeded"),
    ]
    book = next(c for c in acts.named(aio.RUN_PLAYBOOK) if c.arg.hosts == ("h1",))
    assert book.arg.extra_vars["instance"] == HOSTILE
    assert book.arg.extra_vars["homeostat_labels"]["instance"] == HOSTILE
    [call] = acts.named(aio.HTTP_CALL)
    assert (
        call.arg.request.url
        == "https://hooks.example/web-1%22%3B%20rm%20-rf%20%2F%20%23%7B%7B%20x%20%7D%7D"
    )
    assert call.arg.request.json_body == {"resource": resource, "instance": HOSTILE}
    [verify] = acts.named(aio.VERIFY_PROMQL)
    assert verify.arg.query == 'up{instance="web-1\\"; rm -rf / #{{ x }}"} == 1'
    [scaled] = acts.named(aio.SCALE)
    assert scaled.arg.replicas == 6  # ceil(4 x 0.9 / 0.6)
    [status] = acts.named(aio.RUN_COMMAND)
    assert status.arg.argv == ("systemctl", "status", "web")
    assert status.arg.env == {"INSTANCE": HOSTILE}
    assert status.arg.variables["instance"] == HOSTILE
    assert final.outcomes[-1].outcome is rio.Outcome.SUCCEEDED
    assert final.scaler.changes[-1].after == 6
    # Recorded since episodes start eagerly (``start_episode``, not a child workflow);
    # ``remediation_full``, ``resource_full`` and ``resource_full_local_plan`` are the same
    # run recorded before, kept to prove histories of every kind replay.
    await _record(
        dev_client, resources.remediation_workflow_id(episode.episode), "remediation_full_eager"
    )
    await _record(
        dev_client, resources.resource_workflow_id(episode.resource), "resource_full_eager"
    )


LADDER_PLAN = """
cooldown: 1h
steps:
  - {id: restart, command: [systemctl, restart, web]}
  - {id: check, verify: {promql: 'up == 1', within: 1s, interval: 1s}}
escalation:
  - page: "{{ resource }} still down"
  - after: 1s
    ticket: {project: OPS, summary: "{{ resource }} needs a human"}
"""


async def test_escalation_cooldown_and_continue_as_new_timeline(dev_client):
    """A failed verification climbs the ladder; the next episode, after a continue-as-new, escalates from cooldown."""
    acts = FakeActivities(plans={"ladder": make_plan(LADDER_PLAN, name="ladder")}, verify_ok=False)
    resource = "service/ladder-timeline"
    options = io.ResourceOptions(continue_as_new_after=4)
    async with worker(dev_client, acts, terminate=False) as running:
        queue = running.task_queue
        first = fired(resource, plan="ladder")
        handle = await send(dev_client, first, task_queue=queue, options=options)
        escalated = await remediation_result(dev_client, first)
        await send(dev_client, resolved(first), task_queue=queue, options=options)
        for index in range(3):
            noise = fired(resource, plan=None, rule=f"noise-{index}")
            await send(dev_client, noise, task_queue=queue, options=options)
            await send(dev_client, resolved(noise), task_queue=queue, options=options)
        second = fired(resource, plan="ladder", at=timedelta(minutes=5))
        await send(dev_client, second, task_queue=queue, options=options)
        cooled = await remediation_result(dev_client, second)
        await send(dev_client, resolved(second), task_queue=queue, options=options)
        final = await until(
            dev_client, resource, lambda s: not s.episodes and s.transitions_total == 10
        )
    assert escalated.outcome is rio.Outcome.ESCALATED
    assert escalated.escalation_level == 2
    assert cooled.outcome is rio.Outcome.ESCALATED
    assert "cooling down" in cooled.message
    assert final.runs >= 1
    assert len(acts.named(aio.RUN_COMMAND)) == 1
    assert [c.arg.key for c in acts.named(aio.TICKET_RESOLVE)] == ["OPS-1", "OPS-1"]
    await _record(
        dev_client, resources.remediation_workflow_id(first.episode), "remediation_ladder_eager"
    )
    await _record(
        dev_client, resources.remediation_workflow_id(second.episode), "remediation_cooldown_eager"
    )
    first_run = dev_client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
    if os.environ.get("HOMEOSTAT_RECORD_HISTORIES") == "1":
        history = await first_run.fetch_history()
        (HISTORIES / "resource_continued_as_new_eager.json").write_text(history.to_json())
