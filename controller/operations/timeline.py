"""One function from workflow history events to a typed timeline: ``entries``.

The history of a remediation workflow is an episode's record: its start input holds the
transition that opened the episode and the plan; each activity's input and result hold
what a step did (``ActivityContext.step`` names the step); the ``decision`` and
``episode_resolved`` signals are the approvals and the resolve; the result lists every
step's outcome, those without an activity included. The history of a resource workflow
holds the transitions it received, the remediations it started, operators' updates, its
phase changes (search attribute upserts) and, in its memo upserts, what it decided about
each episode (suppressed, skipped ...).

Payloads are read as plain JSON (``json/plain``, Homeostat's encoding), field by field, so
a history recorded by an older or newer version still reads: a missing field is left
empty, never an error. Only facts made for people are kept: a command's environment, an
HTTP call's headers and a playbook's variables never reach a timeline.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final

from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import HistoryEvent

from controller.domain import contract, resources
from controller.operations import payload_fields as pf
from controller.operations import timeline_model as tm
from controller.operations import timeline_steps
from controller.workflows import activity_io, resource_memo

_LOCAL_ACTIVITY_MARKER: Final = "core_local_activity"
"""The marker a local activity's result is recorded as (the SDK core's name for it)."""
_ON_RESOLVE: Final = frozenset(
    {activity_io.PAGE_RESOLVE, activity_io.TICKET_RESOLVE, activity_io.TICKET_COMMENT}
)


def suppression_reason(note: str) -> tm.SuppressionReason:
    """The reason a note of the resource workflow gives for not acting."""
    text = note.lower()
    checks = (
        ("paused", tm.SuppressionReason.PAUSE),
        ("silenced", tm.SuppressionReason.SILENCE),
        ("cooling down", tm.SuppressionReason.COOLDOWN),
        ("budget", tm.SuppressionReason.BUDGET),
        ("skipped", tm.SuppressionReason.CONCURRENCY),
        ("being remediated", tm.SuppressionReason.CONCURRENCY),
        ("merged", tm.SuppressionReason.CONCURRENCY),
    )
    return next((reason for word, reason in checks if word in text), tm.SuppressionReason.OTHER)


def transition_details(fired: Mapping[str, Any]) -> tm.TransitionDetails:
    """The facts of a transition payload."""
    return tm.TransitionDetails(
        rule=pf.text(fired.get("rule")),
        revision=pf.text(fired.get("revision")),
        severity=pf.text(fired.get("severity")),
        remediation=pf.text(fired.get("remediation")),
        labels=pf.labels(fired.get("labels")),
        annotations=pf.labels(fired.get("annotations")),
        started_at=pf.moment(fired.get("started_at")),
        at=pf.moment(fired.get("at")),
    )


class _Builder:
    """Walks one run's events and collects entries; ``entries`` is its only user."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        self.workflow_type = ""
        self.entries: list[tm.Entry] = []
        self.steps: dict[str, timeline_steps.Step] = {}
        self.scheduled: dict[int, timeline_steps.Activity] = {}
        self.plan: dict[str, Any] = {}
        self.episode = ""
        self.result: dict[str, Any] | None = None
        self.statuses: dict[str, str] = {}
        self.phase = ""

    def add(self, event: HistoryEvent, kind: tm.EntryKind, title: str, **values: Any) -> None:
        self.entries.append(
            tm.Entry(
                at=pf.event_time(event),
                kind=kind,
                title=title,
                workflow_id=self.workflow_id,
                event_id=event.event_id,
                **{"episode": self.episode, **values},
            )
        )

    # --- events --------------------------------------------------------------------------

    def event(self, event: HistoryEvent) -> None:
        handler = getattr(self, "_" + (event.WhichOneof("attributes") or "none"), None)
        if handler is not None:
            handler(event)

    def _workflow_execution_started_event_attributes(self, event: HistoryEvent) -> None:
        attributes = event.workflow_execution_started_event_attributes
        self.workflow_type = attributes.workflow_type.name
        arg = pf.obj(pf.first(attributes.input))
        if self.workflow_type == contract.REMEDIATION_WORKFLOW:
            self._remediation_started(event, arg)
        elif arg.get("state") is not None:
            self.add(event, tm.EntryKind.CONTINUED, "run continues the previous one's state")

    def _remediation_started(self, event: HistoryEvent, arg: dict[str, Any]) -> None:
        fired = pf.obj(arg.get("fired"))
        self.plan = pf.obj(arg.get("plan"))
        self.episode = pf.text(arg.get("episode"))
        details = transition_details(fired)
        plan = pf.text(self.plan.get("name"))
        title = f"{details.rule} fired on {pf.text(arg.get('resource'))}" + (
            f": plan {plan}" if plan else ""
        )
        self.add(event, tm.EntryKind.OPENED, title, details=details)
        if arg.get("mode") == "escalate":
            reason = pf.text(arg.get("reason"))
            self.add(
                event,
                tm.EntryKind.SUPPRESSED,
                f"not remediated: {reason}" if reason else "not remediated",
                details=tm.SuppressionDetails(reason=suppression_reason(reason), note=reason),
            )

    def _activity_task_scheduled_event_attributes(self, event: HistoryEvent) -> None:
        attributes = event.activity_task_scheduled_event_attributes
        activity = timeline_steps.Activity(
            name=attributes.activity_type.name,
            event_id=event.event_id,
            at=pf.event_time(event),
            arg=pf.obj(pf.first(attributes.input)),
        )
        self.scheduled[event.event_id] = activity
        path = pf.text(pf.obj(activity.arg.get("context")).get("step"))
        if activity.name in timeline_steps.STEP_ACTIVITIES and path:
            base = timeline_steps.base_path(path)
            step = self.steps.get(base)
            if step is None:
                step = self.steps[base] = timeline_steps.Step(
                    path=base, at=activity.at, event_id=event.event_id
                )
            step.activities.append(activity)

    def _activity_task_started_event_attributes(self, event: HistoryEvent) -> None:
        attributes = event.activity_task_started_event_attributes
        activity = self.scheduled.get(attributes.scheduled_event_id)
        if activity is not None:
            activity.attempts = attributes.attempt

    def _activity_task_completed_event_attributes(self, event: HistoryEvent) -> None:
        attributes = event.activity_task_completed_event_attributes
        activity = self.scheduled.get(attributes.scheduled_event_id)
        if activity is None:
            return
        activity.result = pf.obj(pf.first(attributes.result))
        activity.finished_at = pf.event_time(event)
        self._resource_activity(event, activity)

    def _activity_task_failed_event_attributes(self, event: HistoryEvent) -> None:
        attributes = event.activity_task_failed_event_attributes
        self._activity_failed(event, attributes.scheduled_event_id, attributes.failure)

    def _activity_task_timed_out_event_attributes(self, event: HistoryEvent) -> None:
        attributes = event.activity_task_timed_out_event_attributes
        self._activity_failed(event, attributes.scheduled_event_id, attributes.failure)

    def _activity_failed(self, event: HistoryEvent, scheduled: int, failure: Failure) -> None:
        activity = self.scheduled.get(scheduled)
        if activity is None:
            return
        activity.error = pf.failure_message(failure) or "failed"
        activity.finished_at = pf.event_time(event)
        self._resource_activity(event, activity)

    def _resource_activity(self, event: HistoryEvent, activity: timeline_steps.Activity) -> None:
        """On-resolve actions and plan loading: the resource workflow's own activities."""
        if activity.name in _ON_RESOLVE:
            self._on_resolve(activity)
        elif activity.name == activity_io.LOAD_PLAN:
            name = pf.text(activity.arg.get("name"))
            self._plan_loaded(event, name, activity.result, activity.error)

    def _plan_loaded(self, event: HistoryEvent, name: str, result: Any, error: str) -> None:
        """A ``load_plan`` that found no plan is a problem on the timeline."""
        problem = error or pf.text(pf.obj(result).get("problem"))
        if problem or pf.obj(result).get("plan") is None:
            name = name or pf.text(pf.obj(result).get("name"))
            self.add(
                event,
                tm.EntryKind.PROBLEM,
                f"plan {name} could not be loaded: {problem or 'not found'}",
                status="failed",
            )

    def _marker_recorded_event_attributes(self, event: HistoryEvent) -> None:
        """Local activities (``load_plan``, ``start_episode``): a marker keeps the result."""
        attributes = event.marker_recorded_event_attributes
        if attributes.marker_name != _LOCAL_ACTIVITY_MARKER:
            return
        data = attributes.details.get("data")
        name = pf.text(pf.obj(pf.first(data)).get("activity_type")) if data is not None else ""
        found = attributes.details.get("result")
        result = pf.first(found) if found is not None else None
        error = ""
        if attributes.HasField("failure"):
            error = pf.failure_message(attributes.failure) or "failed"
        if name == activity_io.LOAD_PLAN:
            self._plan_loaded(event, "", result, error)
        elif name == activity_io.START_EPISODE and not error:
            started = pf.obj(result)
            if started.get("outcome") == "started":
                self._remediation_initiated(event, started, pf.text(started.get("workflow_id")))

    def _on_resolve(self, activity: timeline_steps.Activity) -> None:
        arg = activity.arg
        episode = pf.text(pf.obj(arg.get("context")).get("episode"))
        status = "failed" if activity.error else "succeeded"
        details: tm.Details
        if activity.name == activity_io.PAGE_RESOLVE:
            key = pf.text(arg.get("dedup_key"))
            title = f"page {key} resolved"
            details = tm.PageDetails(dedup_key=key, status="resolved")
        else:
            key = pf.text(arg.get("key"))
            verb = "resolved" if activity.name == activity_io.TICKET_RESOLVE else "commented"
            title = f"ticket {key} {verb}"
            details = tm.TicketDetails(
                key=key, status=pf.text(pf.obj(activity.result).get("status")) or verb
            )
        self.entries.append(
            tm.Entry(
                at=activity.at,
                kind=tm.EntryKind.ON_RESOLVE,
                title=title + (f": {activity.error}" if activity.error else ""),
                status=status,
                episode=episode,
                finished_at=activity.finished_at,
                error=activity.error,
                attempts=activity.attempts,
                workflow_id=self.workflow_id,
                event_id=activity.event_id,
                details=details,
            )
        )

    def _workflow_execution_signaled_event_attributes(self, event: HistoryEvent) -> None:
        attributes = event.workflow_execution_signaled_event_attributes
        name = attributes.signal_name
        arg = pf.obj(pf.first(attributes.input))
        if name == contract.SIGNAL_DECISION:
            approved = bool(arg.get("approved"))
            by = pf.text(arg.get("by")) or "someone"
            self.add(
                event,
                tm.EntryKind.APPROVAL,
                f"{'approved' if approved else 'denied'} by {by}",
                status="approved" if approved else "denied",
                details=tm.ApprovalDetails(
                    approved=approved,
                    by=pf.text(arg.get("by")),
                    channel=timeline_steps.channel_of(arg),
                    comment=pf.text(arg.get("comment")),
                ),
            )
        elif name == contract.SIGNAL_EPISODE_RESOLVED:
            self.add(event, tm.EntryKind.RESOLVED, "the episode's condition cleared")
        elif name in {contract.SIGNAL_TRANSITION, contract.SIGNAL_TRANSITIONS}:
            batch = arg.get("transitions") if name == contract.SIGNAL_TRANSITIONS else [arg]
            for item in batch if isinstance(batch, list) else []:
                self._transition(event, pf.obj(item))
        elif name == contract.SIGNAL_REMEDIATION_FINISHED:
            result = pf.obj(arg.get("result"))
            episode = pf.text(result.get("episode"))
            workflow_id = resources.remediation_workflow_id(resources.EpisodeId(episode))
            self._remediation_ended(event, result, workflow_id if episode else "")

    def _transition(self, event: HistoryEvent, transition: dict[str, Any]) -> None:
        episode = pf.text(transition.get("episode"))
        details = transition_details(transition)
        resource = pf.text(transition.get("resource"))
        if transition.get("kind") == "resolved":
            title = f"{details.rule} resolved on {resource}"
            self.entries.append(
                tm.Entry(
                    at=pf.event_time(event),
                    kind=tm.EntryKind.RESOLVED,
                    title=title,
                    episode=episode,
                    workflow_id=self.workflow_id,
                    event_id=event.event_id,
                    details=details,
                )
            )
            return
        plan = details.remediation
        self.entries.append(
            tm.Entry(
                at=pf.event_time(event),
                kind=tm.EntryKind.OPENED,
                title=f"{details.rule} fired on {resource}" + (f": plan {plan}" if plan else ""),
                episode=episode,
                workflow_id=self.workflow_id,
                event_id=event.event_id,
                details=details,
            )
        )

    def _signal_external_workflow_execution_initiated_event_attributes(
        self, event: HistoryEvent
    ) -> None:
        attributes = event.signal_external_workflow_execution_initiated_event_attributes
        if attributes.signal_name != contract.SIGNAL_REMEDIATION_PROGRESS:
            return
        progress = pf.obj(pf.first(attributes.input))
        if progress.get("phase") != "awaiting_approval":
            return
        path = pf.text(progress.get("step"))
        message = pf.text(progress.get("approval_message"))
        self.add(
            event,
            tm.EntryKind.APPROVAL_REQUESTED,
            f"waiting for approval: {message}" if message else "waiting for approval",
            step=path,
            status="waiting",
            details=tm.ApprovalDetails(message=message, approvers=self._approvers(path)),
        )

    def _approvers(self, path: str) -> tuple[str, ...]:
        wanted = path.rsplit("/", 1)[-1]
        pending: list[Any] = list(self.plan.get("steps") or [])
        while pending:
            step = pf.obj(pending.pop())
            if step.get("id") == wanted and step.get("kind") == "approve":
                return pf.strings(step.get("approvers"))
            pending.extend(step.get("steps") or [])
        return ()

    def _start_child_workflow_execution_initiated_event_attributes(
        self, event: HistoryEvent
    ) -> None:
        """An episode's remediation started as a child (histories before eager starts)."""
        attributes = event.start_child_workflow_execution_initiated_event_attributes
        arg = pf.obj(pf.first(attributes.input))
        started = {**arg, "plan": pf.obj(arg.get("plan")).get("name")}
        self._remediation_initiated(event, started, attributes.workflow_id)

    def _remediation_initiated(
        self, event: HistoryEvent, started: Mapping[str, Any], workflow_id: str
    ) -> None:
        """``started``: the episode, the plan's name, the mode and the reason to escalate."""
        episode = pf.text(started.get("episode"))
        plan = pf.text(started.get("plan"))
        mode = pf.text(started.get("mode")) or "remediate"
        reason = pf.text(started.get("reason"))
        self.entries.append(
            tm.Entry(
                at=pf.event_time(event),
                kind=tm.EntryKind.REMEDIATION,
                title=f"remediation started: plan {plan}"
                if mode == "remediate"
                else f"escalation only: {reason}",
                status="started",
                episode=episode,
                workflow_id=self.workflow_id,
                event_id=event.event_id,
                details=tm.RemediationDetails(
                    workflow_id=workflow_id, plan=plan, mode=mode, message=reason
                ),
            )
        )
        if mode != "remediate":
            self._suppressed(event, episode, reason)

    def _suppressed(self, event: HistoryEvent, episode: str, note: str) -> None:
        self.entries.append(
            tm.Entry(
                at=pf.event_time(event),
                kind=tm.EntryKind.SUPPRESSED,
                title=f"not remediated: {note}" if note else "not remediated",
                episode=episode,
                workflow_id=self.workflow_id,
                event_id=event.event_id,
                details=tm.SuppressionDetails(reason=suppression_reason(note), note=note),
            )
        )

    def _child_workflow_execution_completed_event_attributes(self, event: HistoryEvent) -> None:
        attributes = event.child_workflow_execution_completed_event_attributes
        result = pf.obj(pf.first(attributes.result))
        self._remediation_ended(event, result, attributes.workflow_execution.workflow_id)

    def _child_workflow_execution_failed_event_attributes(self, event: HistoryEvent) -> None:
        attributes = event.child_workflow_execution_failed_event_attributes
        message = pf.failure_message(attributes.failure)
        self.add(
            event,
            tm.EntryKind.REMEDIATION,
            f"remediation failed: {message}",
            status="failed",
            error=message,
            details=tm.RemediationDetails(workflow_id=attributes.workflow_execution.workflow_id),
        )

    def _remediation_ended(self, event: HistoryEvent, result: dict[str, Any], child: str) -> None:
        episode = pf.text(result.get("episode"))
        if any(
            entry.kind is tm.EntryKind.REMEDIATION
            and entry.episode == episode
            and entry.status not in {"started", ""}
            for entry in self.entries
        ):
            return  # the same result, once as the child's completion and once as a signal
        outcome = pf.text(result.get("outcome"))
        message = pf.text(result.get("message"))
        self.entries.append(
            tm.Entry(
                at=pf.event_time(event),
                kind=tm.EntryKind.REMEDIATION,
                title=f"remediation {outcome}" + (f": {message}" if message else ""),
                status=outcome,
                episode=episode,
                workflow_id=self.workflow_id,
                event_id=event.event_id,
                details=_remediation_details(result, child),
            )
        )

    def _workflow_execution_update_accepted_event_attributes(self, event: HistoryEvent) -> None:
        request = event.workflow_execution_update_accepted_event_attributes.accepted_request
        name = request.input.name
        arg = pf.obj(pf.first(request.input.args))
        by = pf.text(arg.get("by"))
        reason = pf.text(arg.get("reason")) or pf.text(arg.get("comment"))
        until = pf.moment(arg.get("until"))
        episode = pf.text(arg.get("episode"))
        title = {
            contract.UPDATE_SILENCE: f"silenced until {until.isoformat() if until else '?'}",
            contract.UPDATE_UNSILENCE: "silence ended",
            contract.UPDATE_PAUSE: "automation paused",
            contract.UPDATE_RESUME: "automation resumed",
            contract.UPDATE_APPROVE: f"approval of {episode} sent",
            contract.UPDATE_DENY: f"denial of {episode} sent",
            contract.UPDATE_RESET: " and ".join(
                part
                for part, asked in (("cooldowns ended", "cooldown"), ("budget reset", "budget"))
                if arg.get(asked, True)
            ),
        }.get(name, name)
        self.add(
            event,
            tm.EntryKind.OPERATOR,
            title + (f" by {by}" if by else "") + (f": {reason}" if reason else ""),
            details=tm.OperatorDetails(
                action=name,
                by=by,
                channel=pf.text(arg.get("channel")),
                reason=reason,
                until=until,
                episode=episode,
            ),
            **({"episode": episode} if episode else {}),
        )

    def _upsert_workflow_search_attributes_event_attributes(self, event: HistoryEvent) -> None:
        fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
        payload = fields.indexed_fields.get("HomeostatPhase")
        phase = pf.decode(payload) if payload is not None else None
        if isinstance(phase, str) and phase != self.phase:
            self.phase = phase
            self.add(event, tm.EntryKind.PHASE, f"phase {phase}", status=phase)

    def _workflow_properties_modified_event_attributes(self, event: HistoryEvent) -> None:
        memo = event.workflow_properties_modified_event_attributes.upserted_memo
        payload = memo.fields.get(resource_memo.MEMO_KEY)
        value = pf.obj(pf.decode(payload)) if payload is not None else {}
        for item in value.get("episodes") or []:
            episode = pf.obj(item)
            self._settled(event, episode, pf.text(episode.get("status")))
        for item in value.get("outcomes") or []:
            outcome = pf.obj(item)
            self._settled(event, outcome, pf.text(outcome.get("status")))

    def _settled(self, event: HistoryEvent, episode: dict[str, Any], status: str) -> None:
        """Note, once per episode and status, what the resource workflow decided."""
        key = pf.text(episode.get("episode"))
        if not key or self.statuses.get(key) == status:
            return
        self.statuses[key] = status
        note = pf.text(episode.get("note"))
        if status in {"suppressed", "skipped", "merged"} or (
            status == "done" and episode.get("outcome") is None and note
        ):
            self._suppressed(event, key, note or status)
        elif status == "open" and note:
            self.entries.append(
                tm.Entry(
                    at=pf.event_time(event),
                    kind=tm.EntryKind.PROBLEM,
                    title=f"not remediated: {note}",
                    episode=key,
                    workflow_id=self.workflow_id,
                    event_id=event.event_id,
                )
            )

    def _workflow_execution_completed_event_attributes(self, event: HistoryEvent) -> None:
        result = pf.obj(pf.first(event.workflow_execution_completed_event_attributes.result))
        if self.workflow_type != contract.REMEDIATION_WORKFLOW:
            self.add(event, tm.EntryKind.CLOSED, "run completed: nothing left to remember")
            return
        self.result = result
        outcome = pf.text(result.get("outcome"))
        message = pf.text(result.get("message"))
        self.add(
            event,
            tm.EntryKind.CLOSED,
            f"remediation {outcome}" + (f": {message}" if message else ""),
            status=outcome,
            details=_remediation_details(result, self.workflow_id),
        )

    def _workflow_execution_continued_as_new_event_attributes(self, event: HistoryEvent) -> None:
        attributes = event.workflow_execution_continued_as_new_event_attributes
        self.add(
            event,
            tm.EntryKind.CONTINUED,
            f"continued as new in run {attributes.new_execution_run_id}",
        )

    def _ended(self, event: HistoryEvent, status: str, failure: Failure | None) -> None:
        message = pf.failure_message(failure) if failure is not None else ""
        self.add(
            event,
            tm.EntryKind.CLOSED,
            f"workflow {status}" + (f": {message}" if message else ""),
            status=status,
            error=message,
        )

    def _workflow_execution_failed_event_attributes(self, event: HistoryEvent) -> None:
        self._ended(event, "failed", event.workflow_execution_failed_event_attributes.failure)

    def _workflow_execution_terminated_event_attributes(self, event: HistoryEvent) -> None:
        self._ended(event, "terminated", None)

    def _workflow_execution_timed_out_event_attributes(self, event: HistoryEvent) -> None:
        self._ended(event, "timed_out", None)

    def _workflow_execution_canceled_event_attributes(self, event: HistoryEvent) -> None:
        self._ended(event, "cancelled", None)

    # --- steps ----------------------------------------------------------------------------

    def step_entries(self) -> list[tm.Entry]:
        """One entry per step, its record (when the remediation ended) added."""
        return timeline_steps.entries(self.steps, self.result, self.workflow_id, self.episode)


def _remediation_details(result: Mapping[str, Any], workflow_id: str) -> tm.RemediationDetails:
    return tm.RemediationDetails(
        workflow_id=workflow_id,
        outcome=pf.text(result.get("outcome")),
        message=pf.text(result.get("message")),
        escalation_level=pf.integer(result.get("escalation_level")) or 0,
        page_dedup_key=pf.text(result.get("page_dedup_key")),
        ticket_key=pf.text(result.get("ticket_key")),
        ticket_url=pf.text(result.get("ticket_url")),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RunEntries:
    """What one run's history says: its workflow type and its entries, oldest first."""

    workflow_type: str
    episode: str
    entries: tuple[tm.Entry, ...]


def entries(workflow_id: str, events: Iterable[HistoryEvent]) -> RunEntries:
    """The timeline entries of one workflow run's history, oldest first.

    The one function from history events to the timeline: ``homeostat history``, ``GET
    /v1/episodes/{id}`` and ``homeostat run``'s progress all go through it.
    """
    builder = _Builder(workflow_id)
    for event in events:
        builder.event(event)
    found = [*builder.entries, *builder.step_entries()]
    found.sort(key=lambda entry: (entry.at, entry.event_id))
    if builder.episode:
        found = [replace(entry, episode=entry.episode or builder.episode) for entry in found]
    return RunEntries(
        workflow_type=builder.workflow_type, episode=builder.episode, entries=tuple(found)
    )
