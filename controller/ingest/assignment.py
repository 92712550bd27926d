"""Which replica evaluates which Prometheus rule group: a Kafka consumer group decides.

Every ingest replica joins one consumer group on a small assignment topic (no message is
ever written to it). Each rule group maps to one of the topic's partitions by a stable
hash of its name, and a replica evaluates exactly the groups whose partition the group
coordinator assigned to it. Kafka's group membership does the rest: when a replica dies
or stops, its session ends and its partitions go to the live ones (after the session
timeout), which rebuild the groups' state from ``query_range`` and evaluate on. Nothing
here votes or elects; the broker's coordinator is the one authority.

A revoked partition's groups stop before the revocation completes: the rebalance waits
for an evaluation of theirs still in flight, so two live replicas never evaluate the same
group at once. Without Kafka, ``Everything`` owns every group (one replica, as before).
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import kafka
import kafka.admin
import kafka.errors
import structlog

log = structlog.get_logger(__name__)

_POLL_MS = 500


class Ownership(Protocol):
    """What the Prometheus poller asks before evaluating a group."""

    def owns(self, group: str) -> bool:
        """Whether this replica evaluates ``group`` now."""

    def begin(self, group: str) -> bool:
        """Start an evaluation of ``group``; ``False`` (and nothing started) if not owned."""

    def end(self, group: str) -> None:
        """The evaluation ``begin`` started is over."""


class Everything:
    """One replica: every group is this one's."""

    def owns(self, group: str) -> bool:
        """Always."""
        del group
        return True

    def begin(self, group: str) -> bool:
        """Always."""
        del group
        return True

    def end(self, group: str) -> None:
        """Nothing to do."""


def partition_of(group: str, partitions: int) -> int:
    """The assignment partition of rule group ``group``: stable across processes and runs."""
    digest = hashlib.sha256(group.encode()).digest()
    return int.from_bytes(digest[:8], "big") % partitions


@dataclass(frozen=True, slots=True, kw_only=True)
class AssignmentConfig:
    """The assignment topic and the consumer group over it."""

    bootstrap_servers: tuple[str, ...]
    topic: str = "homeostat.rule-groups"
    group_id: str = "homeostat-rule-groups"
    partitions: int = 16
    replication_factor: int = 1
    session_timeout: timedelta = timedelta(seconds=10)
    client_options: Mapping[str, Any] = field(default_factory=dict)
    revoke_patience: timedelta = timedelta(seconds=30)
    """How long a revocation waits for an evaluation in flight."""


class KafkaAssignment:
    """Rule groups owned through partitions of the assignment topic; ``run`` in a thread."""

    def __init__(
        self, config: AssignmentConfig, *, on_change: Callable[[], None] | None = None
    ) -> None:
        """Join ``config.group_id``; ``on_change`` is called (in the consumer thread) on changes."""
        self._config = config
        self._on_change = on_change
        self._lock = threading.Condition()
        self._owned: frozenset[int] = frozenset()
        self._partitions = config.partitions
        self._in_flight: Counter[str] = Counter()
        self.assigned = threading.Event()
        """Set once this replica took part in a first assignment."""

    # The poller's side (event loop thread).

    def owns(self, group: str) -> bool:
        """Whether ``group``'s partition is assigned to this replica now."""
        with self._lock:
            return partition_of(group, self._partitions) in self._owned

    def begin(self, group: str) -> bool:
        """Mark an evaluation of ``group`` in flight, if this replica owns it."""
        with self._lock:
            if partition_of(group, self._partitions) not in self._owned:
                return False
            self._in_flight[group] += 1
            return True

    def end(self, group: str) -> None:
        """An evaluation of ``group`` ended."""
        with self._lock:
            self._in_flight[group] -= 1
            if self._in_flight[group] <= 0:
                del self._in_flight[group]
            self._lock.notify_all()

    # The consumer's side (its own thread).

    def _revoked(self, revoked: Any) -> None:
        gone = {tp.partition for tp in revoked if tp.topic == self._config.topic}
        with self._lock:
            self._owned = self._owned - gone

            def settled() -> bool:
                return not any(
                    partition_of(group, self._partitions) in gone for group in self._in_flight
                )

            if not self._lock.wait_for(settled, self._config.revoke_patience.total_seconds()):
                log.warning("rule_group_revoke_timed_out", partitions=sorted(gone))
        log.info("rule_group_partitions_revoked", partitions=sorted(gone))
        if self._on_change is not None:
            self._on_change()

    def _assigned(self, assigned: Any) -> None:
        got = {tp.partition for tp in assigned if tp.topic == self._config.topic}
        with self._lock:
            self._owned = frozenset(got)
        self.assigned.set()
        log.info("rule_group_partitions_assigned", partitions=sorted(got))
        if self._on_change is not None:
            self._on_change()

    def ensure_topic(self) -> int:
        """Create the assignment topic if missing; the number of its partitions."""
        options = dict(self._config.client_options)
        admin = kafka.admin.KafkaAdminClient(
            bootstrap_servers=list(self._config.bootstrap_servers), **options
        )
        try:
            topic = kafka.admin.NewTopic(
                name=self._config.topic,
                num_partitions=self._config.partitions,
                replication_factor=self._config.replication_factor,
            )
            try:
                admin.create_topics([topic])
                log.info("rule_group_topic_created", topic=self._config.topic)
            except kafka.errors.TopicAlreadyExistsError:
                pass
        finally:
            admin.close()
        return self._config.partitions

    def run(self, stop: threading.Event) -> None:
        """Stay in the consumer group until ``stop`` is set; leaving hands the groups over."""
        self.ensure_topic()
        session_ms = int(self._config.session_timeout.total_seconds() * 1000)
        consumer = kafka.KafkaConsumer(
            bootstrap_servers=list(self._config.bootstrap_servers),
            group_id=self._config.group_id,
            enable_auto_commit=False,
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=max(session_ms // 3, 100),
            max_poll_interval_ms=max(session_ms, 10_000),
            **dict(self._config.client_options),
        )
        listener = _Listener(self)
        try:
            consumer.subscribe([self._config.topic], listener=listener)
            while not stop.is_set():
                consumer.poll(timeout_ms=_POLL_MS)
                known = consumer.partitions_for_topic(self._config.topic)
                if known:
                    with self._lock:
                        self._partitions = len(known)
        finally:
            consumer.close(autocommit=False)  # leaves the group: the others take over now
            with self._lock:
                self._owned = frozenset()
            log.info("rule_group_assignment_stopped")


class _Listener(kafka.ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, assignment: KafkaAssignment) -> None:
        self._assignment = assignment

    def on_partitions_revoked(self, revoked: Any) -> None:
        self._assignment._revoked(revoked)  # noqa: SLF001 - the listener is part of the class

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._assignment._assigned(assigned)  # noqa: SLF001 - the listener is part of the class


def start_thread(assignment: KafkaAssignment) -> tuple[threading.Thread, threading.Event]:
    """Run ``assignment`` in a daemon thread; set the event to leave the group."""
    stop = threading.Event()

    def keep_running() -> None:
        while not stop.is_set():
            try:
                assignment.run(stop)
            except kafka.errors.KafkaError as exc:
                log.warning("rule_group_assignment_failed", error=str(exc))
                stop.wait(2)

    thread = threading.Thread(target=keep_running, name="rule-group-assignment", daemon=True)
    thread.start()
    return thread, stop
