"""Steer a resource's workflow: approve, deny, silence, unsilence, pause, resume, reset.

Every call is a Temporal update of the resource workflow carrying the caller's
authenticated ``Identity``, so the change lands in the workflow's history under that name
and channel. The workflow's validators decide what is allowed; their refusals come back as
errors, never as success:

    temporalio.service.RPCError NOT_FOUND       ->  errors.NotFoundError
    WorkflowUpdateFailedError (NotAnApprover)   ->  errors.ForbiddenError
    WorkflowUpdateFailedError (anything else)   ->  errors.RefusedError
    any other RPCError, an update cut short     ->  errors.DependencyError

``translated`` is that boundary; nothing else here catches a temporalio exception.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio import client as temporal_client
from temporalio import exceptions as temporal_exceptions
from temporalio import service as temporal_service

from controller import errors
from controller.domain import approvals, contract, resources
from controller.operations import identity as identity_module
from controller.workflows import resource_effects, resource_io

DEFAULT_TIMEOUT = timedelta(seconds=15)
"""How long one steering call waits for the resource workflow to answer."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Decided:
    """An approve or deny handed to the episode's remediation workflow.

    Attributes:
        resource: the resource whose workflow took the decision.
        episode: the episode.
        approved: approve or deny.
        by: the name it is recorded under.
        channel: how that name was authenticated.
        workflow_id: the remediation workflow that received it.
    """

    resource: resources.ResourceKey
    episode: resources.EpisodeId
    approved: bool
    by: str
    channel: approvals.Channel
    workflow_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Steered:
    """A resource's automation after an operator's change, and who made it.

    Attributes:
        resource: the resource.
        phase: where it stands now.
        silenced_until: automation is silenced until then.
        silence_reason: why, and who silenced it.
        paused: automation is paused until resumed.
        pause_reason: why, and who paused it.
        cooldowns: plans cooling down, and until when.
        budget_used: remediations counted against plan budgets now.
        by: the name the change is recorded under.
        channel: how that name was authenticated.
    """

    resource: resources.ResourceKey
    phase: resource_io.Phase
    silenced_until: datetime | None = None
    silence_reason: str = ""
    paused: bool = False
    pause_reason: str = ""
    cooldowns: tuple[resource_io.Cooldown, ...] = ()
    budget_used: int = 0
    by: str
    channel: approvals.Channel

    @classmethod
    def of(cls, state: resource_io.ResourceState, who: identity_module.Identity) -> Steered:
        """The summary of ``state`` after ``who``'s change."""
        return cls(
            resource=state.resource,
            phase=state.phase,
            silenced_until=state.silenced_until,
            silence_reason=_reason_by(state.silence_reason, state.silenced_by),
            paused=state.paused,
            pause_reason=_reason_by(state.pause_reason, state.paused_by),
            cooldowns=state.cooldowns,
            budget_used=len(state.budget),
            by=who.name,
            channel=who.channel,
        )


def _reason_by(reason: str, by: str) -> str:
    """``reason by who`` (the state keeps them apart since it records who on its own)."""
    return " by ".join(part for part in (reason, by) if part)


@contextlib.contextmanager
def translated(what: str) -> Iterator[None]:
    """Translate temporalio's exceptions raised inside into ``errors.OperatorError`` & co."""
    try:
        yield
    except temporal_client.WorkflowUpdateFailedError as exc:
        cause = exc.cause
        message = cause.message if isinstance(cause, temporal_exceptions.FailureError) else str(exc)
        if (
            isinstance(cause, temporal_exceptions.ApplicationError)
            and cause.type == contract.NOT_AN_APPROVER
        ):
            raise errors.ForbiddenError(message) from None
        raise errors.RefusedError(message) from None
    except temporal_client.WorkflowUpdateRPCTimeoutOrCancelledError:
        raise errors.DependencyError(
            f"{what}: the resource's workflow did not answer in time (is a worker running?)"
        ) from None
    except temporal_service.RPCError as exc:
        if exc.status is temporal_service.RPCStatusCode.NOT_FOUND:
            raise errors.NotFoundError(f"{what}: not found (it never fired, or ended)") from None
        if exc.status is temporal_service.RPCStatusCode.DEADLINE_EXCEEDED:
            raise errors.DependencyError(f"{what}: Temporal did not answer in time") from None
        raise errors.DependencyError(f"{what}: Temporal refused: {exc.message}") from None


class Steering:
    """Operator changes to resource workflows, through one Temporal client."""

    def __init__(
        self, client: temporal_client.Client, *, timeout: timedelta = DEFAULT_TIMEOUT
    ) -> None:
        """Steer through ``client`` (with Homeostat's data converter).

        ``timeout`` bounds each call: an update waits for a worker to run the resource
        workflow, and without one it would wait for Temporal's own limit.
        """
        self._client = client
        self._timeout = timeout

    def _handle(self, resource: resources.ResourceKey) -> temporal_client.WorkflowHandle[Any, Any]:
        return self._client.get_workflow_handle(resources.resource_workflow_id(resource))

    async def episode_resource(self, episode: resources.EpisodeId) -> resources.ResourceKey:
        """The resource an episode belongs to, from its remediation workflow.

        Raises:
            errors.NotFoundError: the episode has no remediation workflow.
        """
        workflow_id = resources.remediation_workflow_id(episode)
        with translated(f"episode {episode}"):
            described = await self._client.get_workflow_handle(workflow_id).describe(
                rpc_timeout=self._timeout
            )
        resource = described.typed_search_attributes.get(resource_effects.RESOURCE)
        if not resource:
            raise errors.NotFoundError(f"episode {episode}: its workflow names no resource")
        return resources.ResourceKey(resource)

    async def decide(
        self,
        *,
        episode: resources.EpisodeId,
        approve: bool,
        who: identity_module.Identity,
        comment: str = "",
        resource: resources.ResourceKey | None = None,
        update_id: str | None = None,
    ) -> Decided:
        """Approve or deny the approval step ``episode``'s remediation waits at.

        Args:
            episode: the episode.
            approve: approve, or deny.
            who: the authenticated caller; must be one of the step's approvers.
            comment: why (recorded).
            resource: the episode's resource, when the caller knows it.
            update_id: the update's id: the same id twice is one decision (Slack's retries).

        Raises:
            errors.ForbiddenError: ``who`` is not one of the step's approvers.
            errors.RefusedError: the episode is not awaiting an answer (any more).
            errors.NotFoundError: no such resource or episode.
        """
        owner = resource or await self.episode_resource(episode)
        update = contract.UPDATE_APPROVE if approve else contract.UPDATE_DENY
        request = resource_io.DecisionRequest(
            episode=episode, by=who.name, comment=comment, channel=who.channel, groups=who.groups
        )
        with translated(f"{update} {episode} of {owner}"):
            ack: resource_io.DecisionAck = await self._handle(owner).execute_update(
                update,
                request,
                id=update_id,
                result_type=resource_io.DecisionAck,
                rpc_timeout=self._timeout,
            )
        return Decided(
            resource=owner,
            episode=ack.episode,
            approved=approve,
            by=who.name,
            channel=who.channel,
            workflow_id=ack.workflow_id,
        )

    async def silence(
        self,
        resource: resources.ResourceKey,
        *,
        until: datetime,
        who: identity_module.Identity,
        reason: str = "",
    ) -> Steered:
        """Record episodes only, without remediating or paging, until ``until``."""
        request = resource_io.SilenceRequest(
            until=until, by=who.name, reason=reason, channel=who.channel
        )
        return await self._state_update(contract.UPDATE_SILENCE, resource, request, who)

    async def unsilence(
        self, resource: resources.ResourceKey, *, who: identity_module.Identity, reason: str = ""
    ) -> Steered:
        """End a silence now."""
        return await self._operate(contract.UPDATE_UNSILENCE, resource, who, reason)

    async def pause(
        self, resource: resources.ResourceKey, *, who: identity_module.Identity, reason: str = ""
    ) -> Steered:
        """Pause automation until resumed."""
        return await self._operate(contract.UPDATE_PAUSE, resource, who, reason)

    async def resume(
        self, resource: resources.ResourceKey, *, who: identity_module.Identity, reason: str = ""
    ) -> Steered:
        """Resume automation."""
        return await self._operate(contract.UPDATE_RESUME, resource, who, reason)

    async def reset(
        self,
        resource: resources.ResourceKey,
        *,
        who: identity_module.Identity,
        cooldown: bool = True,
        budget: bool = True,
        reason: str = "",
    ) -> Steered:
        """End the resource's cooldowns and/or forget its budget use now."""
        request = resource_io.ResetRequest(
            cooldown=cooldown, budget=budget, by=who.name, reason=reason, channel=who.channel
        )
        return await self._state_update(contract.UPDATE_RESET, resource, request, who)

    async def _operate(
        self,
        update: str,
        resource: resources.ResourceKey,
        who: identity_module.Identity,
        reason: str,
    ) -> Steered:
        request = resource_io.OperatorRequest(by=who.name, reason=reason, channel=who.channel)
        return await self._state_update(update, resource, request, who)

    async def _state_update(
        self,
        update: str,
        resource: resources.ResourceKey,
        request: object,
        who: identity_module.Identity,
    ) -> Steered:
        with translated(f"{update} {resource}"):
            state: resource_io.ResourceState = await self._handle(resource).execute_update(
                update, request, result_type=resource_io.ResourceState, rpc_timeout=self._timeout
            )
        return Steered.of(state, who)
