"""Observations in, transitions dispatched: the one path every source takes.

The rules engine is pure and single-threaded; every call into it happens on the event
loop, through this class. A source awaits ``ingest`` and acknowledges upstream only when
it returned: by then Temporal accepted every transition the observations produced.

``ingest`` first admits the whole batch (``admission``): a refused observation fails the
call before the engine saw any of it; refusals are counted in
``homeostat_observations_refused_total{reason}``, and so is an observation that makes the
engine raise (a defect, reason ``error``), while the others are evaluated all the same.
Every observation the engine drops (late, duplicate, no valid resource...) is logged at
debug level here and counted by the engine (``homeostat_observations_ignored_total``).
"""

from __future__ import annotations

import asyncio
import collections
import operator
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from controller import dispatch
from controller.domain import observations, transitions
from controller.ingest import admission

log = structlog.get_logger(__name__)
_SOURCE = operator.attrgetter("source")


class Engine(Protocol):
    """What the pipeline needs of the rules engine (``rules.engine.Engine`` fits)."""

    def observe_batch(
        self,
        batch: Sequence[observations.Observation],
        *,
        on_error: Callable[[observations.Observation, Exception], None] | None = None,
    ) -> list[transitions.Transition]:
        """Feed event-time observations in order; ``on_error`` is told of one that raised."""

    def tick(self, now: datetime) -> list[transitions.Transition]:
        """Let time pass: staleness and ``keep_firing_for`` expire."""

    @property
    def stats(self) -> Mapping[str, int]:
        """Observations ignored so far, by reason (``late``, ``duplicate`` ...)."""

    def revert(self, refused: Sequence[transitions.Transition]) -> None:
        """Undo the episodes whose ``fired`` Temporal refused."""


class Hold(Protocol):
    """Waits until a batch may enter the engine (``seeding.Seeder.hold`` fits)."""

    def __call__(
        self, batch: Sequence[observations.Observation], *, deadline: timedelta | None
    ) -> Awaitable[None]:
        """Return once ``batch`` may be evaluated; raise when it may not within ``deadline``."""


class Counters(Protocol):
    """The counters the pipeline reports to (``observability.metrics.Metrics`` fits)."""

    @property
    def observations(self) -> Any:
        """Counter of observations by source."""

    @property
    def transitions(self) -> Any:
        """Counter of transitions by rule and kind."""

    @property
    def observations_refused(self) -> Any:
        """Counter of observations refused entry (or failing the engine), by reason."""


EVALUATION_ERRORS = frozenset({"duplicate_labelset"})
"""Drop reasons that are a failed rule evaluation (logged as a warning, not at debug)."""


def drop_reporter() -> Callable[[str, str, observations.Observation | None], None]:
    """A callback for the engine's ``on_drop``: log the drop, with its reason, at debug level.

    The engine counts its drops itself (``Engine.stats``, exported at scrape time).
    """

    def dropped(reason: str, rule: str, observation: observations.Observation | None) -> None:
        if reason in EVALUATION_ERRORS:
            log.warning("rule_evaluation_failed", reason=reason, rule=rule)
        elif observation is None:
            log.debug("observation_dropped", reason=reason, rule=rule)
        else:
            log.debug(
                "observation_dropped",
                reason=reason,
                rule=rule,
                source=observation.source.value,
                stream=observation.stream,
                at=observation.at.isoformat(),
            )

    return dropped


class Pipeline:
    """Runs observations through the engine and hands the transitions to the dispatcher."""

    def __init__(
        self,
        *,
        engine: Engine,
        dispatcher: dispatch.Dispatcher,
        metrics: Counters | None = None,
        clock: Callable[[], datetime] | None = None,
        limits: admission.Limits | None = None,
        hold: Hold | None = None,
    ) -> None:
        """Wire ``engine`` to ``dispatcher``.

        Args:
            engine: the rules engine.
            dispatcher: where transitions go.
            metrics: where to count observations, transitions and drops.
            clock: the receive time of what ``ingest`` admits; without one nothing is
                checked against it.
            limits: what may enter the engine.
            hold: awaited with each admitted batch and its ``deadline`` before the
                engine sees it (``seeding.Seeder.hold``: webhook events wait until the
                engine is seeded with the open episodes).
        """
        self.engine = engine
        self.dispatcher = dispatcher
        self._metrics = metrics
        self._clock = clock
        self.limits = limits or admission.Limits()
        self._hold = hold
        self._unsettled: set[asyncio.Future[None]] = set()
        """One per ``send`` whose transitions are not all accepted (or refused) yet."""

    def admit(self, batch: Sequence[observations.Observation]) -> None:
        """Check that every observation of ``batch`` may enter the engine.

        Raises:
            errors.PayloadError: one may not; ``field`` names it (``[index]...`` in a batch
                of several) and the message says why. Nothing was evaluated.
        """
        if self._clock is None:
            return
        now = self._clock()
        for index, observation in enumerate(batch):
            refused = admission.refusal(observation, now=now, limits=self.limits)
            if refused is None:
                continue
            self.count_refusal(refused, observation)
            error = refused.error
            if len(batch) > 1:
                raise type(error)(f"[{index}].{error.field}", error.message)
            raise error

    def count_refusal(
        self, refused: admission.Refusal, observation: observations.Observation
    ) -> None:
        """Count and log one observation that was refused entry."""
        if self._metrics is not None:
            self._metrics.observations_refused.labels(reason=refused.reason.value).inc()
        log.warning(
            "observation_refused",
            reason=refused.reason.value,
            source=observation.source.value,
            stream=observation.stream,
            error=refused.error.message,
        )

    def evaluate(self, batch: Sequence[observations.Observation]) -> list[transitions.Transition]:
        """Run ``batch`` through the engine without dispatching (rebuilding state).

        An observation that makes the engine raise is logged and counted (reason
        ``error``); the rest of the batch is evaluated all the same.
        """
        return self.engine.observe_batch(batch, on_error=self._failed)

    def _failed(self, observation: observations.Observation, error: Exception) -> None:
        """A defect: one observation made the engine raise; the others go on."""
        log.error(
            "observation_failed",
            source=observation.source.value,
            stream=observation.stream,
            exc_info=error,
        )
        if self._metrics is not None:
            self._metrics.observations_refused.labels(reason="error").inc()

    async def ingest(
        self,
        batch: Sequence[observations.Observation],
        *,
        deadline: timedelta | None = None,
        admitted: bool = False,
        dropped: collections.Counter[str] | None = None,
    ) -> list[transitions.Transition]:
        """Admit and evaluate ``batch``; return once every resulting transition was handed off.

        Args:
            batch: the observations, in the order they arrived.
            deadline: how long to wait for Temporal (see ``Dispatcher.dispatch``).
            admitted: the source already admitted each observation (Kafka does, to
                dead-letter one message rather than fail its batch).
            dropped: when given, receives how often the engine ignored an observation of
                the batch, by reason (a webhook tells its sender).

        Raises:
            errors.PayloadError: an observation may not enter (see ``admit``).
            dispatch.DispatchError: not handed off (see ``Dispatcher.dispatch``); or,
                ``DispatchTimeoutError``, held beyond ``deadline`` (see ``hold``).
        """
        if not admitted:
            self.admit(batch)
        if self._hold is not None:
            await self._hold(batch, deadline=deadline)
        before = collections.Counter(self.engine.stats) if dropped is not None else None
        found = self.evaluate(batch)
        if dropped is not None and before is not None:
            dropped.update(collections.Counter(self.engine.stats) - before)
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

    async def settled(self) -> None:
        """Wait until every transition the engine made so far was accepted or refused.

        Whatever made them: observations of any source, or the clock (``tick``). Kafka
        waits for this before it commits a batch's offsets; see ``ingest.kafka``.
        """
        waiting = list(self._unsettled)
        if waiting:
            await asyncio.wait(waiting)

    async def send(
        self, found: Sequence[transitions.Transition], *, deadline: timedelta | None = None
    ) -> None:
        """Dispatch transitions that the caller computed, counting them.

        A transition Temporal refused for good does not stay in the engine: its episode is
        undone (``Engine.revert``), so the sender's retry of the same event starts it again.

        The transitions count as unsettled (``settled``) from the moment the engine made
        them: this is called right after the engine, before anything else can run.

        Raises:
            dispatch.DispatchError: not handed off (see ``Dispatcher.dispatch``).
        """
        if not found:
            return
        unsettled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._unsettled.add(unsettled)
        unsettled.add_done_callback(self._unsettled.discard)
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
        try:
            await self.dispatcher.dispatch(found, deadline=deadline, settled=unsettled)
        except dispatch.DispatchRejectedError as exc:
            self.engine.revert(exc.refused)
            raise
