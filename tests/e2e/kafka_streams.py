"""Topics, producers and dead-letter readers for the end-to-end Kafka tests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from temporalio.client import Client

CONSUMER = {"session_timeout": "6s", "max_poll_interval": "10s"}
"""Consumer timings for tests: a quick first join, a quick rejoin after a kill."""


def new_topic(bootstrap: str, prefix: str, *, partitions: int = 1) -> str:
    """Create a topic with a unique name and return the name."""
    topic = f"{prefix}-{uuid.uuid4().hex[:6]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()
    return topic


def produce(
    bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes]]
) -> list[tuple[int, int]]:
    """Send ``(key, value)`` messages in order; their (partition, offset), in order."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, max_request_size=8 * 1024 * 1024, linger_ms=5
    )
    try:
        futures = [producer.send(topic, key=key, value=value) for key, value in messages]
        producer.flush()
        return [(meta.partition, meta.offset) for meta in (f.get(timeout=30) for f in futures)]
    finally:
        producer.close()


def committed(bootstrap: str, group: str, topic: str, partition: int = 0) -> int:
    """The group's committed offset of one partition (0 when none)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return consumer.committed(TopicPartition(topic, partition)) or 0
    finally:
        consumer.close()


def read_all(bootstrap: str, topic: str, *, expect: int, timeout: float = 60) -> list[Any]:
    """Every record of ``topic`` from the start, once at least ``expect`` arrived (or timeout)."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        partitions: list[TopicPartition] = []
        while not partitions and time.monotonic() < deadline:
            found = consumer.partitions_for_topic(topic)
            partitions = [TopicPartition(topic, p) for p in sorted(found or ())]
            if not partitions:
                time.sleep(0.5)
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
            if len(records) >= expect:
                # A short grace read: anything beyond ``expect`` is a duplicate to report.
                for batch in consumer.poll(timeout_ms=1000).values():
                    records.extend(batch)
                break
        return records
    finally:
        consumer.close()


async def resource_workflows(temporal: Client, task_queue: str) -> set[str]:
    """Ids of the resource workflows started on ``task_queue``."""
    query = f"WorkflowType = 'ResourceWorkflow' AND TaskQueue = '{task_queue}'"
    return {wf.id async for wf in temporal.list_workflows(query)}
