"""Resource and remediation workflows on the time-skipping server: hours pass in seconds.

Activities are the recording stand-ins of ``fakes`` (the real ones are another issue's),
registered under the real activity names with the real ``activity_io`` types.
"""

import time
from datetime import UTC, datetime, timedelta

from fakes import fired, make_plan, remediation_result, resolved, send, terminate_started, until
from temporalio.common import SearchAttributeKey

from controller.domain import contract, resources
from controller.workflows import activity_io as aio
from controller.workflows import remediation_io as rio
from controller.workflows import resource_io as io

COOLDOWN_PLAN = """
cooldown: 5m
steps:
  - {id: restart, command: [systemctl, restart, web]}
escalation:
  - page: "{{ labels.instance }} is failing again during the cooldown"
"""


async def _send(ts, transition, **options):
    return await send(ts.client, transition, task_queue=ts.task_queue, **options)


async def _result(ts, transition, *, skip: bool = False) -> rio.RemediationResult:
    """The remediation's result; with ``skip`` the server skips time while waiting.

    Without it no time passes, even where a timer is due: a test that checks what
    happens *within* a cooldown or budget window must not let the server skip past it.
    """
    return await remediation_result(ts.client, transition, ts.env if skip else None)


def _plan(ts, name: str, text: str) -> str:
    ts.acts.plans[name] = make_plan(text, name=name)
    return name


async def test_episode_in_cooldown_escalates_and_cooldown_passes_in_seconds(ts):
    """A second episode within the 5-minute cooldown pages instead of restarting; after it, a third restarts."""
    plan = _plan(ts, "cooldown", COOLDOWN_PLAN)
    resource = "service/cool"
    began = time.monotonic()
    first = fired(resource, plan=plan, at=timedelta(0))
    await _send(ts, first)
    assert (await _result(ts, first)).outcome is rio.Outcome.SUCCEEDED
    await _send(ts, resolved(first))

    second = fired(resource, plan=plan, at=timedelta(minutes=1))
    await _send(ts, second)
    escalated = await _result(ts, second)
    assert escalated.outcome is rio.Outcome.ESCALATED
    assert "cooling down" in escalated.message
    assert ts.acts.steps(aio.RUN_COMMAND, resource) == ["restart"]
    [page] = ts.acts.named(aio.PAGE_TRIGGER, resource)
    assert page.arg.dedup_key == aio.page_dedup_key(second.episode)
    assert page.arg.summary == "web-1 is failing again during the cooldown"
    await _send(ts, resolved(second))
    await until(ts.client, resource, lambda s: not s.episodes)
    assert [c.arg.dedup_key for c in ts.acts.named(aio.PAGE_RESOLVE, resource)] == [
        page.arg.dedup_key
    ]

    await ts.env.sleep(timedelta(minutes=5))
    third = fired(resource, plan=plan, at=timedelta(minutes=7))
    await _send(ts, third)
    assert (await _result(ts, third)).outcome is rio.Outcome.SUCCEEDED
    assert ts.acts.steps(aio.RUN_COMMAND, resource) == ["restart", "restart"]
    assert time.monotonic() - began < 30


APPROVAL_PLAN = """
steps:
  - id: approval
    approve: {message: "Restart {{ labels.instance }}?", deadline: 1h, on_timeout: escalate}
  - {id: restart, command: [systemctl, restart, web]}
escalation:
  - page: nobody approved the restart
"""


async def test_approval_deadline_of_an_hour_passes_in_seconds_and_escalates(ts):
    """Nobody answers: after the 1-hour deadline the plan escalates and never restarts."""
    plan = _plan(ts, "approval", APPROVAL_PLAN)
    resource = "service/approve-timeout"
    began = time.monotonic()
    episode = fired(resource, plan=plan)
    await _send(ts, episode)
    result = await _result(ts, episode, skip=True)
    assert time.monotonic() - began < 20
    assert result.outcome is rio.Outcome.ESCALATED
    approval = result.steps[0]
    assert approval.outcome is rio.StepOutcome.TIMED_OUT
    assert approval.finished_at - approval.started_at >= timedelta(hours=1)
    assert ts.acts.named(aio.RUN_COMMAND, resource) == []
    assert len(ts.acts.named(aio.PAGE_TRIGGER, resource)) == 1


async def test_approve_and_deny_through_the_resource_workflow(ts):
    """An approve update lets the restart run; a deny update stops the plan without escalating."""
    plan = _plan(ts, "approval", APPROVAL_PLAN)
    resource = "service/approve"
    first = fired(resource, plan=plan)
    handle = await _send(ts, first)
    waiting = await until(ts.client, resource, lambda s: s.phase is io.Phase.AWAITING_APPROVAL)
    assert waiting.running is not None
    assert waiting.running.episode == first.episode
    ack = await handle.execute_update(
        contract.UPDATE_APPROVE,
        io.DecisionRequest(episode=first.episode, by="alice", comment="go"),
        result_type=io.DecisionAck,
    )
    assert ack.workflow_id == resources.remediation_workflow_id(first.episode)
    approved = await _result(ts, first)
    assert approved.outcome is rio.Outcome.SUCCEEDED
    assert approved.steps[0].outcome is rio.StepOutcome.APPROVED
    assert approved.steps[0].output["by"] == "alice"
    assert ts.acts.steps(aio.RUN_COMMAND, resource) == ["restart"]

    second = fired(resource, plan=plan, at=timedelta(minutes=5))
    await _send(ts, second)
    await until(ts.client, resource, lambda s: s.phase is io.Phase.AWAITING_APPROVAL)
    await handle.execute_update(
        contract.UPDATE_DENY,
        io.DecisionRequest(episode=second.episode, by="bob"),
        result_type=io.DecisionAck,
    )
    denied = await _result(ts, second)
    assert denied.outcome is rio.Outcome.DENIED
    assert ts.acts.steps(aio.RUN_COMMAND, resource) == ["restart"]
    assert ts.acts.named(aio.PAGE_TRIGGER, resource) == []


BUDGET_PLAN = """
budget: {runs: 3, per: 1h}
steps:
  - {id: restart, command: [systemctl, restart, web]}
escalation:
  - page: "restart budget used up on {{ resource }}"
"""


async def test_budget_of_three_per_hour_stops_the_fourth_run_and_pages(ts):
    """Three restarts run; the fourth episode within the hour pages instead; an hour later restarts resume."""
    plan = _plan(ts, "budget", BUDGET_PLAN)
    resource = "service/budget"
    outcomes = []
    for minute in range(4):
        episode = fired(resource, plan=plan, at=timedelta(minutes=minute))
        await _send(ts, episode)
        outcomes.append((await _result(ts, episode)).outcome)
        await _send(ts, resolved(episode))
    assert outcomes == [rio.Outcome.SUCCEEDED] * 3 + [rio.Outcome.ESCALATED]
    assert len(ts.acts.named(aio.RUN_COMMAND, resource)) == 3
    [page] = ts.acts.named(aio.PAGE_TRIGGER, resource)
    assert page.arg.summary == f"restart budget used up on {resource}"
    current = await until(ts.client, resource, lambda s: not s.episodes)
    assert len(current.budget) == 3

    await ts.env.sleep(timedelta(hours=1))
    later = fired(resource, plan=plan, at=timedelta(hours=2))
    await _send(ts, later)
    assert (await _result(ts, later)).outcome is rio.Outcome.SUCCEEDED
    assert len(ts.acts.named(aio.RUN_COMMAND, resource)) == 4


LADDER_PLAN = """
steps:
  - {id: restart, command: [systemctl, restart, web]}
escalation:
  - page: "{{ resource }} still failing"
  - after: 30m
    ticket: {project: OPS, summary: "{{ resource }} needs a human"}
on_resolve: {resolve_page: true, ticket: resolve}
"""


async def test_failed_remediation_climbs_the_ladder_and_resolve_cleans_up(ts):
    """A failed restart pages, 30 minutes later opens a ticket; the resolve resolves both."""
    plan = _plan(ts, "ladder", LADDER_PLAN)
    resource = "service/ladder"
    ts.acts.command_exit[resource] = 1
    episode = fired(resource, plan=plan)
    await _send(ts, episode)
    result = await _result(ts, episode, skip=True)
    assert result.outcome is rio.Outcome.ESCALATED
    assert result.escalation_level == 2
    assert [record.step for record in result.steps] == ["restart", "escalation_1", "escalation_2"]
    assert result.steps[0].output["exit_code"] == 1
    assert result.steps[2].started_at - result.steps[1].finished_at >= timedelta(minutes=30)
    current = await until(ts.client, resource, lambda s: s.phase is io.Phase.ESCALATED)
    assert current.episodes[0].ticket_key == "OPS-1"
    await _send(ts, resolved(episode))
    await until(ts.client, resource, lambda s: s.phase is io.Phase.HEALTHY)
    assert [c.arg.dedup_key for c in ts.acts.named(aio.PAGE_RESOLVE, resource)] == [
        aio.page_dedup_key(episode.episode)
    ]
    [ticket] = ts.acts.named(aio.TICKET_RESOLVE, resource)
    assert ticket.arg.key == "OPS-1"
    [created] = ts.acts.named(aio.TICKET_CREATE, resource)
    assert created.arg.episode_label == aio.ticket_label(episode.episode)


ROOT_CAUSE_PLAN = """
steps:
  - {id: restart, command: [systemctl, restart, web]}
escalation:
  - ticket: {project: OPS, summary: "web does not restart"}
"""


async def test_the_result_names_the_failed_step_first_when_the_ladder_fails_too(ts):
    """A failed step then a failing ticket rung: the message says what failed first, then the rung."""
    plan = _plan(ts, "root-cause", ROOT_CAUSE_PLAN)
    resource = "service/root-cause"
    ts.acts.command_exit[resource] = 1
    ts.acts.ticket_error = "ticketing is not configured (no Jira URL)"
    try:
        episode = fired(resource, plan=plan)
        await _send(ts, episode)
        result = await _result(ts, episode, skip=True)
    finally:
        ts.acts.ticket_error = ""
    assert result.outcome is rio.Outcome.ESCALATED
    assert result.message == (
        "escalated at restart: systemctl exited with 1; then escalation_1 failed too: "
        "PermanentError: ticketing is not configured (no Jira URL)"
    )


async def test_resolve_during_the_ladder_stops_it(ts):
    """When the episode resolves while the ladder waits, no ticket is opened."""
    plan = _plan(ts, "ladder", LADDER_PLAN)
    resource = "service/ladder-stop"
    ts.acts.command_exit[resource] = 1
    episode = fired(resource, plan=plan)
    await _send(ts, episode)
    await until(ts.client, resource, lambda s: s.phase is io.Phase.ESCALATED)
    await until(ts.client, resource, lambda _: bool(ts.acts.named(aio.PAGE_TRIGGER, resource)))
    await _send(ts, resolved(episode))
    result = await _result(ts, episode, skip=True)
    await until(ts.client, resource, lambda s: not s.episodes)
    assert result.escalation_level == 1
    assert ts.acts.named(aio.TICKET_CREATE, resource) == []
    assert len(ts.acts.named(aio.PAGE_RESOLVE, resource)) == 1


QUEUE_PLAN = """
concurrency: {concurrency}
steps:
  - {{id: settle, wait: 10m}}
  - {{id: restart, command: [systemctl, restart, web]}}
"""


async def test_concurrency_queue_merge_skip(ts):
    """A second episode while one runs waits (queue), joins (merge) or is dropped (skip)."""
    statuses = {}
    for mode in ("queue", "merge", "skip"):
        plan = _plan(ts, f"conc-{mode}", QUEUE_PLAN.format(concurrency=mode))
        resource = f"service/conc-{mode}"
        first = fired(resource, plan=plan)
        second = fired(resource, plan=plan, rule="mem-high")
        await _send(ts, first)
        await until(ts.client, resource, lambda s: s.running is not None)
        await _send(ts, second)
        current = await until(ts.client, resource, lambda s: len(s.episodes) == 2)
        statuses[mode] = current.episodes[1].status
        await _result(ts, first, skip=True)
        expected_runs = 2 if mode == "queue" else 1
        if mode == "queue":
            assert (await _result(ts, second, skip=True)).outcome is rio.Outcome.SUCCEEDED
        assert len(ts.acts.named(aio.RUN_COMMAND, resource)) == expected_runs
    assert statuses == {
        "queue": io.EpisodeStatus.QUEUED,
        "merge": io.EpisodeStatus.MERGED,
        "skip": io.EpisodeStatus.SKIPPED,
    }


async def test_duplicates_are_ignored_and_silence_records_only(ts):
    """A transition sent three times counts once; while silenced an episode is only recorded."""
    plan = _plan(ts, "cooldown", COOLDOWN_PLAN)
    resource = "service/silent"
    phase = SearchAttributeKey.for_keyword("HomeostatPhase")
    noise = fired(resource, plan=None)
    for _ in range(3):
        handle = await _send(ts, noise)
    await until(ts.client, resource, lambda s: s.transitions_total == 1)
    silenced = await handle.execute_update(
        contract.UPDATE_SILENCE,
        io.SilenceRequest(
            until=datetime.now(UTC) + timedelta(days=1), by="carol", reason="maintenance"
        ),
        result_type=io.ResourceState,
    )
    assert silenced.phase is io.Phase.SILENCED
    episode = fired(resource, plan=plan, at=timedelta(minutes=1))
    await _send(ts, episode)
    current = await until(ts.client, resource, lambda s: len(s.episodes) == 2)
    assert current.episodes[1].status is io.EpisodeStatus.SUPPRESSED
    assert "by carol: maintenance" in current.episodes[1].note
    assert (await handle.describe()).typed_search_attributes.get(phase) == "silenced"
    await handle.execute_update(
        contract.UPDATE_UNSILENCE, io.OperatorRequest(by="carol"), result_type=io.ResourceState
    )
    await until(ts.client, resource, lambda s: s.phase is io.Phase.FIRING)
    assert ts.acts.about(resource) == []


IDLE_PLAN = """
cooldown: 2h
budget: {runs: 1, per: 3h}
steps:
  - {id: restart, command: [systemctl, restart, web]}
"""


async def test_idle_workflow_ends_only_after_its_cooldown_and_restarts_fresh(ts):
    """The run ends once cooldown and budget windows are over; the next transition starts a new run."""
    plan = _plan(ts, "idle", IDLE_PLAN)
    resource = "service/idle"
    options = io.ResourceOptions(idle_timeout=timedelta(hours=1))
    first = fired(resource, plan=plan)
    handle = await _send(ts, first, options=options)
    await _result(ts, first)
    await _send(ts, resolved(first), options=options)
    await until(ts.client, resource, lambda s: not s.episodes)
    async with ts.env.time_skipping_unlocked():
        ended = await ts.client.get_workflow_handle(
            handle.id, result_type=io.ResourceState
        ).result()
    description = await handle.describe()
    child = await ts.client.get_workflow_handle(
        resources.remediation_workflow_id(first.episode)
    ).describe()
    assert description.close_time is not None
    assert child.start_time is not None
    # Not before the 3-hour budget window of the run is over (counted from the moment
    # the resource workflow decided to start the child, a moment before the child began).
    assert description.close_time - child.start_time >= timedelta(hours=3, seconds=-1)
    assert ended.cooldowns == ()
    assert ended.outcomes[-1].outcome is rio.Outcome.SUCCEEDED

    again = fired(resource, plan=plan, at=timedelta(hours=5))
    fresh = await _send(ts, again, options=options)
    assert fresh.result_run_id != handle.result_run_id
    assert (await _result(ts, again)).outcome is rio.Outcome.SUCCEEDED
    assert len(ts.acts.named(aio.RUN_COMMAND, resource)) == 2


async def test_manual_run_closes_with_its_remediation_and_unknown_plan_is_recorded(ts):
    """A 'homeostat run' episode ends when its plan does; a rule naming no known plan only records."""
    plan = _plan(ts, "manual", "steps:\n  - {id: update, command: [apt-get, upgrade]}\n")
    resource = "host/manual-1"
    manual = fired(resource, plan=plan, rule=contract.MANUAL_RULE)
    await _send(ts, manual)
    assert (await _result(ts, manual)).outcome is rio.Outcome.SUCCEEDED
    current = await until(ts.client, resource, lambda s: not s.episodes)
    assert current.outcomes[-1].episode == manual.episode
    unknown = fired(resource, plan="no-such-plan", at=timedelta(minutes=1))
    await _send(ts, unknown)
    current = await until(ts.client, resource, lambda s: len(s.episodes) == 1)
    assert current.episodes[0].status is io.EpisodeStatus.OPEN
    assert "no-such-plan" in current.episodes[0].note
    assert ts.acts.steps(aio.RUN_COMMAND, resource) == ["update"]


LOST_PLAN = """
timeout: 10m
steps:
  - {id: settle, wait: 5m}
  - {id: restart, command: [systemctl, restart, web]}
"""


async def test_a_terminated_remediation_counts_as_failed_once_it_is_overdue(ts):
    """Nothing reports a terminated remediation's end: 40 minutes after it began (10-minute plan, 30-minute margin) the resource records it failed and is free again."""
    plan = _plan(ts, "lost", LOST_PLAN)
    resource = "service/lost-episode"
    first = fired(resource, plan=plan)
    await _send(ts, first)
    await until(ts.client, resource, lambda s: s.running is not None)
    await terminate_started(ts.client, first, remediations_only=True)
    await ts.env.sleep(timedelta(minutes=39))
    still = await until(ts.client, resource, lambda s: s.running is not None)
    await ts.env.sleep(timedelta(minutes=2))
    freed = await until(ts.client, resource, lambda s: s.running is None)
    [record] = [item for item in freed.episodes if item.episode == first.episode]
    assert still.running is not None
    assert still.running.episode == first.episode
    assert record.outcome is rio.Outcome.FAILED
    assert "did not report back in time" in record.note
    assert ts.acts.steps(aio.RUN_COMMAND, resource) == []
