"""Kafka event streams: consume, decode, dead-letter, dispatch, and only then commit.

kafka-python is blocking, so the consumer runs in its own thread and hands each polled
batch to the pipeline on the event loop. It reads and decodes the next batches while the
loop evaluates and dispatches earlier ones. At most ``_MAX_IN_FLIGHT`` batches are handed
off and not done yet: a transition waiting for Temporal (a signal-with-start takes tens of
milliseconds) does not stop the stream, and the loop never holds more than that many
batches. While the oldest hand-off takes long with that many in flight, the consumer
keeps polling with every partition paused, so the group does not evict it and nothing
more is read: that is the back-pressure. The offsets of the batches whose hand-off is
done are committed in order, without waiting for the broker's answer: at most every
``_COMMIT_EVERY_SECONDS`` while records stream in (a commit costs the client about half
a millisecond of CPU), and at once when the stream goes quiet, before
partitions are rebuilt or the subscription changes, and once more, waiting, on a clean
stop. A batch's offsets are committed only after every transition of it was accepted by
Temporal; a commit made later, or lost, only means records read again, which the engine
ignores as duplicates. A message that cannot be decoded goes to the dead-letter topic
with the error in its headers (flushed before any commit of its offset), and the stream
goes on.

On partition assignment the engine's state for those partitions is rebuilt: the consumer
seeks back to the offset of ``now - rebuild_window`` (``offsets_for_times``) and re-reads
up to the committed offset through the engine without dispatching. Episode ids are
deterministic, so a restart neither forgets a pending ``for`` nor starts an episode twice.
An episode that started before the window cannot be rebuilt from it: before the rebuild,
``prepare`` (``seeding.RebuildSeeder.expect``) tells the engine which episodes are open,
and the first event of each one's resource takes it up (``rules.seeding``).
Producers key messages by resource, so each resource lives in one partition and replicas
share the work through the consumer group without coordinating.

Durability: the rule that makes the replay safe is "an offset is committed only after
every transition the engine made before that record was evaluated was accepted by
Temporal (or refused for good)". Not only the transitions of the record's own batch: a
transition can also come from the clock (``tick`` fires a ``for`` or a staleness deadline
with no message), and the replay cannot send it. Why the rule suffices: the replay feeds
the engine the records up to the committed offset, the same records in the same order as
the first time, without ticks. A transition it produces is produced at some record ``r``:
either the first run produced it at ``r`` too, or a tick produced it earlier (the replay
sees the deadline pass only at the next record). Either way it was made before ``r``'s
evaluation ended, so ``r`` was committed only after it was handed off, and the replay
sending nothing loses nothing. Each batch's hand-off therefore ends with
``Pipeline.settled()``, which waits for every transition made so far, whatever made it.
While Temporal is down this holds the commits back (records are read again after a crash,
which the engine drops as duplicates); a SIGKILL at any moment loses no transition.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import operator
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import kafka
import kafka.errors
import structlog

from controller import dispatch, errors
from controller.domain import observations
from controller.ingest import admission, events, forwarding, pipeline

log = structlog.get_logger(__name__)

_WAIT_POLL_MS = 200
_IN_FLIGHT_POLL_MS = 50
"""Poll timeout while a batch is in flight: its hand-off is confirmed soon after."""
_MAX_IN_FLIGHT = 16
"""Batches handed off and not committed yet, at most (each up to ``max_poll_records``)."""
_HEARTBEAT_POLL_MS = 50
_COMMIT_EVERY_SECONDS = 1.0
"""While records stream in, how often the offsets handed off are committed."""
_PATIENCE = timedelta(seconds=2)
"""How long a hand-off may take before the consumer pauses its partitions to wait."""
_LAG_EVERY_SECONDS = 1.0
"""How often the consumer-lag gauge is refreshed (it costs a position look-up per partition)."""
_KAFKA = observations.SourceKind.KAFKA
_AT = operator.attrgetter("at")


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
    session_timeout: timedelta = timedelta(seconds=10)
    heartbeat_interval: timedelta = timedelta(seconds=3)
    limits: admission.Limits = field(default_factory=admission.Limits)
    client_options: Mapping[str, Any] = field(default_factory=dict)
    """Connection options of every client (security protocol, SASL, TLS files)."""
    forwarded_topic: str | None = None
    """The topic of webhook events forwarded by the replicas (``ingest.forwarding``)."""


@dataclass(slots=True)
class _Replay:
    """Per partition: offsets below ``until`` rebuild state and are not dispatched."""

    until: dict[kafka.TopicPartition, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class _InFlight:
    """A batch handed to the pipeline: what to commit, and note, once it was handed off."""

    handoff: futures.Future[Any] | None
    offsets: dict[kafka.TopicPartition, kafka.OffsetAndMetadata]
    times: dict[kafka.TopicPartition, datetime]


class _Rebuild(kafka.ConsumerRebalanceListener):  # type: ignore[misc]
    """Notes newly assigned partitions; the poll loop rebuilds them (no blocking calls here)."""

    def __init__(self) -> None:
        self._owned: set[kafka.TopicPartition] = set()
        self.fresh: set[kafka.TopicPartition] = set()

    def on_partitions_revoked(self, revoked: Any) -> None:
        log.info("kafka_partitions_revoked", partitions=len(revoked))

    def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("kafka_partitions_assigned", partitions=len(assigned))
        self.fresh.update(tp for tp in assigned if tp not in self._owned)
        self._owned.update(assigned)


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
        prepare: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Consume ``config.topics`` into ``pipe``, whose calls run on ``loop``.

        ``prepare`` is awaited on ``loop`` before newly assigned partitions are rebuilt.
        """
        self._prepare = prepare
        self._config = config
        self._pipe = pipe
        self._loop = loop
        self._clock = clock
        self._metrics = metrics
        self._replay = _Replay()
        self._decoder = RecordDecoder(
            timestamp_field=config.timestamp_field, forwarded_topic=config.forwarded_topic
        )
        self._consumer: kafka.KafkaConsumer | None = None
        self._producer: kafka.KafkaProducer | None = None
        self._unflushed = False
        """Whether dead letters were sent since the producer was last flushed."""
        self.ready = threading.Event()
        """Set once the first partitions were assigned and rebuilt."""
        self.watermark: datetime | None = None
        """Event time up to which every assigned partition was read; ``None`` before the
        first assignment. A partition with nothing to read counts as caught up (the wall
        clock), so deadlines advance while the stream is quiet, but never past a backlog."""
        self._partition_times: dict[kafka.TopicPartition, datetime] = {}
        self._in_flight: collections.deque[_InFlight] = collections.deque()
        """Batches handed off, oldest first, whose offsets are not committed yet."""
        self._handed_off: dict[kafka.TopicPartition, kafka.OffsetAndMetadata] = {}
        """Per partition, the offset after the last record handed off."""
        self._uncommitted: dict[kafka.TopicPartition, kafka.OffsetAndMetadata] = {}
        """The offsets handed off since the last commit."""
        self._committed_at = 0.0
        self._lag_noted_at = 0.0
        self._lag_partitions: set[kafka.TopicPartition] = set()
        self._topics = tuple(config.topics)
        self._resubscribe = False

    def subscribe(self, topics: tuple[str, ...]) -> None:
        """Read ``topics`` from now on (rules were reloaded); safe from any thread.

        The consumer thread applies it before its next poll: it hands off and commits the
        batch in flight, then changes its subscription; the group rebalances, and the
        partitions of a new topic are read like those of any topic at start.
        """
        if set(topics) == set(self._topics):
            return
        self._topics = tuple(topics)
        self._resubscribe = True

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
            **config.client_options,
        )
        self._producer = kafka.KafkaProducer(
            bootstrap_servers=list(config.bootstrap_servers),
            acks="all",
            linger_ms=5,
            **config.client_options,
        )
        listener = _Rebuild()
        try:
            self._consumer.subscribe(list(self._topics), listener=listener)
            while not stop.is_set():
                if self._resubscribe:
                    self._resubscribe = False
                    self._settle(stop)
                    self._consumer.subscribe(list(self._topics), listener=listener)
                    log.info("kafka_subscribed", topics=list(self._topics))
                busy = bool(self._in_flight)
                polled = self._consumer.poll(timeout_ms=_IN_FLIGHT_POLL_MS if busy else 500)
                if listener.fresh:
                    self._settle(stop)
                    fresh, listener.fresh = listener.fresh, set()
                    if self._prepare is not None:
                        self._wait(self._submit(self._prepare()), stop)
                    self.rebuild(sorted(fresh))
                    # Records already fetched for those partitions come again after the
                    # replay: the rebuild moved their position back.
                    polled = {tp: batch for tp, batch in polled.items() if tp not in fresh}
                    self.ready.set()
                if polled:
                    self._handle(polled, stop)
                else:
                    self._settle(stop)
                self._advance_watermark()
                self._note_lag()
            self._settle(stop)
            self._commit_on_stop()
        finally:
            self._consumer.close(autocommit=False)
            self._producer.close(timeout=5)
            log.info("kafka_stopped")

    def _commit_on_stop(self) -> None:
        """Commit what was handed off once more, and wait for it: async commits may be lost."""
        if self._consumer is None or not self._handed_off:
            return
        try:
            self._consumer.commit(
                offsets=dict(self._handed_off),
                timeout_ms=int(_PATIENCE.total_seconds() * 1000),
            )
        except kafka.errors.KafkaError as exc:
            log.warning("kafka_commit_failed", error=str(exc))

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
                consumer.seek_to_beginning(tp)  # a new group: nothing to rebuild
                continue
            start = found.get(tp)
            # No record at or after ``since`` (some brokers answer timestamp -1): all
            # that was read before lies outside the window; nothing to rebuild.
            usable = start is not None and start.timestamp >= 0 and start.offset < committed
            if not usable:
                consumer.seek(tp, committed)
                continue
            self._replay.until[tp] = committed
            consumer.seek(tp, start.offset)
            log.info(
                "kafka_rebuild",
                topic=tp.topic,
                partition=tp.partition,
                from_offset=start.offset,
                to_offset=committed,
            )

    def _handle(self, polled: dict[kafka.TopicPartition, list[Any]], stop: threading.Event) -> None:
        """Decode ``polled``, hand it off, and commit the batches whose hand-off is done.

        Waits for the oldest hand-off only while ``_MAX_IN_FLIGHT`` batches are in flight.
        """
        replayed: list[observations.Observation] = []
        live: list[observations.Observation] = []
        times: dict[kafka.TopicPartition, datetime] = {}
        for tp, records in polled.items():
            # Offsets grow within a partition: the replay range is a prefix of its records.
            until = self._replay.until.get(tp)
            split = 0
            if until is not None:
                while split < len(records) and records[split].offset < until:
                    split += 1
            # A malformed message in the replay range was dead-lettered when first read.
            replay = self._decode(records[:split], dead_letter=False) if split else []
            fresh = self._decode(records[split:], dead_letter=True)
            replayed += replay
            live += fresh
            latest = max(map(_AT, itertools.chain(replay, fresh)), default=None)
            if latest is not None:
                times[tp] = latest
        if replayed:
            self._wait(self._submit(self._rebuild_state(replayed)), stop)
        # Every batch waits for the pipeline to settle before its offsets are committed, even
        # one with nothing to evaluate: see "Durability" in the module docstring.
        handoff = self._submit(self._hand_off(live))
        last = {tp: records[-1] for tp, records in polled.items() if records}
        self._in_flight.append(
            _InFlight(
                handoff=handoff,
                offsets={
                    tp: kafka.OffsetAndMetadata(record.offset + 1, "", record.leader_epoch)
                    for tp, record in last.items()
                },
                times=times,
            )
        )
        self._settle(stop, keep=_MAX_IN_FLIGHT)

    def _settle(self, stop: threading.Event, *, keep: int = 0) -> None:
        """Note the batches whose hand-off is done, oldest first, and commit their offsets.

        Waits for the oldest hand-off while more than ``keep`` batches are in flight: by
        default until none is, and then commits at once; otherwise the offsets wait for
        the next commit (``_COMMIT_EVERY_SECONDS``). A batch is never committed before an
        older one.
        """
        while self._in_flight:
            batch = self._in_flight[0]
            done = batch.handoff is None or batch.handoff.done()
            if not done and len(self._in_flight) <= keep:
                break
            if batch.handoff is not None:
                self._wait(batch.handoff, stop)
            self._in_flight.popleft()
            self._handed(batch)
        self._commit(now=keep == 0)

    def _handed(self, batch: _InFlight) -> None:
        """Note a batch that was handed off: its offsets may be committed, its times count."""
        self._handed_off.update(batch.offsets)
        self._uncommitted.update(batch.offsets)
        for tp, latest in batch.times.items():
            seen = self._partition_times.get(tp)
            self._partition_times[tp] = latest if seen is None else max(seen, latest)

    def _commit(self, *, now: bool) -> None:
        """Commit the offsets handed off (without waiting), if ``now`` or a commit is due."""
        clock = time.monotonic()
        due = now or clock - self._committed_at >= _COMMIT_EVERY_SECONDS
        if not self._uncommitted or not due:
            return
        if self._producer is not None and self._unflushed:
            self._producer.flush(timeout=30)  # the dead letters, before their offsets
            self._unflushed = False
        if self._consumer is not None:
            self._consumer.commit_async(offsets=self._uncommitted, callback=_committed)
        self._uncommitted = {}
        self._committed_at = clock

    def _advance_watermark(self) -> None:
        consumer = self._consumer
        if not self.ready.is_set() or consumer is None:
            return
        now = self._clock()
        times = []
        reading = {tp for batch in self._in_flight for tp in batch.offsets}
        for tp in consumer.assignment():
            # A partition with records in flight is not caught up before they were evaluated.
            if tp not in reading and self._caught_up(consumer, tp):
                self._partition_times[tp] = now
            seen = self._partition_times.get(tp)
            if seen is None:
                return  # a partition with a backlog not read yet: hold the watermark
            times.append(min(seen, now))
        self.watermark = min(times, default=now)

    def _note_lag(self) -> None:
        """Refresh the consumer-lag gauge of each assigned partition, about once a second."""
        consumer = self._consumer
        if self._metrics is None or consumer is None:
            return
        now = time.monotonic()
        if now - self._lag_noted_at < _LAG_EVERY_SECONDS:
            return
        self._lag_noted_at = now
        assigned = set(consumer.assignment())
        for tp in self._lag_partitions - assigned:
            with contextlib.suppress(KeyError):  # revoked before its lag was ever known
                self._metrics.kafka_lag.remove(tp.topic, str(tp.partition))
        self._lag_partitions = assigned
        for tp in assigned:
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            try:
                position = consumer.position(tp, timeout_ms=100)
            except kafka.errors.KafkaError:
                continue
            if position is not None:
                self._metrics.kafka_lag.labels(topic=tp.topic, partition=str(tp.partition)).set(
                    max(0, highwater - position)
                )

    @staticmethod
    def _caught_up(consumer: kafka.KafkaConsumer, tp: kafka.TopicPartition) -> bool:
        """Whether everything the broker has for ``tp`` was read (from the last fetch)."""
        highwater = consumer.highwater(tp)
        if highwater is None:
            return False
        try:
            position = consumer.position(tp, timeout_ms=100)
        except kafka.errors.KafkaError:
            return False
        return position is not None and position >= highwater

    async def _hand_off(self, batch: list[observations.Observation]) -> None:
        """Evaluate ``batch``; return once its offsets may be committed.

        That is once every transition the engine made so far, from this batch, an earlier
        one or the clock, was accepted by Temporal (or refused for good). A transition
        Temporal refused for good (it was logged, counted and undone in the engine) does not
        stop the stream: nothing a retry of the batch could change.
        """
        try:
            if batch:
                await self._pipe.ingest(batch, admitted=True)
        except dispatch.DispatchRejectedError as exc:
            log.warning("kafka_handoff_refused", transitions=len(exc.refused), error=str(exc))
        await self._pipe.settled()

    async def _rebuild_state(self, batch: list[observations.Observation]) -> None:
        self._pipe.evaluate(batch)

    def _submit(self, work: Any) -> futures.Future[Any]:
        """Schedule ``work`` on the event loop, after everything scheduled before it."""
        return asyncio.run_coroutine_threadsafe(work, self._loop)

    def _wait(self, handoff: futures.Future[Any], stop: threading.Event) -> None:
        """Wait for ``handoff``.

        A hand-off that takes longer than ``_PATIENCE`` (Temporal down, dispatcher full)
        pauses every partition and keeps polling, so the group keeps this member while
        nothing more is read.
        """
        try:
            handoff.result(timeout=_PATIENCE.total_seconds())
        except futures.TimeoutError:
            pass
        else:
            return
        consumer = self._consumer
        assert consumer is not None  # noqa: S101 - set by run() before any batch
        consumer.pause(*consumer.assignment())
        try:
            while True:
                try:
                    handoff.result(timeout=_WAIT_POLL_MS / 1000)
                except futures.TimeoutError:
                    if stop.is_set():
                        handoff.cancel()
                        raise
                    consumer.poll(timeout_ms=_HEARTBEAT_POLL_MS)
                else:
                    return
        finally:
            consumer.resume(*consumer.paused())

    def _decode(self, records: list[Any], *, dead_letter: bool) -> list[observations.Observation]:
        """The observations of ``records``; the malformed ones are dead-lettered, or skipped.

        No message can stop the stream: whatever one raises while it is decoded (a
        ``PayloadError``, or a ``RecursionError``, ``ValueError`` or ``OverflowError`` out of
        the JSON decoder or a conversion) is that message's own failure. In the replay range
        (``dead_letter=False``) it was dead-lettered when first read, and is skipped.
        """
        found: list[observations.Observation] = []
        decode = self._decoder.decode
        limits = self._config.limits
        now = self._clock()
        latest = admission.latest(now, limits)
        for record in records:
            try:
                observation = decode(
                    record.value, topic=record.topic, timestamp_ms=record.timestamp
                )
            except errors.PayloadError as exc:
                if dead_letter:
                    self._dead_letter(record, exc)
                continue
            if observation.at <= latest:
                found.append(observation)
                continue
            refused = admission.refusal(observation, now=now, limits=limits)
            if refused is None:
                found.append(observation)
            elif dead_letter:
                self._pipe.count_refusal(refused, observation)
                self._dead_letter(record, refused.error)
        return found

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
        self._unflushed = True
        self._producer.send(
            self._config.dead_letter_topic,
            value=record.value if record.value is not None else b"",
            key=record.key,
            headers=headers,
        )


def _committed(offsets: Any, response: Any) -> None:
    """Log a commit that failed; the next one covers its offsets."""
    if isinstance(response, Exception):
        log.warning("kafka_commit_failed", partitions=len(offsets), error=str(response))


class RecordDecoder:
    """Kafka records' values as observations: the live consumer's and the backtest's.

    A record of ``forwarded_topic`` carries an observation another replica decoded
    (``forwarding``); any other is an event (``events.Decoder``) received at the record's
    timestamp.
    """

    __slots__ = ("_events", "_forwarded_topic")

    def __init__(
        self, *, timestamp_field: str = "timestamp", forwarded_topic: str | None = None
    ) -> None:
        """Plain JSON carries its time in ``timestamp_field``; see the class docstring."""
        self._events = events.Decoder(source=_KAFKA, timestamp_field=timestamp_field).decode
        self._forwarded_topic = forwarded_topic

    def decode(self, value: bytes, *, topic: str, timestamp_ms: int) -> observations.Observation:
        """One record's value as an observation.

        Raises:
            errors.PayloadError: for any failure, whatever the record holds (a
                ``RecursionError``, ``ValueError`` or ``OverflowError`` out of the JSON
                decoder or a conversion included): one record never stops a stream.
                ``field`` names where, when known.
        """
        try:
            if topic != self._forwarded_topic:
                return self._events(value, stream=topic, received_ms=timestamp_ms)
            try:
                decoded = events.loads(value)
            except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as exc:
                raise errors.PayloadError("(message)", f"not valid JSON: {exc}") from None
            return forwarding.unwrap(decoded)
        except errors.PayloadError:
            raise
        except Exception as exc:  # noqa: BLE001 - one message's failure, whatever it is
            raise errors.PayloadError(
                "(message)", f"cannot be decoded: {type(exc).__name__}: {_short(exc)}"
            ) from None


def _short(exc: BaseException, limit: int = 300) -> str:
    """``exc``'s message, cut to ``limit`` characters (it goes into a header and a log)."""
    text = str(exc)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def start_thread(
    source: KafkaSource, *, restart_after: timedelta = timedelta(seconds=5)
) -> tuple[threading.Thread, threading.Event]:
    """Run ``source`` in a daemon thread, restarting it after a failure, until stopped.

    A restart joins the group again, which rebuilds state and resumes from the committed
    offsets: nothing that was not committed is lost.
    """
    stop = threading.Event()

    def keep_running() -> None:
        while not stop.is_set():
            try:
                source.run(stop)
            except Exception:  # any failure: log it, rejoin, go on
                log.exception("kafka_consumer_failed", restart_in=restart_after.total_seconds())
                stop.wait(restart_after.total_seconds())

    thread = threading.Thread(target=keep_running, name="kafka-source", daemon=True)
    thread.start()
    return thread, stop
