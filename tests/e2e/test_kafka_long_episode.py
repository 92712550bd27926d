"""An episode older than the Kafka rebuild window survives a SIGKILL of `homeostat up`: after the restart the all-clear resolves that same episode."""

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime

import homeostat
import kafka_streams
import pytest
from kafka import KafkaProducer

from controller.domain import resources
from controller.operations import links, views
from controller.workflows import resource_io

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

WINDOW = 20
"""Seconds of the past a restart re-reads (``kafka.rebuild_window``); Kafka's own record
times decide what lies inside, so the test waits that long in real time."""

RULES = """\
groups:
  - name: hosts
    rules:
      - name: Hot{suffix}
        source: kafka
        stream: {topic}
        match: labels.kind == 'temp'
        when: body.celsius > 80
        resource: host/{{{{ labels.host }}}}
"""


def _send(bootstrap: str, topic: str, host: str, *, celsius: int, at: datetime) -> None:
    """One reading, stamped ``at`` in its body and as its Kafka record time."""
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    try:
        event = {"timestamp": at.isoformat(), "kind": "temp", "host": host, "celsius": celsius}
        producer.send(
            topic,
            key=host.encode(),
            value=json.dumps(event).encode(),
            timestamp_ms=int(at.timestamp() * 1000),
        ).get(timeout=30)
    finally:
        producer.close()


async def test_the_all_clear_after_a_restart_resolves_an_episode_older_than_the_rebuild_window(
    tmp_path, temporal_dev_server, kafka_bootstrap
):
    """A host still hot 25 s after its episode began (before the 20 s the restart re-reads) is cleared after a SIGKILL and restart: the episode that began 25 s ago closes and no other starts."""
    suffix = uuid.uuid4().hex[:6]
    host = f"db-{suffix}"
    resource = f"host/{host}"
    topic = kafka_streams.new_topic(kafka_bootstrap, "long")
    group = f"g-{topic}"
    folder = homeostat.write_rules(tmp_path, RULES.format(suffix=suffix, topic=topic))
    config = homeostat.make_settings(
        folder,
        temporal_dev_server.address,
        kafka={
            "bootstrap_servers": [kafka_bootstrap],
            "group_id": group,
            "rebuild_window": f"{WINDOW}s",
            **kafka_streams.CONSUMER,
        },
    )
    api = f"http://127.0.0.1:{config.http.port}"
    temporal = await homeostat.client(temporal_dev_server.address)
    process = homeostat.Process(tmp_path / "homeostat.yaml", tmp_path / "homeostat.log")
    now = datetime.now(UTC)

    async def listed():
        view = await views.show_resource(
            temporal, resources.ResourceKey(resource), links=links.Links(), now=datetime.now(UTC)
        )
        return [episode.episode for episode in view.episodes]

    async def closed():
        state: resource_io.ResourceState = await homeostat.resource_state(temporal, resource)
        return not state.episodes and state.outcomes

    try:
        process.start(api)
        _send(kafka_bootstrap, topic, host, celsius=95, at=now)
        [episode] = await homeostat.eventually(listed, timeout=60)
        await asyncio.sleep(max(0.0, WINDOW + 5 - (datetime.now(UTC) - now).total_seconds()))
        _send(kafka_bootstrap, topic, host, celsius=96, at=datetime.now(UTC))
        deadline = time.monotonic() + 60
        while kafka_streams.committed(kafka_bootstrap, group, topic) < 2:
            assert time.monotonic() < deadline, "the readings were not committed"
            time.sleep(0.5)

        process.kill()
        process.start(api)
        _send(kafka_bootstrap, topic, host, celsius=20, at=datetime.now(UTC))

        outcomes = await homeostat.eventually(closed, timeout=90)
        assert [outcome.episode for outcome in outcomes] == [episode]
        state = await homeostat.resource_state(temporal, resource)
        assert state.seen == (f"{episode}#fired", f"{episode}#resolved")
    finally:
        process.stop()
