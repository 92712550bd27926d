"""Gauges read from Temporal's visibility: resources by phase, pending approvals, open episodes.

A level ("how many resources wait for an approval now") cannot be counted up and down by
workflows across restarts; Temporal's visibility store knows it. Every replica that runs
a worker refreshes these gauges on an interval, so dashboards take ``max`` over replicas.
Search attributes (not queries) answer: listing needs no worker and replays nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import structlog
from temporalio import client as temporal_client
from temporalio import service as temporal_service
from temporalio.common import SearchAttributeKey

from controller.domain import contract
from controller.observability import metrics as metrics_module

log = structlog.get_logger(__name__)

_RULE = SearchAttributeKey.for_keyword("HomeostatRule")
_SEVERITY = SearchAttributeKey.for_keyword("HomeostatSeverity")
_RESOURCES = f'WorkflowType = "{contract.RESOURCE_WORKFLOW}" AND ExecutionStatus = "Running"'
OPEN_EPISODES = f'WorkflowType = "{contract.REMEDIATION_WORKFLOW}" AND ExecutionStatus = "Running"'
"""The visibility query of running remediations: one per episode being remediated."""
AWAITING_APPROVAL = "awaiting_approval"


class VisibilityGauges:
    """Refreshes the visibility gauges of ``metrics`` from ``client``."""

    def __init__(
        self,
        client: temporal_client.Client,
        metrics: metrics_module.Metrics,
        *,
        phases: Iterable[str],
        open_episodes_limit: int,
    ) -> None:
        """Count resources in each of ``phases``; list at most ``open_episodes_limit`` episodes."""
        self._client = client
        self._metrics = metrics
        self._phases = tuple(phases)
        self._limit = open_episodes_limit
        self._shown: set[tuple[str, str, str]] = set()

    async def refresh(self) -> None:
        """Query visibility once and set the gauges."""
        counts = await asyncio.gather(
            *(
                self._client.count_workflows(f'{_RESOURCES} AND HomeostatPhase = "{phase}"')
                for phase in self._phases
            )
        )
        for phase, count in zip(self._phases, counts, strict=True):
            self._metrics.resources.labels(phase=phase).set(count.count)
            if phase == AWAITING_APPROVAL:
                self._metrics.approvals_pending.set(count.count)
        shown: dict[tuple[str, str, str], datetime] = {}
        if self._limit:
            async for execution in self._client.list_workflows(OPEN_EPISODES, limit=self._limit):
                attributes = execution.typed_search_attributes
                key = (execution.id, attributes.get(_RULE) or "", attributes.get(_SEVERITY) or "")
                shown[key] = execution.start_time
        for gone in self._shown - set(shown):
            self._metrics.open_episodes.remove(*gone)
        for key, started in shown.items():
            self._metrics.open_episodes.labels(*key).set(started.astimezone(UTC).timestamp())
        self._shown = set(shown)

    async def run(self, interval: timedelta) -> None:
        """Refresh every ``interval`` until cancelled; a failed refresh is logged and retried."""
        while True:
            try:
                await self.refresh()
            except (temporal_service.RPCError, RuntimeError) as exc:
                log.warning("visibility_refresh_failed", error=str(exc))
            await asyncio.sleep(interval.total_seconds())
