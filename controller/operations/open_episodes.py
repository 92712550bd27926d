"""The episodes resource workflows hold open, read from Temporal visibility: no worker, no query.

A starting ingest seeds its rules engine with them (``rules.seeding``): webhook and GitLab
rules have no stream to read back after a restart. One ``ListWorkflowExecutions`` call
per 1,000 resources, over the running resource workflows whose phase says an episode may
be open (not ``healthy`` nor ``cooling_down``); each memo (``workflows.resource_memo``) is
read as plain JSON, field by field, like ``views`` reads lists, so 10,000 resources cost
ten calls and no typed decoding. A workflow started before memos existed has none and
gives nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from temporalio import client as temporal_client
from temporalio import service as temporal_service
from temporalio.api.workflow.v1 import message_pb2 as workflow_pb

from controller import errors
from controller.domain import contract, resources, transitions
from controller.operations import payload_fields, views
from controller.workflows import resource_io, resource_memo

_QUIET: Final = frozenset({resource_io.Phase.HEALTHY, resource_io.Phase.COOLING_DOWN})
"""Phases with no unresolved episode (see ``Ledger.compute_phase``)."""


def visibility_query() -> str:
    """The running resource workflows that may hold an unresolved episode."""
    phases = ", ".join(f"'{phase.value}'" for phase in resource_io.Phase if phase not in _QUIET)
    return (
        f"WorkflowType = '{contract.RESOURCE_WORKFLOW}' AND ExecutionStatus = 'Running' "
        f"AND HomeostatPhase IN ({phases})"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenEpisodes:
    """What the memos of the resource workflows say is open.

    Attributes:
        episodes: every unresolved episode the memos list.
        resources: the resource workflows read.
        unlisted: open episodes the memos count but do not list (a memo lists the newest
            ``resource_memo.EPISODES_KEPT`` of a resource).
    """

    episodes: tuple[transitions.OpenEpisode, ...]
    resources: int
    unlisted: int


async def read(client: temporal_client.Client) -> OpenEpisodes:
    """The unresolved episodes of every running resource workflow, from their memos.

    Raises:
        errors.DependencyError: Temporal did not answer or refused the list call.
    """
    found: list[transitions.OpenEpisode] = []
    count = unlisted = 0
    try:
        async for page in views.pages(client, visibility_query()):
            for info in page:
                count += 1
                episodes, left_out = _from_memo(info)
                found += episodes
                unlisted += left_out
    except temporal_service.RPCError as exc:
        raise errors.DependencyError(
            f"Temporal refused to list the resource workflows: {exc.message}"
        ) from None
    except RuntimeError as exc:  # a lazy client that cannot connect
        raise errors.DependencyError(f"cannot reach Temporal: {exc}") from None
    return OpenEpisodes(episodes=tuple(found), resources=count, unlisted=unlisted)


def _from_memo(
    info: workflow_pb.WorkflowExecutionInfo,
) -> tuple[list[transitions.OpenEpisode], int]:
    """The unresolved episodes one workflow's memo lists, and how many it left out."""
    payload = info.memo.fields.get(resource_memo.MEMO_KEY)
    if payload is None:
        return [], 0
    memo = payload_fields.obj(payload_fields.decode(payload))
    resource = resources.resource_key_of(info.execution.workflow_id)
    listed = memo.get("episodes")
    if not isinstance(listed, list):
        listed = []
    found = []
    for item in listed:
        episode = _episode(resource, payload_fields.obj(item))
        if episode is not None:
            found.append(episode)
    total = payload_fields.integer(memo.get("open_episodes")) or 0
    return found, max(0, total - len(listed))


def _episode(
    resource: resources.ResourceKey, item: dict[str, Any]
) -> transitions.OpenEpisode | None:
    rule = payload_fields.text(item.get("rule"))
    episode = payload_fields.text(item.get("episode"))
    started_at = payload_fields.moment(item.get("started_at"))
    if item.get("resolved") is True or not rule or not episode or started_at is None:
        return None
    return transitions.OpenEpisode(
        rule=rule,
        resource=resource,
        episode=resources.EpisodeId(episode),
        started_at=started_at,
        groups=_groups(item.get("groups")),
    )


def _groups(value: Any) -> tuple[transitions.GroupValues, ...]:
    """``[[[name, value], ...], ...]`` as group values; malformed entries are left out."""
    if not isinstance(value, list):
        return ()
    found = []
    for group in value:
        if not isinstance(group, list):
            continue
        pairs = tuple(
            (pair[0], pair[1])
            for pair in group
            if isinstance(pair, list)
            and len(pair) == 2  # noqa: PLR2004 - a (name, value) pair
            and isinstance(pair[0], str)
            and isinstance(pair[1], str)
        )
        if len(pairs) == len(group):
            found.append(pairs)
    return tuple(found)
