"""Kafka event streams: consume, decode, dead-letter, dispatch, and only then commit.

kafka-python is blocking, so the consumer runs in its own thread and hands each polled
batch to the pipeline on the event loop, waiting for the hand-off. While it waits it keeps
polling with every partition paused, so the group does not evict it and nothing more is
read: that is the back-pressure. Offsets are committed only after every transition of a
batch was accepted by Temporal; a message that cannot be decoded goes to the dead-letter
topic with the error in its headers, and the stream goes on.

On partition assignment the engine's state for those partitions is rebuilt: the consumer
seeks back to the offset of ``now - rebuild_window`` (``offsets_for_times``) and re-reads
up to the committed offset through the engine without dispatching. Episode ids are
deterministic, so a restart neither forgets a pending ``for`` nor starts an episode twice.
Producers key messages by resource, so each resource lives in one partition and replicas
share the work through the consumer group without coordinating.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import kafka
import structlog

from controller import errors
from controller.domain import observations
from controller.ingest import events, pipeline

log = structlog.get_logger(__name__)

_WAIT_POLL_MS = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class KafkaConfig:
    """Where to read, and how."""

    bootstrap_servers: tuple[str, ...]
    topics: tuple[str, ...]
    group_id: str = "homeostat"
    dead_letter_topic: str = "homeostat.dead-letter"
    timestamp_field: str = "timestamp"
    rebuild_window: timedelta = timedelta(minutes=10)
    max_poll_records: int = 2000
    max_poll_interval: timedelta = timedelta(minutes=5)
    session_timeout: timedelta = timedelta(seconds=45)
    heartbeat_interval: timedelta = timedelta(seconds=3)


@dataclass(slots=True)
class _Replay:
    """Per partition: offsets below ``until`` rebuild state and are not dispatched."""

    until: dict[kafka.TopicPartition, int] = field(default_factory=dict)

    def replaying(self, record: Any) -> bool:
        limit = self.until.get(kafka.TopicPartition(record.topic, record.partition))
        return limit is not None and record.offset < limit


class _Rebuild(kafka.ConsumerRebalanceListener):  # type: ignore[misc]
    """Seeks newly assigned partitions back by the rebuild window."""

    def __init__(self, source: KafkaSource) -> None:
        self._source = source
        self._owned: set[kafka.TopicPartition] = set()

    def on_partitions_revoked(self, revoked: Any) -> None:
        log.info("kafka_partitions_revoked", partitions=len(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        fresh = [tp for tp in assigned if tp not in self._owned]
        self._owned.update(assigned)
        if fresh:
            self._source.rebuild(fresh)


class KafkaSource:
    """One consumer-group member feeding the pipeline; ``run`` blocks in its thread."""

    def __init__(
        self,
        *,
        config: KafkaConfig,
        pipe: pipeline.Pipeline,
        loop: asyncio.AbstractEventLoop,
        clock: Callable[[], datetime],
        metrics: Any = None,
    ) -> None:
        """Consume ``config.topics`` into ``pipe``, whose calls run on ``loop``."""
        self._config = config
        self._pipe = pipe
        self._loop = loop
        self._clock = clock
        self._metrics = metrics
        self._replay = _Replay()
        self._consumer: kafka.KafkaConsumer | None = None
        self._producer: kafka.KafkaProducer | None = None
        self.ready = threading.Event()
        """Set once the first partitions were assigned and rebuilt."""

    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; commits after each dispatched batch."""
        config = self._config
        self._consumer = kafka.KafkaConsumer(
            bootstrap_servers=list(config.bootstrap_servers),
            group_id=config.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=config.max_poll_records,
            max_poll_interval_ms=int(config.max_poll_interval.total_seconds() * 1000),
            session_timeout_ms=int(config.session_timeout.total_seconds() * 1000),
            heartbeat_interval_ms=int(config.heartbeat_interval.total_seconds() * 1000),
        )
        self._producer = kafka.KafkaProducer(
            bootstrap_servers=list(config.bootstrap_servers), acks="all", linger_ms=5
        )
        try:
            self._consumer.subscribe(list(config.topics), listener=_Rebuild(self))
            while not stop.is_set():
                polled = self._consumer.poll(timeout_ms=500)
                records = [record for batch in polled.values() for record in batch]
                if records:
                    self._handle(records, stop)
        finally:
            self._consumer.close(autocommit=False)
            self._producer.close(timeout=5)
            log.info("kafka_stopped")

    def rebuild(self, partitions: list[kafka.TopicPartition]) -> None:
        """Seek ``partitions`` back by the rebuild window and mark the replay range."""
        consumer = self._consumer
        if consumer is None:
            return
        since = self._clock() - self._config.rebuild_window
        since_ms = int(since.timestamp() * 1000)
        found = consumer.offsets_for_times(dict.fromkeys(partitions, since_ms))
        for tp in partitions:
            committed = consumer.committed(tp)
            if committed is None:
                continue  # a new group reads from the start; nothing to rebuild
            start = found.get(tp)
            start_offset = start.offset if start is not None else committed
            if start_offset < committed:
                self._replay.until[tp] = committed
                consumer.seek(tp, start_offset)
                log.info(
                    "kafka_rebuild",
                    topic=tp.topic,
                    partition=tp.partition,
                    from_offset=start_offset,
                    to_offset=committed,
                )
        self.ready.set()

    def _handle(self, records: list[Any], stop: threading.Event) -> None:
        replayed: list[observations.Observation] = []
        live: list[observations.Observation] = []
        for record in records:
            observation = self._decode(record)
            if observation is None:
                continue
            (replayed if self._replay.replaying(record) else live).append(observation)
        if replayed:
            self._on_loop(self._rebuild_state(replayed), stop)
        if live:
            self._on_loop(self._pipe.ingest(live), stop)
        if self._producer is not None:
            self._producer.flush(timeout=30)
        if self._consumer is not None:
            self._consumer.commit()

    async def _rebuild_state(self, batch: list[observations.Observation]) -> None:
        self._pipe.evaluate(batch)

    def _on_loop(self, work: Any, stop: threading.Event) -> None:
        """Run ``work`` on the event loop; poll with partitions paused until it is done."""
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        consumer = self._consumer
        assert consumer is not None  # noqa: S101 - set by run() before any batch
        paused = False
        try:
            while True:
                try:
                    future.result(timeout=_WAIT_POLL_MS / 1000)
                except futures.TimeoutError:
                    if stop.is_set():
                        future.cancel()
                        raise
                else:
                    return
                if not paused:
                    consumer.pause(*consumer.assignment())
                    paused = True
                consumer.poll(timeout_ms=_WAIT_POLL_MS)
        finally:
            if paused:
                consumer.resume(*consumer.paused())

    def _decode(self, record: Any) -> observations.Observation | None:
        received = datetime.fromtimestamp(record.timestamp / 1000, tz=UTC)
        try:
            try:
                value = json.loads(record.value)
            except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as exc:
                raise errors.PayloadError("(message)", f"not valid JSON: {exc}") from None
            return events.decode(
                value,
                source=observations.SourceKind.KAFKA,
                stream=record.topic,
                received_at=received,
                timestamp_field=self._config.timestamp_field,
            )
        except errors.PayloadError as exc:
            self._dead_letter(record, exc)
            return None

    def _dead_letter(self, record: Any, error: errors.PayloadError) -> None:
        log.warning(
            "kafka_dead_letter",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            field=error.field,
            error=error.message,
        )
        if self._metrics is not None:
            self._metrics.dead_letters.labels(topic=record.topic).inc()
        if self._producer is None:
            return
        headers = [
            ("homeostat-error", error.message.encode()),
            ("homeostat-error-field", error.field.encode()),
            ("homeostat-source-topic", record.topic.encode()),
            ("homeostat-source-partition", str(record.partition).encode()),
            ("homeostat-source-offset", str(record.offset).encode()),
        ]
        self._producer.send(
            self._config.dead_letter_topic,
            value=record.value if record.value is not None else b"",
            key=record.key,
            headers=headers,
        )


def start_thread(source: KafkaSource) -> tuple[threading.Thread, threading.Event]:
    """Run ``source`` in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(stop,), name="kafka-source", daemon=True)
    thread.start()
    return thread, stop
