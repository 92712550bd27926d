"""The episode's timeline as the demo prints it at the end: alert, steps, outcome, resolve.

Read from Temporal: the remediation workflow's input (the fired alert) and result (every
step's record), and the resource workflow's state (when the episode was closed).
"""

from __future__ import annotations

import json
from datetime import datetime

from temporalio import client as temporal_client
from temporalio import service as temporal_service

from controller.domain import contract, resources
from controller.workflows import remediation_io, resource_io


async def render(client: temporal_client.Client, episode: resources.EpisodeId) -> str:
    """The episode's timeline, one line per event, oldest first."""
    workflow_id = resources.remediation_workflow_id(episode)
    handle = client.get_workflow_handle(workflow_id, result_type=remediation_io.RemediationResult)
    request = await _start_input(client, workflow_id)
    result: remediation_io.RemediationResult = await handle.result()
    lines = [f"History of episode {episode} (workflow {workflow_id}):"]
    if request is not None:
        fired = request.fired
        summary = fired.annotations.get("summary", "")
        lines.append(
            _line(
                fired.started_at,
                "alert",
                f"{fired.rule} fired for {fired.resource} ({fired.severity.value}): {summary}",
            )
        )
        lines.append(
            _line(fired.at, "plan", f"{request.plan.name} ({request.mode.value}) {request.reason}")
        )
    for step in result.steps:
        facts = json.dumps(
            {key: value for key, value in step.output.items() if key != "log_ref"}, default=str
        )
        text = f"{step.step} {step.outcome.value}: {step.summary}  {facts}"
        lines.append(_line(step.started_at, step.kind, text))
    lines.append(f"  {'':12}  {'outcome':9} {result.outcome.value}: {result.message}")
    closed = await _closed(client, request.resource if request else None, episode)
    if closed is not None:
        lines.append(_line(closed.closed_at, "resolved", f"episode closed ({closed.status.value})"))
    return "\n".join(lines)


def _line(at: datetime, kind: str, text: str) -> str:
    return f"  {at:%H:%M:%S.%f}"[:15] + f"  {kind:9} {text}".rstrip()


async def _start_input(
    client: temporal_client.Client, workflow_id: str
) -> remediation_io.RemediationInput | None:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    for event in history.events:
        attributes = event.workflow_execution_started_event_attributes
        if attributes.input.payloads:
            decoded = await client.data_converter.decode(
                attributes.input.payloads, [remediation_io.RemediationInput]
            )
            found: remediation_io.RemediationInput = decoded[0]
            return found
    return None


async def _closed(
    client: temporal_client.Client,
    resource: resources.ResourceKey | None,
    episode: resources.EpisodeId,
) -> resource_io.OutcomeRecord | None:
    if resource is None:
        return None
    handle = client.get_workflow_handle(resources.resource_workflow_id(resource))
    try:
        state: resource_io.ResourceState = await handle.query(
            contract.QUERY_STATE, result_type=resource_io.ResourceState
        )
    except (temporal_service.RPCError, temporal_client.WorkflowQueryFailedError):
        return None
    return next((done for done in state.outcomes if done.episode == episode), None)
