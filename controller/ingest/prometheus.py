"""Prometheus polling: evaluate each Prometheus rule's ``expr`` every group interval.

Evaluation times are aligned to the interval (``floor(now / interval) * interval``), like
Prometheus aligns its own rule groups, so two replicas or a restarted process evaluate
at the same instants and derive the same episode ids.

On start, each rule's pending state is rebuilt from ``query_range`` over its ``for`` and
``keep_firing_for``: a restart half-way through ``for`` fires on time, not a full ``for``
later (Prometheus itself restores only ``for`` of ten minutes or more).

A failed query is retried with backoff until the next evaluation time and counted; it is
never taken as "no series": the rule is simply not evaluated at that instant, so an
unreachable Prometheus never resolves an episode.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog

from controller import errors
from controller.domain import transitions
from controller.ingest import pipeline

log = structlog.get_logger(__name__)


class Sample(Protocol):
    """One series of a query result."""

    @property
    def labels(self) -> Mapping[str, str]:
        """Series labels."""

    @property
    def value(self) -> float:
        """Sample value."""


class Series(Protocol):
    """One series of a range query's result."""

    @property
    def labels(self) -> Mapping[str, str]:
        """Series labels."""

    @property
    def points(self) -> Sequence[tuple[datetime, float]]:
        """(time, value) pairs, oldest first."""


class Querier(Protocol):
    """What the poller needs of a Prometheus client (``ingest.promql.Client`` fits)."""

    def instant(self, query: str, *, at: datetime) -> Sequence[Sample]:
        """The result of ``query`` evaluated at ``at``."""

    def range(
        self, query: str, *, start: datetime, end: datetime, step: timedelta
    ) -> Sequence[Series]:
        """The result of ``query`` at every ``step`` from ``start`` to ``end``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Point:
    labels: Mapping[str, str]
    value: float


def by_time(series: Sequence[Series]) -> dict[datetime, list[Sample]]:
    """A range result regrouped as the instant result at each of its times."""
    found: dict[datetime, list[Sample]] = {}
    for one in series:
        for at, value in one.points:
            found.setdefault(at, []).append(_Point(labels=one.labels, value=value))
    return found


class Evaluator(Protocol):
    """What the poller needs of the rules engine (``rules.engine.Engine`` fits)."""

    def evaluate(
        self, target: str, at: datetime, samples: Sequence[Any]
    ) -> list[transitions.Transition]:
        """Apply one evaluation of rule ``target`` at ``at``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PolledRule:
    """A Prometheus rule as the poller sees it."""

    name: str
    expr: str
    interval: timedelta
    lookback: timedelta
    """How far back to rebuild: the rule's ``for`` plus ``keep_firing_for``."""


def align(at: datetime, interval: timedelta) -> datetime:
    """The latest evaluation time at or before ``at`` on the ``interval`` grid."""
    step = int(interval.total_seconds() * 1000)
    millis = int(at.timestamp() * 1000)
    return datetime.fromtimestamp((millis - millis % step) / 1000, tz=UTC)


class PrometheusPoller:
    """Evaluates Prometheus rules on their interval grid and dispatches the transitions."""

    def __init__(
        self,
        *,
        rules: Sequence[PolledRule],
        querier: Querier,
        engine: Evaluator,
        pipe: pipeline.Pipeline,
        clock: Callable[[], datetime],
        metrics: Any = None,
        retry_initial: timedelta = timedelta(milliseconds=500),
    ) -> None:
        """Poll ``rules`` with ``querier``, feeding ``engine`` and dispatching through ``pipe``."""
        self._rules = list(rules)
        self._querier = querier
        self._engine = engine
        self._pipe = pipe
        self._clock = clock
        self._metrics = metrics
        self._retry_initial = retry_initial
        self._next: dict[str, datetime] = {}

    def replace_rules(self, rules: Sequence[PolledRule]) -> None:
        """Poll a new rule list; rules kept keep their schedule."""
        self._rules = list(rules)
        names = {rule.name for rule in rules}
        self._next = {name: at for name, at in self._next.items() if name in names}

    async def rebuild(self) -> list[transitions.Transition]:
        """Replay each rule's recent past through the engine; return what must be re-sent.

        The returned transitions are the ``fired`` ones of episodes still open at the end
        of the replay: dispatching them again is a no-op for a workflow that has them, and
        recovers one that a crash kept from being sent.
        """
        now = self._clock()
        fired: dict[str, transitions.Transition] = {}
        for rule in self._rules:
            end = align(now, rule.interval)
            start = align(end - rule.lookback - rule.interval, rule.interval)
            try:
                results = by_time(
                    await asyncio.to_thread(
                        functools.partial(
                            self._querier.range, rule.expr, start=start, end=end, step=rule.interval
                        )
                    )
                )
            except errors.DependencyError as exc:
                self._count_error(rule.name)
                log.warning("prometheus_rebuild_failed", rule=rule.name, error=str(exc))
                continue
            at = start
            while at <= end:
                for transition in self._engine.evaluate(rule.name, at, results.get(at, ())):
                    if transition.kind is transitions.TransitionKind.FIRED:
                        fired[transition.episode] = transition
                    else:
                        fired.pop(transition.episode, None)
                at += rule.interval
            self._next[rule.name] = end + rule.interval
            log.info(
                "prometheus_rebuilt",
                rule=rule.name,
                start=start.isoformat(),
                end=end.isoformat(),
                open_episodes=sum(1 for t in fired.values() if t.rule == rule.name),
            )
        return list(fired.values())

    async def run(self) -> None:
        """Rebuild, then evaluate on the grid until cancelled."""
        await self._pipe.send(await self.rebuild())
        while True:
            now = self._clock()
            due = [
                rule
                for rule in self._rules
                if self._next.setdefault(rule.name, align(now, rule.interval)) <= now
            ]
            if due:
                await asyncio.gather(*(self._evaluate(rule) for rule in due))
            wake = min(self._next.values(), default=now + timedelta(seconds=1))
            await asyncio.sleep(max(0.05, min((wake - self._clock()).total_seconds(), 1.0)))

    async def _evaluate(self, rule: PolledRule) -> None:
        at = self._next[rule.name]
        following = at + rule.interval
        samples = await self._query_until(rule, at, give_up_at=following)
        now = self._clock()
        # Skip evaluation times that passed while this one ran (a long outage).
        self._next[rule.name] = max(following, align(now, rule.interval))
        if samples is None:
            return
        found = self._engine.evaluate(rule.name, at, samples)
        await self._pipe.send(found)

    async def _query_until(
        self, rule: PolledRule, at: datetime, *, give_up_at: datetime
    ) -> Sequence[Sample] | None:
        delay = self._retry_initial.total_seconds()
        while True:
            try:
                return await asyncio.to_thread(
                    functools.partial(self._querier.instant, rule.expr, at=at)
                )
            except errors.DependencyError as exc:
                self._count_error(rule.name)
                log.warning(
                    "prometheus_query_failed", rule=rule.name, at=at.isoformat(), error=str(exc)
                )
                if getattr(exc, "transient", True) is False:
                    return None
            if self._clock() + timedelta(seconds=delay) >= give_up_at:
                log.warning("prometheus_evaluation_skipped", rule=rule.name, at=at.isoformat())
                return None
            await asyncio.sleep(delay)
            delay = min(delay * 2, rule.interval.total_seconds() / 2)

    def _count_error(self, rule: str) -> None:
        if self._metrics is not None:
            self._metrics.source_errors.labels(source="prometheus").inc()
            self._metrics.rule_evaluation_errors.labels(rule=rule).inc()
