"""At start, seed the rules engine with the episodes Temporal holds open; hold webhooks until then.

In ``webhooks.mode: direct`` the state of webhook and GitLab rules lives only in this
process: nothing can be read back after a restart (Kafka rules re-read their topics,
Prometheus rules query their past). The resource workflows know which episodes are open,
so ``Seeder.run`` reads them from Temporal's visibility (the workflows' memos) and hands
them to the engine (``Engine.seed``) before any event of those sources is evaluated:
an all-clear then resolves the episode fired before the restart, and a repeated failure
continues it instead of starting a second one.

Until the read succeeds (Temporal may be down when Homeostat starts), ``Seeder.hold``
keeps webhook and GitLab observations out of the engine: their request waits up to its
deadline and is answered 503, like any request whose transitions Temporal cannot take;
``problem`` says why in ``/readyz``. Other sources go on. The read is tried again, every
``RETRY_MAX`` at most, until it succeeds. A defect in reading gives up seeding (logged,
counted as ``error``) rather than holding webhooks for good.

Kafka rules re-read only ``kafka.rebuild_window`` of their topics: ``RebuildSeeder`` reads
the open episodes the same way before the consumer rebuilds newly assigned partitions, and
the engine takes each one up at the first event of its resource (``Engine.expect``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from controller import dispatch, errors
from controller.domain import durations, observations, transitions

log = structlog.get_logger(__name__)

SOURCES = frozenset({observations.SourceKind.WEBHOOK, observations.SourceKind.GITLAB})
"""The sources with nothing to rebuild from (in ``webhooks.mode: direct``)."""
RETRY_FIRST = timedelta(milliseconds=500)
RETRY_MAX = timedelta(seconds=2)


class Found(Protocol):
    """What a read found (``operations.open_episodes.OpenEpisodes`` fits)."""

    @property
    def episodes(self) -> Sequence[transitions.OpenEpisode]:
        """The unresolved episodes."""

    @property
    def resources(self) -> int:
        """The resource workflows read."""

    @property
    def unlisted(self) -> int:
        """Open episodes counted but not listed (not seeded)."""


Reader = Callable[[], Awaitable[Found]]
"""Reads the open episodes from Temporal; raises ``errors.DependencyError`` when it cannot."""


class Engine(Protocol):
    """What seeding needs of the rules engine (``rules.engine.Engine`` fits)."""

    def seed(
        self,
        found: Sequence[transitions.OpenEpisode],
        *,
        at: datetime,
        sources: Collection[observations.SourceKind],
    ) -> Mapping[Any, int]:
        """Take up the episodes; how many had each outcome."""


async def read_until_answered(read: Reader, *, note: Callable[[str, int], None]) -> Found:
    """What ``read`` finds, once Temporal answers; ``note`` is told of each failed attempt."""
    pause = RETRY_FIRST
    attempt = 0
    while True:
        attempt += 1
        try:
            return await read()
        except errors.DependencyError as exc:
            note(str(exc), attempt)
            log.warning("episodes_not_read", error=str(exc), attempt=attempt)
        await asyncio.sleep(pause.total_seconds())
        pause = min(pause * 2, RETRY_MAX)


class Seeder:
    """Reads the open episodes once, seeds the engine, then lets held observations through."""

    def __init__(
        self,
        *,
        read: Reader,
        engine: Engine,
        clock: Callable[[], datetime],
        counter: Any = None,
        sources: frozenset[observations.SourceKind] = SOURCES,
    ) -> None:
        """Seed ``engine`` with what ``read`` finds, at ``clock()``.

        Args:
            read: reads the open episodes from Temporal.
            engine: the rules engine.
            clock: the seed time (staleness of seeded conditions runs from it).
            counter: counts episodes by outcome (``homeostat_seeded_episodes_total``).
            sources: the observations held until the engine is seeded.
        """
        self._read = read
        self._engine = engine
        self._clock = clock
        self._counter = counter
        self._sources = sources
        self._done = asyncio.Event()
        self.problem: str | None = "reading the open episodes of webhook rules from Temporal"
        """Why webhook events are held (``/readyz``); ``None`` once seeded."""

    @property
    def done(self) -> bool:
        """Whether seeding is over (held observations go through)."""
        return self._done.is_set()

    async def run(self) -> None:
        """Read until Temporal answers, seed the engine, release what was held."""
        try:
            self._seed(await self._read_until_answered())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a defect must not hold webhooks for good
            self._count("error", 1)
            log.exception("episodes_not_seeded", error=repr(exc))
        self.problem = None
        self._done.set()

    async def _read_until_answered(self) -> Found:
        def note(error: str, attempt: int) -> None:
            self.problem = (
                "webhook and GitLab events wait until the open episodes are read from "
                f"Temporal: {error} (attempt {attempt}; retrying every "
                f"{durations.format_duration(RETRY_MAX)} or less)"
            )

        return await read_until_answered(self._read, note=note)

    def _seed(self, found: Found) -> None:
        outcomes = self._engine.seed(found.episodes, at=self._clock(), sources=self._sources)
        for outcome, count in outcomes.items():
            self._count(str(outcome), count)
        if found.unlisted:
            self._count("unlisted", found.unlisted)
            log.warning(
                "episodes_unlisted",
                count=found.unlisted,
                detail="resource memos list their 20 newest open episodes; older ones are "
                "not taken up",
            )
        log.info(
            "episodes_seeded",
            resources=found.resources,
            **{str(outcome): count for outcome, count in outcomes.items()},
        )

    def _count(self, outcome: str, count: int) -> None:
        _count(self._counter, outcome, count)

    async def hold(
        self, batch: Sequence[observations.Observation], *, deadline: timedelta | None
    ) -> None:
        """Wait until seeding is over if ``batch`` holds an observation of a held source.

        Raises:
            dispatch.DispatchTimeoutError: not over within ``deadline``; nothing was
                evaluated (a webhook answers 503 and its sender retries).
        """
        if self._done.is_set() or not any(item.source in self._sources for item in batch):
            return
        timeout = deadline.total_seconds() if deadline is not None else None
        try:
            await asyncio.wait_for(self._done.wait(), timeout)
        except TimeoutError:
            raise dispatch.DispatchTimeoutError(
                "the open episodes of webhook rules are still being read from Temporal; "
                "nothing was evaluated, retry"
            ) from None


class Expecting(Protocol):
    """What the Kafka rebuild needs of the rules engine (``rules.engine.Engine`` fits)."""

    def expect(
        self,
        found: Sequence[transitions.OpenEpisode],
        *,
        sources: Collection[observations.SourceKind],
    ) -> Mapping[Any, int]:
        """Wait for the first event of each episode's resource; how many were decided at once."""

    def take_over(
        self, found: Sequence[transitions.OpenEpisode], *, rules: Collection[str]
    ) -> Mapping[Any, int]:
        """Open the episodes of Prometheus rules ``rules``, before their rebuild."""


class RebuildSeeder:
    """Before Kafka partitions or Prometheus rules are rebuilt, tells the engine what is open.

    A rebuild re-reads only a window of the past (``kafka.rebuild_window``, a Prometheus
    rule's lookback): an episode that started before it is taken up from what its resource
    workflow says (``rules.seeding``). The Kafka consumer awaits ``expect`` before each
    rebuild, the Prometheus poller ``take_over``, so no replay runs ahead of them. While
    Temporal does not answer they wait (Kafka partitions paused, offsets not committed:
    nothing could be handed off anyway), and ``problem`` says why.
    """

    def __init__(
        self,
        *,
        read: Reader,
        engine: Expecting,
        sources: frozenset[observations.SourceKind],
        counter: Any = None,
    ) -> None:
        """Have ``engine`` wait for the episodes ``read`` finds, of rules reading ``sources``."""
        self._read = read
        self._engine = engine
        self._sources = sources
        self._counter = counter
        self._problems: dict[str, str] = {}

    @property
    def problem(self) -> str | None:
        """Why rebuilds wait (``/readyz``); ``None`` when none does."""
        return "; ".join(self._problems.values()) or None

    async def expect(self) -> None:
        """Read the open episodes, once Temporal answers; the engine waits for their events.

        Never raises but on cancellation: a defect is logged and counted (``error``) and
        the rebuild goes on without them.
        """
        await self._hand_over(
            "Kafka partitions",
            lambda found: self._engine.expect(found, sources=self._sources),
        )

    async def take_over(self, rules: list[str]) -> None:
        """Read the open episodes, once Temporal answers; Prometheus ``rules`` take theirs over.

        Never raises but on cancellation, like ``expect``.
        """
        await self._hand_over(
            "Prometheus rules",
            lambda found: self._engine.take_over(found, rules=frozenset(rules)),
        )

    async def _hand_over(
        self,
        what: str,
        give: Callable[[Sequence[transitions.OpenEpisode]], Mapping[Any, int]],
    ) -> None:
        self._problems[what] = (
            f"{what} wait to be rebuilt until the open episodes are read from Temporal"
        )

        def note(error: str, attempt: int) -> None:
            self._problems[what] = (
                f"{what} wait to be rebuilt until the open episodes are read from "
                f"Temporal: {error} (attempt {attempt}; retrying every "
                f"{durations.format_duration(RETRY_MAX)} or less)"
            )

        try:
            found = await read_until_answered(self._read, note=note)
            outcomes = give(found.episodes)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a defect must not stop Kafka intake
            _count(self._counter, "error", 1)
            log.exception("episodes_not_expected", error=repr(exc))
        else:
            for outcome, count in outcomes.items():
                _count(self._counter, str(outcome), count)
            _count(self._counter, "unlisted", found.unlisted)
            log.info(
                "episodes_expected",
                rebuilding=what,
                resources=found.resources,
                episodes=len(found.episodes),
                unlisted=found.unlisted,
                **{str(outcome): count for outcome, count in outcomes.items()},
            )
        finally:
            self._problems.pop(what, None)


def decided_reporter(counter: Any = None) -> Callable[[Any, transitions.OpenEpisode], None]:
    """Counts and logs each episode an event decided (the engine's ``on_seed``)."""

    def decided(outcome: Any, episode: transitions.OpenEpisode) -> None:
        _count(counter, str(outcome), 1)
        log.info(
            "episode_decided",
            outcome=str(outcome),
            rule=episode.rule,
            resource=str(episode.resource),
            episode=str(episode.episode),
        )

    return decided


def _count(counter: Any, outcome: str, count: int) -> None:
    if counter is not None and count:
        counter.labels(outcome=outcome).inc(count)
