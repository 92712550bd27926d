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

With several replicas, each rule group is evaluated by the one replica that owns it
(``ingest.assignment``): the poller evaluates owned groups only, rebuilds a group when it
becomes its own, and forgets a group's state when it goes to another replica.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog

from controller import errors
from controller.domain import transitions
from controller.ingest import assignment as assignment_module
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

    def close_unjoined(self, rule: str, at: datetime) -> list[transitions.Transition]:
        """End ``rule``'s taken-over episodes no series joined in the rebuild."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PolledRule:
    """A Prometheus rule as the poller sees it."""

    name: str
    expr: str
    interval: timedelta
    lookback: timedelta
    """How far back to rebuild: the rule's ``for`` plus ``keep_firing_for``."""
    group: str = ""
    """The rule group: the unit one replica evaluates."""


def align(at: datetime, interval: timedelta) -> datetime:
    """The latest evaluation time at or before ``at`` on the ``interval`` grid."""
    step = int(interval.total_seconds() * 1000)
    millis = int(at.timestamp() * 1000)
    return datetime.fromtimestamp((millis - millis % step) / 1000, tz=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class PollHealth:
    """How a Prometheus rule's last evaluation went (``/v1/rules``).

    Attributes:
        evaluated_at: the wall-clock time of the last evaluation attempt.
        duration: how long its query and evaluation took.
        error: why the last attempt failed ("" when it succeeded).
        error_at: when the last failure was.
        errors: failed queries so far.
    """

    evaluated_at: datetime | None = None
    duration: timedelta | None = None
    error: str = ""
    error_at: datetime | None = None
    errors: int = 0


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
        ownership: assignment_module.Ownership | None = None,
        forget: Callable[[list[str]], None] | None = None,
        rebuild_lookback: timedelta = timedelta(0),
        prepare: Callable[[list[str]], Awaitable[None]] | None = None,
    ) -> None:
        """Poll ``rules`` with ``querier``, feeding ``engine`` and dispatching through ``pipe``.

        Args:
            rules: the Prometheus rules, with their groups and intervals.
            querier: the Prometheus client.
            engine: the rules engine that takes each evaluation.
            pipe: where transitions are dispatched.
            clock: the wall clock.
            metrics: evaluation, error and ownership metrics (optional).
            retry_initial: the first delay before a failed query is retried.
            ownership: which groups this replica evaluates (default: all of them).
            forget: drops the engine state of rules whose group went to another replica.
            rebuild_lookback: how far back a rebuild reads at least, so that a condition
                firing for longer than ``for`` keeps its episode (and its id) when another
                replica or a restarted process takes the rule over.
            prepare: awaited with the names of the rules about to be rebuilt
                (``seeding.RebuildSeeder.take_over``: their open episodes are taken over,
                so a series firing since before the lookback keeps its episode); after
                the rebuild, episodes no series joined are resolved.
        """
        self._prepare = prepare
        self._rebuild_lookback = rebuild_lookback
        self._ownership = ownership or assignment_module.Everything()
        self._forget = forget
        self._owned: set[str] = set()
        self._evaluated: dict[str, datetime] = {}
        self._rules = list(rules)
        self._querier = querier
        self._engine = engine
        self._pipe = pipe
        self._clock = clock
        self._metrics = metrics
        self._retry_initial = retry_initial
        self._next: dict[str, datetime] = {}
        self._health: dict[str, PollHealth] = {}

    def health(self) -> dict[str, PollHealth]:
        """Each polled rule's last evaluation: when, how long, and the last error."""
        return dict(self._health)

    def replace_rules(self, rules: Sequence[PolledRule]) -> None:
        """Poll a new rule list; rules kept keep their schedule."""
        self._rules = list(rules)
        names = {rule.name for rule in rules}
        self._next = {name: at for name, at in self._next.items() if name in names}
        self._health = {name: at for name, at in self._health.items() if name in names}

    async def rebuild(
        self, rules: Sequence[PolledRule] | None = None
    ) -> list[transitions.Transition]:
        """Replay each rule's recent past through the engine; return what must be re-sent.

        The returned transitions are the ``fired`` ones of episodes still open at the end
        of the replay: dispatching them again is a no-op for a workflow that has them, and
        recovers one that a crash kept from being sent; and the ``resolved`` ones of
        episodes taken over (``prepare``) that no series joined in the replay.
        """
        now = self._clock()
        fired: dict[str, transitions.Transition] = {}
        ended: list[transitions.Transition] = []
        for rule in self._rules if rules is None else rules:
            end = align(now, rule.interval)
            # Prometheus answers at most 11,000 points per series: keep well below.
            lookback = min(max(rule.lookback, self._rebuild_lookback), rule.interval * 10_000)
            start = align(end - lookback - rule.interval, rule.interval)
            try:
                results = by_time(
                    await asyncio.to_thread(
                        functools.partial(
                            self._querier.range, rule.expr, start=start, end=end, step=rule.interval
                        )
                    )
                )
            except errors.DependencyError as exc:
                self._count_error(rule.name, str(exc))
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
            if self._prepare is not None:
                ended += self._engine.close_unjoined(rule.name, end)
            log.info(
                "prometheus_rebuilt",
                rule=rule.name,
                start=start.isoformat(),
                end=end.isoformat(),
                open_episodes=sum(1 for t in fired.values() if t.rule == rule.name),
            )
        return [*fired.values(), *ended]

    async def run(self) -> None:
        """Rebuild, then evaluate on the grid until cancelled."""
        while True:
            await self._take_over()
            now = self._clock()
            due = [
                rule
                for rule in self._rules
                if rule.group in self._owned
                and self._next.setdefault(rule.name, align(now, rule.interval)) <= now
            ]
            if due:
                await asyncio.gather(*(self._evaluate(rule) for rule in due))
            wake = min(self._next.values(), default=now + timedelta(seconds=1))
            await asyncio.sleep(max(0.05, min((wake - self._clock()).total_seconds(), 1.0)))

    async def _take_over(self) -> None:
        """Follow ownership: rebuild groups that became this replica's, forget lost ones."""
        groups = {rule.group for rule in self._rules}
        owned = {group for group in groups if self._ownership.owns(group)}
        lost = self._owned - owned
        gained = owned - self._owned
        self._owned = owned
        if lost:
            names = [rule.name for rule in self._rules if rule.group in lost]
            for name in names:
                self._next.pop(name, None)
            if self._forget is not None:
                self._forget(names)
            log.info("rule_groups_released", groups=sorted(lost))
        if self._metrics is not None:
            for group in groups:
                self._metrics.rule_group_owned.labels(group=group).set(int(group in owned))
        if gained:
            log.info("rule_groups_taken", groups=sorted(gained))
            taken = [rule for rule in self._rules if rule.group in gained]
            if self._prepare is not None:
                await self._prepare([rule.name for rule in taken])
            await self._pipe.send(await self.rebuild(taken))

    async def _evaluate(self, rule: PolledRule) -> None:
        if not self._ownership.begin(rule.group):
            return  # the group went to another replica since this evaluation was due
        try:
            at = self._next[rule.name]
            following = at + rule.interval
            began = time.perf_counter()
            samples = await self._query_until(rule, at, give_up_at=following)
            now = self._clock()
            # Skip evaluation times that passed while this one ran (a long outage).
            self._next[rule.name] = max(following, align(now, rule.interval))
            if samples is None:
                return
            found = self._engine.evaluate(rule.name, at, samples)
            health = self._health.get(rule.name, PollHealth())
            self._health[rule.name] = dataclasses.replace(
                health,
                evaluated_at=now,
                duration=timedelta(seconds=time.perf_counter() - began),
                error="",
            )
            self._count_group(rule.group, at)
            await self._pipe.send(found)
        finally:
            self._ownership.end(rule.group)

    def _count_group(self, group: str, at: datetime) -> None:
        """Count one evaluation of ``group`` per evaluation time (its rules share the grid)."""
        if self._metrics is not None and self._evaluated.get(group) != at:
            self._evaluated[group] = at
            self._metrics.rule_group_evaluations.labels(group=group).inc()

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

    def _count_error(self, rule: str, error: str = "") -> None:
        health = self._health.get(rule, PollHealth())
        now = self._clock()
        self._health[rule] = dataclasses.replace(
            health, evaluated_at=now, error=error, error_at=now, errors=health.errors + 1
        )
        if self._metrics is not None:
            self._metrics.source_errors.labels(source="prometheus").inc()
            self._metrics.rule_evaluation_errors.labels(rule=rule).inc()
