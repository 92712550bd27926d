"""A transition fired by the engine's clock is as durable as one fired by a message."""

import json
import time
import urllib.request
from datetime import UTC, datetime

import homeostat
import kafka_streams
import pytest
from harness import processes

from controller import embedded
from controller.domain import contract

RULES = """\
groups:
  - name: hosts
    rules:
      - name: HostDown
        source: kafka
        stream: {topic}
        match: labels.kind == 'host'
        when: body.state == 'down'
        for: 2s
        stale_after: 10m
        resource: host/{{{{ labels.host }}}}
"""


def _down(host: str) -> tuple[bytes, bytes]:
    event = {
        "timestamp": datetime.now(UTC).isoformat(),
        "kind": "host",
        "host": host,
        "state": "down",
    }
    return host.encode(), json.dumps(event).encode()


def _logged(path, event: str, **fields) -> bool:
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == event and all(record.get(k) == v for k, v in fields.items()):
            return True
    return False


def _wait(check, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.2)


def _kafka_observations(api: str) -> float:
    with urllib.request.urlopen(f"{api}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    for line in text.splitlines():
        if line.startswith('homeostat_observations_total{source="kafka"}'):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.timeout(300)
async def test_a_clock_fired_episode_survives_a_sigkill_during_a_temporal_outage(
    tmp_path, kafka_bootstrap
):
    """A `for: 2s` episode fired by the clock while Temporal is down, followed by an event that fires nothing, still reaches its workflow after Homeostat is SIGKILLed and restarted with Temporal back."""
    server = embedded.EmbeddedTemporal(
        db_file=tmp_path / "t.db",
        port=processes.free_port(),
        ui=False,
        search_attributes=contract.SEARCH_ATTRIBUTES,
    )
    await server.start()
    topic = kafka_streams.new_topic(kafka_bootstrap, "clock")
    group = f"g-{topic}"
    folder = homeostat.write_rules(tmp_path, RULES.format(topic=topic))
    config = homeostat.make_settings(
        folder,
        server.address,
        kafka={"bootstrap_servers": [kafka_bootstrap], "group_id": group, **kafka_streams.CONSUMER},
    )
    api = f"http://127.0.0.1:{config.http.port}"
    log = tmp_path / "homeostat.log"
    process = homeostat.Process(tmp_path / "homeostat.yaml", log)
    try:
        process.start(api)
        # The consumer reads the open episodes from Temporal before its first rebuild
        # (docs/ingest.md): Temporal goes away after that, while Homeostat runs.
        _wait(lambda: _logged(log, "episodes_expected"), timeout=60, what="the first rebuild")
        await server.stop()
        kafka_streams.produce(kafka_bootstrap, topic, [_down("h1")])
        # The engine's clock fires the episode 2 s later; Temporal is down, so it waits.
        _wait(
            lambda: _logged(log, "transition", kind="fired", resource="host/h1"),
            timeout=60,
            what="the clock fired the episode",
        )
        kafka_streams.produce(kafka_bootstrap, topic, [_down("h1")])  # fires nothing
        _wait(lambda: _kafka_observations(api) >= 2, timeout=60, what="the 2nd event was read")
        # Before the fix its offset was committed at once, past the undelivered episode.
        deadline = time.monotonic() + 4
        while (
            time.monotonic() < deadline
            and kafka_streams.committed(kafka_bootstrap, group, topic) < 2
        ):
            time.sleep(0.5)
        process.kill()
        await server.start()
        process.start(api, timeout=120)
        temporal = await homeostat.client(server.address)
        state = await homeostat.eventually(
            lambda: homeostat.resource_state(temporal, "host/h1"), timeout=90
        )
        assert [episode.fired.rule for episode in state.episodes] == ["HostDown"]
    finally:
        process.stop()
        await server.stop()
