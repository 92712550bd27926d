"""The ``start_episode`` activity: start an episode's remediation workflow, eagerly.

The resource workflow runs it as a local activity once it decided to remediate (or to
escalate), in the same workflow task. The start asks for eager execution: when this worker
polls the task queue and has a free slot, the server answers the start with the episode's
first workflow task and this worker runs it at once. A child workflow, which it replaces,
waits for the server twice before its first step: to create the child, then to hand its
first task to a worker (about 80 ms of the path from alert to first action on the dev
server here; ``bench/analysis.md``).

Idempotent: the workflow id is the episode's and a closed one is never started again
(``REJECT_DUPLICATE``), a running one never started twice (``FAIL``). A retry (after a
timeout, or after the resource workflow's task failed past the start) finds the workflow
started; the memo key ``contract.MEMO_STARTED_BY`` says whether the same run of the
resource workflow started it (the episode is its own: ``started``) or another one did (the
episode was remediated before: ``exists``).
"""

from __future__ import annotations

from temporalio import activity, common, service
from temporalio import client as temporal_client
from temporalio.exceptions import WorkflowAlreadyStartedError

from controller import errors
from controller.activities import failures
from controller.domain import contract
from controller.workflows import activity_io, resource_effects
from controller.workflows import remediation_io as rio

_PERMANENT = frozenset(
    {
        service.RPCStatusCode.INVALID_ARGUMENT,
        service.RPCStatusCode.NOT_FOUND,
        service.RPCStatusCode.PERMISSION_DENIED,
        service.RPCStatusCode.FAILED_PRECONDITION,
        service.RPCStatusCode.UNIMPLEMENTED,
    }
)
"""Refusals a retry cannot change (a payload too large, an unknown namespace ...)."""


@activity.defn(name=activity_io.START_EPISODE)
async def start_episode(start: rio.StartEpisode) -> rio.EpisodeStarted:
    """Start the remediation workflow of ``start``; say whether it is this run's."""
    client = activity.client()
    request = start.request
    with failures.reported():
        try:
            await client.start_workflow(
                contract.REMEDIATION_WORKFLOW,
                request,
                id=start.workflow_id,
                task_queue=activity.info().task_queue,
                id_reuse_policy=common.WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=common.WorkflowIDConflictPolicy.FAIL,
                search_attributes=resource_effects.episode_attributes(
                    request.resource, request.fired
                ),
                memo={contract.MEMO_STARTED_BY: start.started_by},
                request_eager_start=True,
            )
        except WorkflowAlreadyStartedError:
            mine = await _started_by(client, start.workflow_id) == start.started_by
            return _answer(start, rio.StartOutcome.STARTED if mine else rio.StartOutcome.EXISTS)
        except service.RPCError as exc:
            raise _rpc_failure(exc, start.workflow_id) from exc
    activity.logger.debug("episode started: %s", start.workflow_id)
    return _answer(start, rio.StartOutcome.STARTED)


async def _started_by(client: temporal_client.Client, workflow_id: str) -> str:
    """Who started ``workflow_id``: its ``MEMO_STARTED_BY`` (empty for a child's)."""
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
        started_by = await description.memo_value(contract.MEMO_STARTED_BY, "", type_hint=str)
    except service.RPCError as exc:
        raise _rpc_failure(exc, workflow_id) from exc
    return started_by


def _rpc_failure(exc: service.RPCError, workflow_id: str) -> errors.RemediationError:
    message = f"starting {workflow_id}: {exc.status.name}: {exc.message}"
    if exc.status in _PERMANENT:
        return errors.PermanentError(message)
    return errors.TransientError(message)


def _answer(start: rio.StartEpisode, outcome: rio.StartOutcome) -> rio.EpisodeStarted:
    request = start.request
    return rio.EpisodeStarted(
        outcome=outcome,
        episode=request.episode,
        workflow_id=start.workflow_id,
        plan=request.plan.name,
        mode=request.mode,
        reason=request.reason,
    )
