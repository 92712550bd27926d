"""A plan step in a timeline: its activities (inputs, results, errors) and its record.

A step's activities carry its path in ``ActivityContext.step``; a playbook's re-runs on
failed hosts carry ``#failed-hosts-N`` after it and join their step; a scale step's
read, metric query and change join theirs. When the remediation ended, its result's
step records add the outcome, the summary, and the steps without an activity (approve,
wait, skipped, for_each).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

from controller.operations import payload_fields as pf
from controller.operations import timeline_model as tm
from controller.workflows import activity_io

STEP_ACTIVITIES: Final = frozenset(
    {
        activity_io.RUN_PLAYBOOK,
        activity_io.RUN_COMMAND,
        activity_io.HTTP_CALL,
        activity_io.PAGE_TRIGGER,
        activity_io.TICKET_CREATE,
        activity_io.VERIFY_PROMQL,
        activity_io.VERIFY_CEL,
        activity_io.SCALE_READ,
        activity_io.QUERY_METRIC,
        activity_io.SCALE,
        activity_io.FETCH_INVENTORY,
    }
)
"""Activities that belong to a plan step (the others are the resource workflow's own)."""


def channel_of(decision: Mapping[str, Any]) -> str:
    """How an approval arrived: its ``channel`` field, else the ``by`` prefix, else the CLI."""
    channel = pf.text(decision.get("channel"))
    if channel:
        return channel
    by = pf.text(decision.get("by"))
    prefix, sep, _ = by.partition(":")
    return prefix if sep and prefix else "cli"


@dataclass
class Activity:
    """An activity of a step, as the history recorded it."""

    name: str
    event_id: int
    at: datetime
    arg: dict[str, Any]
    attempts: int = 0
    result: dict[str, Any] | None = None
    error: str = ""
    finished_at: datetime | None = None

    @property
    def done(self) -> bool:
        """It completed or failed (for good)."""
        return self.result is not None or bool(self.error)


@dataclass
class Step:
    """A step, built up from its activities and its record in the result."""

    path: str
    at: datetime
    event_id: int
    activities: list[Activity] = field(default_factory=list)
    record: dict[str, Any] | None = None


def base_path(step: str) -> str:
    """A playbook's re-run on failed hosts belongs to its step (``restart#failed-hosts-1``)."""
    return step.split("#", 1)[0]


def _playbook(activities: Sequence[Activity]) -> tm.PlaybookDetails:
    first = activities[0].arg
    results: dict[str, tm.HostOutcome] = {}
    last: dict[str, Any] = {}
    for activity in activities:
        out = pf.obj(activity.result)
        if activity.result is not None:
            last = out
        for item in out.get("hosts") or []:
            host = pf.obj(item)
            name = pf.text(host.get("host"))
            results[name] = tm.HostOutcome(
                host=name,
                ok=bool(host.get("ok")),
                changed=bool(host.get("changed")),
                unreachable=bool(host.get("unreachable")),
                failed_task=pf.text(host.get("failed_task")),
                message=pf.text(host.get("message"))[: pf.TAIL],
            )
    return tm.PlaybookDetails(
        playbook=pf.text(first.get("playbook")),
        hosts=pf.strings(first.get("hosts")),
        check=bool(first.get("check")),
        runs=len(activities),
        status=pf.text(last.get("status")),
        rc=pf.integer(last.get("rc")),
        results=tuple(results[name] for name in sorted(results)),
        log_ref=pf.text(last.get("log_ref")),
    )


def _scale(activities: Sequence[Activity], record: Mapping[str, Any]) -> tm.ScaleDetails:
    target = pf.obj(activities[0].arg.get("target"))
    current = metric = desired = after = None
    query = ""
    for activity in activities:
        out = pf.obj(activity.result)
        if activity.name == activity_io.SCALE_READ:
            current = pf.integer(out.get("replicas"))
        elif activity.name == activity_io.QUERY_METRIC:
            query = pf.text(activity.arg.get("query"))
            value = out.get("value")
            metric = float(value) if isinstance(value, int | float) else None
        elif activity.name == activity_io.SCALE:
            desired = pf.integer(activity.arg.get("replicas"))
            after = pf.integer(out.get("replicas"))
    output = pf.obj(record.get("output"))
    if (
        desired is None
        and current is not None
        and activity_io.SCALE not in {activity.name for activity in activities}
    ):
        desired = current if record.get("outcome") == "succeeded" else None
    return tm.ScaleDetails(
        target=pf.text(target.get("name")),
        actuator=pf.text(target.get("actuator")),
        current=current,
        metric_query=query,
        metric_value=metric
        if metric is not None
        else (output.get("metric") if isinstance(output.get("metric"), int | float) else None),
        desired=desired,
        after=after,
    )


def _activity_details(step: Step) -> tm.Details | None:  # noqa: PLR0911 - one per step type
    activities = step.activities
    if not activities:
        return None
    names = {activity.name for activity in activities}
    arg = activities[0].arg
    out = pf.obj(activities[-1].result)
    if activity_io.RUN_PLAYBOOK in names:
        return _playbook(activities)
    if names & {activity_io.SCALE_READ, activity_io.SCALE}:
        return _scale(activities, step.record or {})
    if activity_io.RUN_COMMAND in names:
        return tm.CommandDetails(
            argv=pf.strings(arg.get("argv")),
            exit_code=pf.integer(out.get("exit_code")),
            stdout_tail=pf.tail(out.get("stdout")),
            stderr_tail=pf.tail(out.get("stderr")),
            log_ref=pf.text(out.get("log_ref")),
        )
    if activity_io.HTTP_CALL in names:
        request = pf.obj(arg.get("request"))
        return tm.HttpDetails(
            method=pf.text(request.get("method")),
            url=pf.text(request.get("url")),
            status=pf.integer(out.get("status")),
        )
    if activity_io.PAGE_TRIGGER in names:
        return tm.PageDetails(
            dedup_key=pf.text(out.get("dedup_key")) or pf.text(arg.get("dedup_key")),
            summary=pf.text(arg.get("summary")),
            severity=pf.text(arg.get("severity")),
            status=pf.text(out.get("status")),
        )
    if activity_io.TICKET_CREATE in names:
        return tm.TicketDetails(
            key=pf.text(out.get("key")),
            url=pf.text(out.get("url")),
            project=pf.text(arg.get("project")),
            summary=pf.text(arg.get("summary")),
            created=out.get("created") if isinstance(out.get("created"), bool) else None,
        )
    if names & {activity_io.VERIFY_PROMQL, activity_io.VERIFY_CEL}:
        ok = out.get("ok")
        return tm.VerifyDetails(
            condition=pf.text(arg.get("query")) or pf.text(arg.get("expression")),
            ok=ok if isinstance(ok, bool) else None,
            checks=pf.integer(out.get("checks")) or 0,
            observed=pf.tail(out.get("observed")),
        )
    if activity_io.FETCH_INVENTORY in names:
        return tm.FanOutDetails(group=pf.text(arg.get("group")), hosts=pf.strings(out.get("hosts")))
    return None


def _step_status(step: Step) -> str:
    if step.record is not None:
        return pf.text(step.record.get("outcome"))
    if any(not activity.done for activity in step.activities):
        return "running"
    if any(activity.error for activity in step.activities):
        return "failed"
    last = pf.obj(step.activities[-1].result) if step.activities else {}
    return "failed" if last.get("ok") is False else "succeeded"


def _step_entry(step: Step, workflow_id: str, episode: str) -> tm.Entry:
    record = step.record or {}
    step_type = pf.text(record.get("kind")) or _kind_of(step)
    details = _activity_details(step)
    if step_type == "approve":
        output = pf.obj(record.get("output"))
        outcome = pf.text(record.get("outcome"))
        details = tm.ApprovalDetails(
            approved=True if outcome == "approved" else False if outcome == "denied" else None,
            by=pf.text(output.get("by")),
            channel=channel_of(output) if output.get("by") else "",
            comment=pf.text(output.get("comment")),
        )
    elif step_type == "for_each":
        output = pf.obj(record.get("output"))
        listed = details if isinstance(details, tm.FanOutDetails) else tm.FanOutDetails()
        details = replace(
            listed,
            items=pf.integer(output.get("items")),
            succeeded=pf.integer(output.get("succeeded")),
            failed=pf.strings(output.get("failed")),
            not_run=pf.strings(output.get("not_run")),
        )
    elif details is None:
        details = tm.StepSummary(step_type=step_type, output=pf.obj(record.get("output")))
    kind = tm.EntryKind.STEP
    if step.path.startswith("escalation_"):
        kind = tm.EntryKind.ESCALATION
    elif step_type == "verify":
        kind = tm.EntryKind.VERIFICATION
    errors = [activity.error for activity in step.activities if activity.error]
    summary = pf.text(record.get("summary"))
    status = _step_status(step)
    started = pf.moment(record.get("started_at")) or step.at
    finished = pf.moment(record.get("finished_at")) or max(
        (activity.finished_at for activity in step.activities if activity.finished_at),
        default=None,
    )
    return tm.Entry(
        # An approval is told when it was answered, after the request and the answer.
        at=finished if step_type == "approve" and finished else started,
        kind=kind,
        title=f"{step.path} ({step_type}): {status}" + (f" - {summary}" if summary else ""),
        status=status,
        step=step.path,
        episode=episode,
        finished_at=finished,
        error=errors[-1] if errors else "",
        attempts=max((activity.attempts for activity in step.activities), default=0),
        workflow_id=workflow_id,
        event_id=step.event_id,
        details=details,
    )


def _kind_of(step: Step) -> str:
    names = {activity.name for activity in step.activities}
    table = (
        (activity_io.RUN_PLAYBOOK, "playbook"),
        (activity_io.SCALE_READ, "scale"),
        (activity_io.RUN_COMMAND, "command"),
        (activity_io.HTTP_CALL, "http"),
        (activity_io.PAGE_TRIGGER, "page"),
        (activity_io.TICKET_CREATE, "ticket"),
        (activity_io.VERIFY_PROMQL, "verify"),
        (activity_io.VERIFY_CEL, "verify"),
        (activity_io.FETCH_INVENTORY, "for_each"),
    )
    return next((kind for name, kind in table if name in names), "step")


def entries(
    steps: dict[str, Step], result: Mapping[str, Any] | None, workflow_id: str, episode: str
) -> list[tm.Entry]:
    """One entry per step; ``result``'s step records add outcomes and activity-less steps."""
    records = {
        pf.text(record.get("step")): record
        for record in (pf.obj(item) for item in (result or {}).get("steps") or [])
    }
    for path, record in records.items():
        step = steps.get(path)
        started = pf.moment(record.get("started_at")) or datetime.min.replace(tzinfo=UTC)
        if step is None:
            steps[path] = Step(path=path, at=started, event_id=0, record=record)
        else:
            step.record = record
    return [_step_entry(step, workflow_id, episode) for step in steps.values()]
