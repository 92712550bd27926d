"""Observations in, transitions dispatched: the one path every source takes.

The rules engine is pure and single-threaded; every call into it happens on the event
loop, through this class. A source awaits ``ingest`` and acknowledges upstream only when
it returned: by then Temporal accepted every transition the observations produced.
"""

from __future__ import annotations

import collections
import operator
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from controller import dispatch
from controller.domain import observations, transitions

log = structlog.get_logger(__name__)
_SOURCE = operator.attrgetter("source")


class Engine(Protocol):
    """What the pipeline needs of the rules engine (``rules.engine.Engine`` fits)."""

    def observe(self, observation: observations.Observation) -> list[transitions.Transition]:
        """Feed one event-time observation."""

    def tick(self, now: datetime) -> list[transitions.Transition]:
        """Let time pass: staleness and ``keep_firing_for`` expire."""


class Counters(Protocol):
    """The counters the pipeline reports to (``observability.metrics.Metrics`` fits)."""

    @property
    def observations(self) -> Any:
        """Counter of observations by source."""

    @property
    def transitions(self) -> Any:
        """Counter of transitions by rule and kind."""


class Pipeline:
    """Runs observations through the engine and hands the transitions to the dispatcher."""

    def __init__(
        self,
        *,
        engine: Engine,
        dispatcher: dispatch.Dispatcher,
        metrics: Counters | None = None,
    ) -> None:
        """Wire ``engine`` to ``dispatcher``."""
        self.engine = engine
        self.dispatcher = dispatcher
        self._metrics = metrics

    def evaluate(self, batch: Sequence[observations.Observation]) -> list[transitions.Transition]:
        """Run ``batch`` through the engine without dispatching (rebuilding state)."""
        found: list[transitions.Transition] = []
        for observation in batch:
            found.extend(self.engine.observe(observation))
        return found

    async def ingest(
        self,
        batch: Sequence[observations.Observation],
        *,
        deadline: timedelta | None = None,
    ) -> list[transitions.Transition]:
        """Evaluate ``batch`` and return once every resulting transition was handed off.

        Raises:
            dispatch.DispatchError: not handed off (see ``Dispatcher.dispatch``).
        """
        found = self.evaluate(batch)
        if self._metrics is not None:
            for source, count in collections.Counter(map(_SOURCE, batch)).items():
                self._metrics.observations.labels(source=source.value).inc(count)
        await self.send(found, deadline=deadline)
        return found

    async def tick(
        self, now: datetime, *, deadline: timedelta | None = None
    ) -> list[transitions.Transition]:
        """Let time pass in the engine and dispatch what expired."""
        found = self.engine.tick(now)
        await self.send(found, deadline=deadline)
        return found

    async def send(
        self, found: Sequence[transitions.Transition], *, deadline: timedelta | None = None
    ) -> None:
        """Dispatch transitions that the caller computed, counting them."""
        for transition in found:
            log.info(
                "transition",
                kind=transition.kind.value,
                rule=transition.rule,
                resource=transition.resource,
                episode=transition.episode,
            )
            if self._metrics is not None:
                self._metrics.transitions.labels(
                    rule=transition.rule, kind=transition.kind.value
                ).inc()
        await self.dispatcher.dispatch(found, deadline=deadline)
