"""Replay recorded histories against today's workflow code, and name the first divergence.

Temporal's replayer runs the workflow code over a history and fails on the first command
that differs from what the history recorded (a nondeterminism error); it uses the
production data converter, or payloads would not decode. Its message does not always say
which event: ``divergence`` then finds it by replaying ever longer prefixes of the
history (cut just after a workflow task started, so that task's commands are not yet
compared), which isolates the first workflow task whose commands differ; the event is
the first of that task's recorded commands that the message names, else its first one.

Histories come from a workflow id (fetched), from JSON files (the Web UI's download and
``temporal workflow show --output json`` write the same format), or from a visibility
query (``--since 7d``): every closed and running history of Homeostat's workflows.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio import client as temporal_client
from temporalio import runtime as temporal_runtime
from temporalio import service as temporal_service
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.worker import Replayer

from controller import errors
from controller.domain import contract
from controller.workflows import converter

_QUOTED = re.compile(r"'([^']*)'")
_EVENT_ID = re.compile(r"(?:HistoryEvent\(id: |event[_ ]id[:=] ?)(\d+)")
_MESSAGE = re.compile(r'message: "((?:[^"\\]|\\.)*)"')
_COMMAND_EVENTS = frozenset(
    {
        EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
        EventType.EVENT_TYPE_TIMER_STARTED,
        EventType.EVENT_TYPE_TIMER_CANCELED,
        EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED,
        EventType.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
        EventType.EVENT_TYPE_REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED,
        EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED,
        EventType.EVENT_TYPE_MARKER_RECORDED,
        EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
        EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Divergence:
    """Where the code stopped matching the history.

    Attributes:
        event_id: the recorded event the code disagrees with (0 when none was found).
        event_type: its type (``ActivityTaskScheduled`` ...).
        recorded: what the history recorded there.
        code: what today's code did instead (from the replayer's message).
        message: the replayer's message.
    """

    event_id: int
    event_type: str
    recorded: str
    code: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayResult:
    """One history replayed.

    Attributes:
        workflow_id: the workflow (or the file it came from).
        run_id: the run.
        workflow_type: ``ResourceWorkflow`` or ``RemediationWorkflow``.
        events: how many events the history has.
        ok: the code replays it without a divergence.
        divergence: the first divergence, when not ``ok``.
    """

    workflow_id: str
    run_id: str
    workflow_type: str
    events: int
    ok: bool
    divergence: Divergence | None = None


def _event_type_name(event: HistoryEvent) -> str:
    return EventType.Name(event.event_type).removeprefix("EVENT_TYPE_").title().replace("_", "")


def _recorded(event: HistoryEvent) -> str:
    """What a command event recorded, in a few words."""
    match event.WhichOneof("attributes"):
        case "activity_task_scheduled_event_attributes":
            attributes = event.activity_task_scheduled_event_attributes
            return f"activity {attributes.activity_type.name} (id {attributes.activity_id})"
        case "timer_started_event_attributes":
            attributes_timer = event.timer_started_event_attributes
            seconds = attributes_timer.start_to_fire_timeout.ToTimedelta().total_seconds()
            return f"timer {attributes_timer.timer_id} for {seconds:g} s"
        case "start_child_workflow_execution_initiated_event_attributes":
            child = event.start_child_workflow_execution_initiated_event_attributes
            return f"child workflow {child.workflow_type.name} {child.workflow_id}"
        case "signal_external_workflow_execution_initiated_event_attributes":
            signal = event.signal_external_workflow_execution_initiated_event_attributes
            return f"signal {signal.signal_name} to {signal.workflow_execution.workflow_id}"
        case "marker_recorded_event_attributes":
            return f"marker {event.marker_recorded_event_attributes.marker_name}"
        case _:
            return _event_type_name(event)


def _message(failure: BaseException) -> str:
    text = str(failure)
    found = _MESSAGE.search(text)
    return (found.group(1) if found else text).replace("\\'", "'").replace('\\"', '"')


def _task_starts(events: Sequence[HistoryEvent]) -> list[int]:
    return [
        index
        for index, event in enumerate(events)
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
    ]


class HistoryReplayer:
    """Replays histories with the production data converter and today's workflow code."""

    def __init__(
        self,
        workflows: Sequence[type] | None = None,
        *,
        runtime: temporal_runtime.Runtime | None = None,
    ) -> None:
        """Replay ``workflows`` (default: the ones a Homeostat worker runs) in ``runtime``."""
        if workflows is None:
            from controller import workflows as workflow_package  # noqa: PLC0415 - heavy

            workflows = workflow_package.WORKFLOWS
        self._replayer = Replayer(
            workflows=list(workflows), data_converter=converter.DATA_CONVERTER, runtime=runtime
        )

    async def _fails(self, history: temporal_client.WorkflowHistory) -> BaseException | None:
        result = await self._replayer.replay_workflow(history, raise_on_replay_failure=False)
        return result.replay_failure

    async def replay(self, history: temporal_client.WorkflowHistory) -> ReplayResult:
        """Replay one history; on failure, locate the first divergent event."""
        events = list(history.events)
        started = events[0] if events else None
        workflow_type = (
            started.workflow_execution_started_event_attributes.workflow_type.name
            if started is not None
            else ""
        )
        failure = await self._fails(history)
        common: dict[str, Any] = {
            "workflow_id": history.workflow_id,
            "run_id": history.run_id if events else "",
            "workflow_type": workflow_type,
            "events": len(events),
        }
        if failure is None:
            return ReplayResult(ok=True, **common)
        return ReplayResult(ok=False, divergence=await self.divergence(history, failure), **common)

    async def divergence(
        self, history: temporal_client.WorkflowHistory, failure: BaseException
    ) -> Divergence:
        """The first event the code disagrees with, by replaying prefixes of the history."""
        events = list(history.events)
        message = _message(failure)
        named = _EVENT_ID.search(message)
        if named is not None:
            event_id = int(named.group(1))
            event = next((e for e in events if e.event_id == event_id), None)
            return self._divergence(event, message)
        # Prefix lengths: up to each workflow task's start (its own commands are not yet
        # compared), then the whole history, which fails.
        ends = [index + 1 for index in _task_starts(events)] + [len(events)]
        low, high = 0, len(ends) - 1
        while low < high:
            middle = (low + high) // 2
            prefix = temporal_client.WorkflowHistory(history.workflow_id, events[: ends[middle]])
            if await self._fails(prefix) is None:
                low = middle + 1
            else:
                high = middle
        # The shortest failing prefix: the commands recorded since the previous one differ.
        begin = ends[high - 1] if high > 0 else 0
        end = ends[high]
        candidates = [e for e in events[begin:end] if e.event_type in _COMMAND_EVENTS]
        quoted = _QUOTED.findall(message)
        chosen = next(
            (e for e in candidates if any(word and word in _recorded(e) for word in quoted)),
            candidates[0] if candidates else None,
        )
        return self._divergence(chosen, message)

    @staticmethod
    def _divergence(event: HistoryEvent | None, message: str) -> Divergence:
        quoted = _QUOTED.findall(message)
        recorded = _recorded(event) if event is not None else ""
        code = quoted[-1] if len(quoted) >= 2 else message  # noqa: PLR2004 - 'recorded' vs 'code'
        return Divergence(
            event_id=event.event_id if event is not None else 0,
            event_type=_event_type_name(event) if event is not None else "",
            recorded=recorded,
            code=code,
            message=message,
        )


def load_file(path: Path) -> temporal_client.WorkflowHistory:
    """A history from a JSON file (Web UI download or ``temporal workflow show -o json``).

    Raises:
        errors.ConfigError: the file is missing or is not a history.
    """
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise errors.ConfigError(f"{path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise errors.ConfigError(f"{path}: not JSON: {exc}") from None
    if isinstance(data, list):
        data = {"events": data}
    if not isinstance(data, dict) or not data.get("events"):
        raise errors.ConfigError(f"{path}: not a workflow history (no 'events')")
    try:
        return temporal_client.WorkflowHistory.from_json(path.stem, data)
    except (ValueError, KeyError, TypeError) as exc:
        raise errors.ConfigError(f"{path}: not a workflow history: {exc}") from None


async def fetch(
    client: temporal_client.Client, workflow_id: str
) -> temporal_client.WorkflowHistory:
    """The history of a workflow's latest run.

    Raises:
        errors.NotFoundError: there is no such workflow.
    """
    try:
        return await client.get_workflow_handle(workflow_id).fetch_history()
    except temporal_service.RPCError as exc:
        if exc.status is temporal_service.RPCStatusCode.NOT_FOUND:
            raise errors.NotFoundError(f"no workflow {workflow_id}") from None
        raise errors.DependencyError(f"Temporal refused: {exc.message}") from None


def since_query(now: datetime, window: timedelta, extra: str = "") -> str:
    """Homeostat's workflows that ran within ``window`` before ``now`` (closed or running)."""
    since = (now - window).strftime("%Y-%m-%dT%H:%M:%SZ")
    types = " OR ".join(
        f"WorkflowType = '{name}'"
        for name in (contract.RESOURCE_WORKFLOW, contract.REMEDIATION_WORKFLOW)
    )
    query = f"({types}) AND (ExecutionStatus = 'Running' OR CloseTime >= '{since}')"
    return f"{query} AND ({extra})" if extra else query


async def listed(
    client: temporal_client.Client, query: str, *, limit: int | None = None
) -> AsyncIterator[temporal_client.WorkflowHistory]:
    """The history of every run the visibility query selects.

    Raises:
        errors.DependencyError: Temporal refused the query.
    """
    try:
        async for execution in client.list_workflows(query, limit=limit):
            handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
            yield await handle.fetch_history()
    except temporal_service.RPCError as exc:
        raise errors.DependencyError(f"Temporal refused the query: {exc.message}") from None


async def replay_all(
    replayer: HistoryReplayer,
    histories: Iterable[temporal_client.WorkflowHistory]
    | AsyncIterator[temporal_client.WorkflowHistory],
) -> AsyncIterator[ReplayResult]:
    """Replay each history in turn."""
    if isinstance(histories, AsyncIterator):
        async for history in histories:
            yield await replayer.replay(history)
    else:
        for history in histories:
            yield await replayer.replay(history)
