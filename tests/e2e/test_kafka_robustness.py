"""Hostile Kafka messages, skewed clocks and refused hand-offs never stop or blind the stream."""

import json
from datetime import UTC, datetime, timedelta

import homeostat
import kafka_streams
import pytest

RULES = """\
groups:
  - name: hosts
    rules:
      - name: HostDown
        source: kafka
        stream: {topic}
        match: labels.kind == 'host'
        when: body.state == 'down'
        resource: host/{{{{ labels.host }}}}
"""


def _down(host: str, at: datetime) -> tuple[bytes, bytes]:
    event = {"timestamp": at.isoformat(), "kind": "host", "host": host, "state": "down"}
    return host.encode(), json.dumps(event).encode()


def _settings(tmp_path, temporal_address, bootstrap, topic, **groups):
    folder = homeostat.write_rules(tmp_path, RULES.format(topic=topic))
    return homeostat.make_settings(
        folder,
        temporal_address,
        kafka={
            "bootstrap_servers": [bootstrap],
            "group_id": f"g-{topic}",
            "dead_letter_topic": f"{topic}.dead",
            **kafka_streams.CONSUMER,
        },
        **groups,
    )


HOSTILE = {
    "nested 5,000 deep": b"[" * 5000 + b"]" * 5000,
    "integer of 4,301 digits": b'{"kind": "host", "host": "x", "n": ' + b"7" * 4301 + b"}",
    "sample value of 400 digits": (
        b'{"name": "up", "labels": {"host": "x"}, "value": 1' + b"0" * 400 + b"}"
    ),
    "binary garbage": bytes(range(256)),
}


@pytest.mark.timeout(180)
async def test_messages_that_break_the_decoder_are_dead_lettered_and_the_stream_goes_on(
    tmp_path, temporal_dev_server, kafka_bootstrap
):
    """A 5,000-deep array, a 4,301-digit integer, a 400-digit sample value and binary garbage are each dead-lettered with the error in its headers, and the valid event behind them still starts its episode."""
    topic = kafka_streams.new_topic(kafka_bootstrap, "hostile")
    config = _settings(tmp_path, temporal_dev_server.address, kafka_bootstrap, topic)
    now = datetime.now(UTC)
    kafka_streams.produce(
        kafka_bootstrap,
        topic,
        [*((b"x", value) for value in HOSTILE.values()), _down("after-the-storm", now)],
    )
    async with homeostat.running(config):
        temporal = await homeostat.client(temporal_dev_server.address)
        state = await homeostat.eventually(
            lambda: homeostat.resource_state(temporal, "host/after-the-storm"), timeout=90
        )
        assert len(state.episodes) == 1
        dead = kafka_streams.read_all(kafka_bootstrap, f"{topic}.dead", expect=len(HOSTILE))
    assert [record.value for record in dead] == list(HOSTILE.values())
    for record in dead:
        headers = dict(record.headers)
        assert headers["homeostat-error"], headers
        assert headers["homeostat-source-topic"] == topic.encode()
    errors = [dict(record.headers)["homeostat-error"].decode() for record in dead]
    assert "RecursionError" in errors[0]
    assert "4300" in errors[1]
    assert dict(dead[2].headers)["homeostat-error-field"] == b"value"
    assert "not valid JSON" in errors[3]


@pytest.mark.timeout(180)
async def test_a_message_from_a_clock_six_minutes_ahead_is_dead_lettered_and_blinds_nothing(
    tmp_path, temporal_dev_server, kafka_bootstrap
):
    """A message stamped six minutes ahead is dead-lettered naming the clock skew, and the events behind it, three minutes old, still start their episodes."""
    topic = kafka_streams.new_topic(kafka_bootstrap, "skew")
    config = _settings(tmp_path, temporal_dev_server.address, kafka_bootstrap, topic)
    now = datetime.now(UTC)
    ahead = _down("from-the-future", now + timedelta(minutes=6))
    behind = [_down(f"late-{n}", now - timedelta(minutes=3, seconds=-n)) for n in range(3)]
    kafka_streams.produce(kafka_bootstrap, topic, [ahead, *behind])
    async with homeostat.running(config):
        temporal = await homeostat.client(temporal_dev_server.address)
        for n in range(3):
            state = await homeostat.eventually(
                lambda n=n: homeostat.resource_state(temporal, f"host/late-{n}"), timeout=90
            )
            assert len(state.episodes) == 1
        dead = kafka_streams.read_all(kafka_bootstrap, f"{topic}.dead", expect=1)
    assert [record.value for record in dead] == [ahead[1]]
    headers = dict(dead[0].headers)
    assert headers["homeostat-error-field"] == b"(event time)"
    assert b"max_clock_skew" in headers["homeostat-error"]
    workflows = await kafka_streams.resource_workflows(temporal, config.temporal.task_queue)
    assert "resource/host/from-the-future" not in workflows
