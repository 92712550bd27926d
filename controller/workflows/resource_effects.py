"""The resource workflow's calls around its episodes: load plans, start episodes, clean up, publish.

Kept apart from ``resource.py`` so the workflow class reads as the decisions it makes;
these are the calls those decisions lead to.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import exceptions, workflow
from temporalio.common import (
    RetryPolicy,
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
)

with workflow.unsafe.imports_passed_through():
    from controller.domain import resources, transitions
    from controller.plans import spec, templates
    from controller.workflows import activity_io as aio
    from controller.workflows import ledger as ledger_module
    from controller.workflows import remediation_io as rio
    from controller.workflows import resource_io as io
    from controller.workflows import resource_memo, telemetry

KIND = SearchAttributeKey.for_keyword("HomeostatResourceKind")
RESOURCE = SearchAttributeKey.for_keyword("HomeostatResource")
PHASE = SearchAttributeKey.for_keyword("HomeostatPhase")
RULE = SearchAttributeKey.for_keyword("HomeostatRule")
SEVERITY = SearchAttributeKey.for_keyword("HomeostatSeverity")
_QUICK = RetryPolicy(maximum_attempts=5, non_retryable_error_types=[aio.PERMANENT_ERROR])


LOCAL_LOAD_PLAN_PATCH = "homeostat-local-load-plan"
"""Patch id: ``load_plan`` runs as a local activity (histories before ran it as an activity)."""
EAGER_EPISODES_PATCH = "homeostat-eager-episodes"
"""Patch id: an episode's remediation workflow is started by the local activity
``start_episode``, eagerly, and reports its result by signal (histories before started it
as a child workflow)."""
START_EPISODE_TIMEOUT = timedelta(seconds=30)
"""Time one attempt of ``start_episode`` may take."""
_UNTIL_TAKEN = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=[aio.PERMANENT_ERROR],
)
"""Retry a start for as long as Temporal is away: a child's start would wait as long."""


async def load_plan(
    name: str, *, attempt_timeout: timedelta = io.LOAD_PLAN_TIMEOUT
) -> tuple[spec.Plan | None, str]:
    """The plan called ``name``, or ``None`` and why not; each attempt gets ``attempt_timeout``.

    A local activity: the worker that runs this workflow task reads the plan and the task
    goes on with it, where an activity cost a round trip through the server and a second
    workflow task before the episode could start. The plan is recorded in the history
    (a marker) all the same, so replay reads the same plan.
    """
    request = aio.LoadPlanInput(name=name)
    try:
        if workflow.patched(LOCAL_LOAD_PLAN_PATCH):
            loaded = await workflow.execute_local_activity(
                aio.LOAD_PLAN,
                request,
                result_type=aio.LoadPlanOutput,
                start_to_close_timeout=attempt_timeout,
                retry_policy=_QUICK,
            )
        else:
            loaded = await workflow.execute_activity(
                aio.LOAD_PLAN,
                request,
                result_type=aio.LoadPlanOutput,
                start_to_close_timeout=attempt_timeout,
                retry_policy=_QUICK,
            )
    except exceptions.ActivityError as exc:
        return None, f"plan {name!r} could not be loaded: {exc.cause or exc}"
    if loaded.plan is None:
        return None, f"plan {name!r}: {loaded.problem or 'not found'}"
    return loaded.plan, ""


async def start_episode(
    request: rio.RemediationInput, *, attempt_timeout: timedelta = START_EPISODE_TIMEOUT
) -> rio.EpisodeStarted | str:
    """Start the episode's remediation workflow (not as a child); why not, if it failed.

    A local activity (``start_episode``) starts it with eager execution, so this worker
    runs its first task at once; a child's start waits for the server twice before the
    episode's first step. Retried until Temporal takes it, unless refused for good; each
    attempt gets ``attempt_timeout``. The request must have ``report_result`` set: no
    workflow sees the completion of a workflow that is not its child.
    """
    start = rio.StartEpisode(
        request=request,
        workflow_id=resources.remediation_workflow_id(request.episode),
        started_by=workflow.info().run_id,
    )
    try:
        started: rio.EpisodeStarted = await workflow.execute_local_activity(
            aio.START_EPISODE,
            start,
            result_type=rio.EpisodeStarted,
            start_to_close_timeout=attempt_timeout,
            retry_policy=_UNTIL_TAKEN,
        )
    except exceptions.ActivityError as exc:
        return f"its remediation workflow could not be started: {exc.cause or exc}"
    return started


async def on_resolve(
    resource: resources.ResourceKey,
    record: io.EpisodeRecord,
    *,
    attempt_timeout: timedelta = io.ON_RESOLVE_TIMEOUT,
) -> None:
    """Resolve the episode's page and ticket, as its plan says; failures are only logged.

    Each call (page resolve, ticket resolve or comment) gets ``attempt_timeout`` per attempt.
    """
    plan = record.on_resolve or spec.OnResolve()
    context = aio.ActivityContext(
        resource=resource,
        episode=record.episode,
        rule=record.fired.rule,
        plan=record.fired.remediation or "",
        step="on_resolve",
    )
    comment = templates.render(
        plan.comment,
        templates.Scope(
            labels=record.fired.labels,
            annotations=record.fired.annotations,
            resource=resource,
            episode=record.episode,
            rule=record.fired.rule,
            severity=record.fired.severity.value,
        ),
        strict=False,
    )
    calls: list[tuple[str, object]] = []
    if record.page_dedup_key and plan.resolve_page:
        calls.append(
            (
                aio.PAGE_RESOLVE,
                aio.PageResolveInput(context=context, dedup_key=record.page_dedup_key),
            )
        )
    if record.ticket_key and plan.ticket is spec.TicketOnResolve.RESOLVE:
        ticket: object = aio.TicketResolveInput(
            context=context, key=record.ticket_key, comment=comment
        )
        calls.append((aio.TICKET_RESOLVE, ticket))
    elif record.ticket_key and plan.ticket is spec.TicketOnResolve.COMMENT:
        ticket = aio.TicketCommentInput(context=context, key=record.ticket_key, body=comment)
        calls.append((aio.TICKET_COMMENT, ticket))
    for name, arg in calls:
        try:
            await workflow.execute_activity(
                name, arg, start_to_close_timeout=attempt_timeout, retry_policy=_QUICK
            )
        except exceptions.ActivityError as exc:
            workflow.logger.warning("%s for %s failed: %s", name, record.episode, exc.cause)
        else:
            _count(name)


def _count(activity_name: str) -> None:
    if activity_name == aio.PAGE_RESOLVE:
        telemetry.page_sent("resolve")
    elif activity_name == aio.TICKET_RESOLVE:
        telemetry.ticket_handled("resolved")
    elif activity_name == aio.TICKET_COMMENT:
        telemetry.ticket_handled("commented")


def episode_attributes(
    resource: resources.ResourceKey, fired: transitions.Transition
) -> TypedSearchAttributes:
    """Search attributes of an episode's remediation workflow (set once, at its start)."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(KIND, resources.resource_kind(resource)),
            SearchAttributePair(RESOURCE, resource),
            SearchAttributePair(RULE, fired.rule),
            SearchAttributePair(SEVERITY, fired.severity.value),
        ]
    )


def published_memo() -> resource_memo.ResourceMemo | None:
    """The memo this run started with (carried over by continue-as-new), if readable."""
    try:
        memo: resource_memo.ResourceMemo | None = workflow.memo_value(
            resource_memo.MEMO_KEY, None, type_hint=resource_memo.ResourceMemo
        )
    except (KeyError, TypeError, ValueError):
        return None
    return memo


def memo_fields(memo: resource_memo.ResourceMemo | None) -> dict[str, object] | None:
    """The memo to continue as new with; ``None`` (none) in runs recorded before memos."""
    return {resource_memo.MEMO_KEY: memo} if memo is not None else None


def publish(
    book: ledger_module.Ledger, previous: resource_memo.ResourceMemo | None
) -> resource_memo.ResourceMemo | None:
    """Update the phase; upsert the search attributes and the memo where they changed.

    Each upsert is a history event, so only changes are upserted. Returns the memo now in
    force (``previous`` when unchanged, ``None`` in runs recorded before memos existed).
    """
    now = workflow.now()
    book.phase = book.compute_phase(now)
    focus = book.focus()
    wanted = {
        KIND: resources.resource_kind(book.resource),
        RESOURCE: book.resource,
        PHASE: book.phase.value,
        RULE: focus.fired.rule if focus else None,
        SEVERITY: focus.fired.severity.value if focus else None,
    }
    current = workflow.info().typed_search_attributes
    updates = [
        key.value_set(value) if value is not None else key.value_unset()
        for key, value in wanted.items()
        if current.get(key) != value
    ]
    if updates:
        workflow.upsert_search_attributes(updates)
    if not workflow.patched(resource_memo.MEMO_PATCH):
        return None
    memo = resource_memo.build(
        book.snapshot(),
        focus_rule=focus.fired.rule if focus else "",
        now=now,
        previous=previous,
    )
    if memo != previous:
        workflow.upsert_memo({resource_memo.MEMO_KEY: memo})
    return memo
