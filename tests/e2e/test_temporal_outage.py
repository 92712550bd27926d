"""Temporal stops for 30 s in the middle of a burst; nothing acknowledged is lost."""

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import homeostat
import httpx
import pytest
from harness import processes
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from controller import embedded
from controller.domain import contract

RESOURCES = 20
TOKEN = "events-token"
RULES = """\
groups:
  - name: burst
    rules:
      - name: Overheated
        source: kafka
        stream: {topic}
        match: labels.kind == 'temp'
        when: body.celsius > 80
        resource: host/{{{{ labels.host }}}}
      - name: Failed
        source: webhook
        match: labels.kind == 'job'
        when: body.status == 'failed'
        resource: job/{{{{ labels.job }}}}
"""


@pytest.mark.timeout(240)
async def test_a_30_second_outage_loses_nothing_acknowledged(tmp_path, kafka_bootstrap):
    """Events read from Kafka and webhooks answered 200 during a Temporal outage all become episodes once it is back."""
    server = embedded.EmbeddedTemporal(
        db_file=tmp_path / "t.db",
        port=processes.free_port(),
        ui=False,
        search_attributes=contract.SEARCH_ATTRIBUTES,
    )
    await server.start()
    topic = f"temp-{uuid.uuid4().hex[:6]}"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    admin.close()
    folder = homeostat.write_rules(tmp_path, RULES.format(topic=topic))
    config = homeostat.make_settings(
        folder,
        server.address,
        kafka={
            "bootstrap_servers": [kafka_bootstrap],
            "group_id": f"g-{topic}",
            "session_timeout": "6s",
            "max_poll_interval": "10s",
        },
        webhooks={"bearer_token": TOKEN},
        dispatch={"webhook_deadline": "2s"},
    )
    api = f"http://127.0.0.1:{config.http.port}"
    process = homeostat.Process(tmp_path / "homeostat.yaml", tmp_path / "homeostat.log")
    try:
        process.start(api)
        await server.stop()
        outage_began = time.monotonic()
        now = datetime.now(UTC)
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
        for n in range(RESOURCES):
            event = {"timestamp": now.isoformat(), "kind": "temp", "host": f"h{n}", "celsius": 95}
            producer.send(topic, key=f"h{n}".encode(), value=json.dumps(event).encode())
        producer.flush()
        producer.close()
        accepted, refused = [], []
        async with httpx.AsyncClient(timeout=30) as http:
            for n in range(5):
                event = {
                    "kind": "job",
                    "job": f"backup-{n}",
                    "status": "failed",
                    "timestamp": (now + timedelta(seconds=n)).isoformat(),
                }
                answer = await http.post(
                    f"{api}/v1/events", json=event, headers={"Authorization": f"Bearer {TOKEN}"}
                )
                (accepted if answer.status_code == 200 else refused).append((n, answer.status_code))
        assert all(status == 503 for _, status in refused)
        assert len(accepted) + len(refused) == 5
        await asyncio.sleep(max(0.0, 30 - (time.monotonic() - outage_began)))
        await server.start()

        temporal = await homeostat.client(server.address)
        expected = {f"resource/host/h{n}" for n in range(RESOURCES)}
        # A 503 asks the sender to retry, yet the transition stays queued and still goes
        # out: every job, acknowledged or not, ends up with its episode.
        expected |= {f"resource/job/backup-{n}" for n in range(5)}

        async def started():
            found = {
                wf.id async for wf in temporal.list_workflows("WorkflowType = 'ResourceWorkflow'")
            }
            return found if expected <= found else None

        found = await homeostat.eventually(started, timeout=90, interval=1)
        assert found == expected
        for workflow_id in sorted(expected):
            resource = workflow_id.removeprefix("resource/")
            state = await homeostat.eventually(
                lambda resource=resource: homeostat.resource_state(temporal, resource), timeout=30
            )
            assert len(state.episodes) == 1, resource
    finally:
        process.stop()
        await server.stop()
