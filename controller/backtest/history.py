"""Recorded history as one time-ordered stream of engine inputs.

Prometheus rules are evaluated on their own grid (``ingest.prometheus.align``, as the live
poller does) over ``query_range`` results read ``CHUNK_STEPS`` evaluations at a time, so a
week of a busy rule never sits in memory at once: at each grid time the engine gets exactly
what an instant query would have returned. Kafka topics are read from
``offsets_for_times(start)`` to ``end`` with a consumer that joins no group (production
offsets are untouched), each partition in offset order, as the live consumer reads it.
Recorded webhook requests are read from JSON-lines files (``ingest.recorded``). All sources
are merged by time; within one source the order is kept.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kafka
import structlog

from controller import errors
from controller.domain import observations
from controller.ingest import kafka as kafka_ingest
from controller.ingest import prometheus, recorded
from controller.rules import alerts

log = structlog.get_logger(__name__)

CHUNK_STEPS = 720
"""Evaluations per ``query_range`` call (Prometheus answers at most 11,000 points a series)."""
_POLL_MS = 500
_IDLE_POLLS = 2
"""Empty polls, past the end offset, after which a partition counts as read to its end."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Evaluation:
    """One evaluation of a Prometheus rule: its query's result at ``at``."""

    at: datetime
    rule: str
    samples: Sequence[alerts.Sample]


Input = Evaluation | observations.Observation
"""What the engine is fed, in time order."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GridRule:
    """A Prometheus rule to evaluate: its name, query and evaluation interval."""

    name: str
    expr: str
    interval: timedelta


def evaluations(
    rule: GridRule,
    querier: prometheus.Querier,
    *,
    start: datetime,
    end: datetime,
    chunk_steps: int = CHUNK_STEPS,
) -> Iterator[Evaluation]:
    """Every evaluation of ``rule`` on its grid within [start, end], a chunk at a time.

    Raises:
        errors.DependencyError: a query failed (the backtest cannot guess its answer).
    """
    first = prometheus.align(start, rule.interval)
    if first < start:
        first += rule.interval
    chunk = rule.interval * chunk_steps
    at = first
    while at <= end:
        last = min(at + chunk - rule.interval, prometheus.align(end, rule.interval))
        by_time = prometheus.by_time(
            querier.range(rule.expr, start=at, end=last, step=rule.interval)
        )
        while at <= last:
            yield Evaluation(at=at, rule=rule.name, samples=by_time.pop(at, []))
            at += rule.interval


def kafka_observations(
    *,
    bootstrap_servers: Sequence[str],
    topics: Sequence[str],
    start: datetime,
    end: datetime,
    timestamp_field: str = "timestamp",
) -> Iterator[observations.Observation]:
    """The events of ``topics`` from ``start`` to ``end``, read back without a consumer group.

    One consumer per partition, each assigned its partition (no group, no commit), so the
    partitions are read side by side and merged by event time, each in offset order.

    Raises:
        errors.DependencyError: the brokers cannot be reached, or a topic does not exist.
    """
    readers: list[Any] = []
    try:
        probe = _consumer(bootstrap_servers)
        readers.append(probe)
        streams = []
        for tp in _partitions(probe, topics):
            reader = _consumer(bootstrap_servers)
            readers.append(reader)
            reader.assign([tp])
            found = reader.offsets_for_times({tp: _millis(start)}).get(tp)
            stop_at = reader.end_offsets([tp])[tp]
            if found is None or found.offset >= stop_at:
                continue
            reader.seek(tp, found.offset)
            streams.append(_partition(reader, tp, stop_at, end, timestamp_field))
        yield from heapq.merge(*streams, key=_at)
    except kafka.errors.KafkaError as exc:
        raise errors.DependencyError(f"kafka: {exc}") from None
    finally:
        for reader in readers:
            reader.close()


def _at(observation: observations.Observation) -> datetime:
    return observation.at


def _consumer(bootstrap_servers: Sequence[str]) -> Any:
    try:
        return kafka.KafkaConsumer(
            bootstrap_servers=list(bootstrap_servers),
            group_id=None,
            enable_auto_commit=False,
            client_id="homeostat-backtest",
        )
    except kafka.errors.KafkaError as exc:
        where = ", ".join(bootstrap_servers)
        raise errors.DependencyError(f"kafka: cannot reach {where}: {exc}") from None


def _partitions(reader: Any, topics: Sequence[str]) -> list[kafka.TopicPartition]:
    found = []
    for topic in topics:
        numbers = reader.partitions_for_topic(topic)
        if not numbers:
            raise errors.DependencyError(f"kafka: no topic {topic!r}")
        found += [kafka.TopicPartition(topic, number) for number in sorted(numbers)]
    return found


def _partition(
    reader: Any, tp: kafka.TopicPartition, stop_at: int, end: datetime, timestamp_field: str
) -> Iterator[observations.Observation]:
    """One partition's events in offset order, up to time ``end`` or the end of the partition.

    The end offset read at the start is only a hint (a broker may report the base offset
    of its last batch): the partition is read until it has nothing more to give.
    """
    decode = kafka_ingest.RecordDecoder(timestamp_field=timestamp_field).decode
    idle = 0
    while idle < _IDLE_POLLS:
        polled = [record for batch in reader.poll(timeout_ms=_POLL_MS).values() for record in batch]
        if polled:
            idle = 0
        elif reader.position(tp) >= stop_at:
            idle += 1
        for record in polled:
            try:
                observation = decode(
                    record.value, topic=record.topic, timestamp_ms=record.timestamp
                )
            except errors.PayloadError as exc:
                log.warning(
                    "backtest_record_skipped",
                    topic=record.topic,
                    offset=record.offset,
                    error=exc.message,
                )
                continue
            if observation.at > end:
                return
            yield observation


def request_observations(
    paths: Iterable[Path], *, start: datetime, end: datetime, timestamp_field: str = "timestamp"
) -> list[observations.Observation]:
    """The events of recorded-request files within [start, end], sorted by event time.

    Raises:
        errors.PayloadError: a line is not a recorded request (``field`` is file:line).
    """
    found = [
        observation
        for path in paths
        for _, batch in recorded.read_requests(path, timestamp_field=timestamp_field)
        for observation in batch
        if start <= observation.at <= end
    ]
    found.sort(key=lambda observation: observation.at)
    return found


def merged(streams: Sequence[Iterable[Input]]) -> Iterator[Input]:
    """Inputs of every stream in time order; at one instant, streams in the order given."""
    for _, item in heapq.merge(
        *(_tagged(stream, index) for index, stream in enumerate(streams)),
        key=lambda entry: entry[0],
    ):
        yield item


def _tagged(stream: Iterable[Input], index: int) -> Iterator[tuple[tuple[datetime, int], Input]]:
    for item in stream:
        yield (item.at, index), item


def _millis(at: datetime) -> int:
    return int(at.astimezone(UTC).timestamp() * 1000)
