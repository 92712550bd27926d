"""100,000 Kafka events through a real broker into Homeostat, with a SIGKILL in the middle."""

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import homeostat
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from controller.workflows import resource_io

RESOURCES = 1000
STEPS = 100
HOT = [f"svc-{n:04d}" for n in range(0, RESOURCES, RESOURCES // 10)]
"""Ten resources whose CPU stays high from step 40 on: each must start exactly one episode."""
SPIKY = [f"svc-{n:04d}" for n in range(5, RESOURCES, 20)]
"""Fifty resources with 10-second spikes (shorter than `for`): none may start an episode."""
HOT_FROM = 40
HOLD_SECONDS = 30

RULES = f"""\
groups:
  - name: kafka
    rules:
      - name: CpuHot
        source: kafka
        stream: {{topic}}
        match: labels.kind == 'cpu'
        when: body.cpu > 0.9
        for: {HOLD_SECONDS}s
        resource: service/{{{{ labels.service }}}}
"""


def _cpu(service: str, step: int) -> float:
    if service in HOT and step >= HOT_FROM:
        return 0.97
    if service in SPIKY and step % 25 < 10:
        return 0.99
    return 0.40


def _produce(bootstrap: str, topic: str, steps: range, t0: datetime) -> dict[int, int]:
    """Produce ``steps`` for every resource, keyed by resource; the next offset per partition."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024)
    futures = []
    for step in steps:
        stamp = int((t0 + timedelta(seconds=step)).timestamp() * 1000)
        for n in range(RESOURCES):
            service = f"svc-{n:04d}"
            event = {
                "timestamp": stamp,
                "kind": "cpu",
                "service": service,
                "cpu": _cpu(service, step),
            }
            futures.append(
                producer.send(topic, key=service.encode(), value=json.dumps(event).encode())
            )
    producer.flush()
    ends: dict[int, int] = {}
    for future in futures:
        meta = future.get(timeout=30)
        ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)
    producer.close()
    return ends


def _send_malformed(bootstrap: str, topic: str) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    producer.send(topic, key=b"svc-0001", value=b"{this is not json").get(timeout=10)
    producer.close()


def _committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return {p: consumer.committed(TopicPartition(topic, p)) or 0 for p in range(partitions)}
    finally:
        consumer.close()


def _wait_committed(bootstrap, group, topic, ends, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        committed = _committed(bootstrap, group, topic, len(ends))
        if all(committed[p] >= end for p, end in ends.items()):
            return
        time.sleep(1)
    raise AssertionError(f"not all consumed: committed {committed}, produced {ends}")


def _dead_letters(bootstrap: str, topic: str) -> list:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        group_id=f"dlq-{uuid.uuid4().hex[:6]}",
        consumer_timeout_ms=8000,
        max_poll_interval_ms=10_000,
        session_timeout_ms=6000,
    )
    try:
        return list(consumer)
    finally:
        consumer.close()


@pytest.mark.timeout(420)
async def test_exactly_ten_episodes_across_a_sigkill(
    tmp_path, temporal_dev_server, kafka_bootstrap
):
    """Exactly the ten sustained resources start one episode each, though the ingest process was SIGKILLed mid-stream."""
    topic = f"cpu-{uuid.uuid4().hex[:6]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    admin.close()
    folder = homeostat.write_rules(tmp_path, RULES.replace("{topic}", topic))
    group = f"homeostat-{uuid.uuid4().hex[:6]}"
    config = homeostat.make_settings(
        folder,
        temporal_dev_server.address,
        kafka={
            "bootstrap_servers": [kafka_bootstrap],
            "group_id": group,
            "dead_letter_topic": f"{topic}.dead",
            "session_timeout": "6s",
            "max_poll_interval": "10s",
        },
    )
    config_path = tmp_path / "homeostat.yaml"
    api = f"http://127.0.0.1:{config.http.port}"
    # Event time as a live stream has it: the first half ends about now, so when the
    # process is killed the hot resources are pending, 10 s into their 30 s `for`.
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=STEPS // 2)
    process = homeostat.Process(config_path, tmp_path / "homeostat.log")
    try:
        first_half = _produce(kafka_bootstrap, topic, range(STEPS // 2), t0)
        _send_malformed(kafka_bootstrap, topic)
        process.start(api)
        _wait_committed(kafka_bootstrap, group, topic, first_half, timeout=120)
        process.kill()  # SIGKILL: hot resources are half-way through `for`
        ends = _produce(kafka_bootstrap, topic, range(STEPS // 2, STEPS), t0)
        process.start(api)
        _wait_committed(kafka_bootstrap, group, topic, ends, timeout=180)

        temporal = await homeostat.client(temporal_dev_server.address)
        started = sorted(
            [
                wf.id
                async for wf in temporal.list_workflows(
                    f"WorkflowType = 'ResourceWorkflow' AND TaskQueue = '{config.temporal.task_queue}'"
                )
            ]
        )
        assert started == sorted(f"resource/service/{name}" for name in HOT)
        for name in HOT:
            state = await homeostat.eventually(
                lambda name=name: homeostat.resource_state(temporal, f"service/{name}"), timeout=30
            )
            assert len(state.episodes) == 1, name
            episode = state.episodes[0].fired
            expected_start = t0 + timedelta(seconds=HOT_FROM + HOLD_SECONDS)
            assert episode.started_at == expected_start, (name, episode.started_at)
            assert state.phase is not resource_io.Phase.HEALTHY
        dead = _dead_letters(kafka_bootstrap, f"{topic}.dead")
        assert [record.value for record in dead] == [b"{this is not json"]
        headers = dict(dead[0].headers)
        assert b"not valid JSON" in headers["homeostat-error"]
        assert headers["homeostat-source-topic"] == topic.encode()
    finally:
        process.stop()
