"""A Kafka rule added by hot reload reads its topic without a restart."""

import json
from datetime import UTC, datetime

import homeostat
import kafka_streams
import pytest

RULE = """\
      - name: {name}
        source: kafka
        stream: {topic}
        match: labels.kind == 'host'
        when: body.state == 'down'
        resource: host/{{{{ labels.host }}}}
"""


def _rules(*rules: tuple[str, str]) -> str:
    return "groups:\n  - name: hosts\n    rules:\n" + "".join(
        RULE.format(name=name, topic=topic) for name, topic in rules
    )


def _down(host: str) -> tuple[bytes, bytes]:
    event = {
        "timestamp": datetime.now(UTC).isoformat(),
        "kind": "host",
        "host": host,
        "state": "down",
    }
    return host.encode(), json.dumps(event).encode()


@pytest.mark.timeout(180)
async def test_a_kafka_rule_added_by_hot_reload_reads_its_new_topic(
    tmp_path, temporal_dev_server, kafka_bootstrap
):
    """After a reload adds a rule on a second topic, an event on that topic starts its episode, and the first topic is still read."""
    first = kafka_streams.new_topic(kafka_bootstrap, "reload-a")
    second = kafka_streams.new_topic(kafka_bootstrap, "reload-b")
    folder = homeostat.write_rules(tmp_path, _rules(("DownA", first)))
    config = homeostat.make_settings(
        folder,
        temporal_dev_server.address,
        rules={"reload_interval": "200ms"},
        kafka={
            "bootstrap_servers": [kafka_bootstrap],
            "group_id": f"g-{first}",
            "dead_letter_topic": f"{first}.dead",
            **kafka_streams.CONSUMER,
        },
    )
    async with homeostat.running(config):
        temporal = await homeostat.client(temporal_dev_server.address)
        kafka_streams.produce(kafka_bootstrap, first, [_down("on-a")])
        await homeostat.eventually(
            lambda: homeostat.resource_state(temporal, "host/on-a"), timeout=60
        )
        (folder / "rules" / "rules.yaml").write_text(_rules(("DownA", first), ("DownB", second)))
        # The new rule is in force once the engine knows it; then its topic gets an event.
        kafka_streams.produce(kafka_bootstrap, second, [_down("on-b")])
        state = await homeostat.eventually(
            lambda: homeostat.resource_state(temporal, "host/on-b"), timeout=90
        )
        assert [episode.fired.rule for episode in state.episodes] == ["DownB"]
        kafka_streams.produce(kafka_bootstrap, first, [_down("on-a-again")])
        await homeostat.eventually(
            lambda: homeostat.resource_state(temporal, "host/on-a-again"), timeout=60
        )


WEBHOOK_ONLY = """\
groups:
  - name: jobs
    rules:
      - name: JobFailed
        source: webhook
        match: labels.kind == 'job'
        when: body.status == 'failed'
        resource: job/{{ labels.job }}
"""


@pytest.mark.timeout(180)
async def test_the_first_kafka_rule_added_by_hot_reload_starts_the_consumer(
    tmp_path, temporal_dev_server, kafka_bootstrap
):
    """Started with no Kafka rule (so no consumer), a reload that adds one starts reading its topic."""
    topic = kafka_streams.new_topic(kafka_bootstrap, "reload-first")
    folder = homeostat.write_rules(tmp_path, WEBHOOK_ONLY)
    config = homeostat.make_settings(
        folder,
        temporal_dev_server.address,
        rules={"reload_interval": "200ms"},
        kafka={
            "bootstrap_servers": [kafka_bootstrap],
            "group_id": f"g-{topic}",
            "dead_letter_topic": f"{topic}.dead",
            **kafka_streams.CONSUMER,
        },
    )
    async with homeostat.running(config):
        temporal = await homeostat.client(temporal_dev_server.address)
        (folder / "rules" / "rules.yaml").write_text(_rules(("DownA", topic)))
        kafka_streams.produce(kafka_bootstrap, topic, [_down("first")])
        state = await homeostat.eventually(
            lambda: homeostat.resource_state(temporal, "host/first"), timeout=90
        )
        assert [episode.fired.rule for episode in state.episodes] == ["DownA"]
