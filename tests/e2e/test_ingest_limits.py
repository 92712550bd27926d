"""Webhook events with skewed clocks or oversized labels are refused before they change anything."""

import asyncio
from datetime import UTC, datetime, timedelta

import homeostat
import httpx
import pytest
from harness import processes
from temporalio.client import Client

from controller import assembly, service
from controller.domain import observations
from controller.observability import metrics as metrics_module
from controller.workflows import converter

TOKEN = "events-token"
RULES = """\
groups:
  - name: jobs
    rules:
      - name: JobFailed
        source: webhook
        match: labels.kind == 'job'
        when: body.status == 'failed'
        resource: job/{{ labels.job }}
"""

KAFKA_RULES = """\
groups:
  - name: jobs
    rules:
      - name: JobFailed
        source: kafka
        stream: jobs
        match: labels.kind == 'job'
        when: body.status == 'failed'
        resource: job/{{ labels.job }}
"""


def _failed(job: str, at: datetime, **extra) -> dict:
    return {"kind": "job", "job": job, "status": "failed", "timestamp": at.isoformat(), **extra}


def _metric(text: str, name: str, **labels: str) -> float:
    wanted = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0


@pytest.mark.timeout(120)
async def test_an_event_from_a_clock_six_minutes_ahead_is_refused_and_blinds_nothing(
    tmp_path, temporal_dev_server
):
    """An event six minutes in the future gets a 400 naming its event time and is counted; events sent after it still start their episodes."""
    folder = homeostat.write_rules(tmp_path, RULES)
    config = homeostat.make_settings(
        folder, temporal_dev_server.address, webhooks={"bearer_token": TOKEN}
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with homeostat.running(config) as endpoints, httpx.AsyncClient(timeout=30) as http:
        now = datetime.now(UTC)
        ahead = await http.post(
            f"{endpoints.api_url}/v1/events",
            json=_failed("from-the-future", now + timedelta(minutes=6)),
            headers=headers,
        )
        assert ahead.status_code == 400, ahead.text
        assert ahead.json()["field"] == "(event time)"
        assert "max_clock_skew" in ahead.json()["error"]
        unrelated = await http.post(
            f"{endpoints.api_url}/v1/events",
            json={"kind": "noise", "timestamp": (now + timedelta(seconds=50)).isoformat()},
            headers=headers,
        )
        assert unrelated.status_code == 200, unrelated.text
        answers = [
            await http.post(
                f"{endpoints.api_url}/v1/events",
                json=_failed(f"backup-{n}", now - timedelta(minutes=3) + timedelta(seconds=n)),
                headers=headers,
            )
            for n in range(3)
        ]
        assert [answer.status_code for answer in answers] == [200, 200, 200]
        assert all(len(answer.json()["transitions"]) == 1 for answer in answers), [
            answer.text for answer in answers
        ]
        metrics = (await http.get(f"{endpoints.api_url}/metrics")).text
        assert _metric(metrics, "homeostat_observations_refused_total", reason="clock_skew") == 1


@pytest.mark.timeout(60)
async def test_readyz_says_not_ready_while_hand_offs_stall(tmp_path):
    """While a transition has waited longer than dispatch.stall_after for Temporal, /readyz answers 503 and says why in its dispatch check."""
    # A Kafka rule: webhook events would wait, before the engine, for the open episodes to
    # be read from this Temporal that never answers (docs/ingest.md); Kafka events do not.
    folder = homeostat.write_rules(tmp_path, KAFKA_RULES)
    dead = f"127.0.0.1:{processes.free_port()}"
    config = homeostat.make_settings(folder, dead, dispatch={"stall_after": "1s"})
    client = await Client.connect(dead, lazy=True, data_converter=converter.DATA_CONVERTER)
    ingest = assembly.build_ingest(config, client, metrics_module.create())
    app = service._build_app(client, ingest.metrics, ingest)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://h"
    ) as http:
        first = (await http.get("/readyz")).json()
        assert first["checks"]["dispatch"] == "ok"
        stuck = asyncio.create_task(
            ingest.pipe.ingest(
                [
                    observations.Observation(
                        source=observations.SourceKind.KAFKA,
                        stream="jobs",
                        at=datetime.now(UTC),
                        labels={"kind": "job", "job": "stuck"},
                        body={"status": "failed"},
                    )
                ]
            )
        )
        await asyncio.sleep(1.5)
        answer = await http.get("/readyz")
        stuck.cancel()
        await ingest.dispatcher.close(drain=timedelta(0))
    assert answer.status_code == 503
    assert "dispatch.stall_after" in answer.json()["checks"]["dispatch"]


@pytest.mark.timeout(120)
async def test_a_900_kb_label_starts_its_episode_with_the_label_cut(tmp_path, temporal_dev_server):
    """An event with a 900 KB label gets 200 and starts its episode; the episode carries the label cut to ingest.max_value_length with a marker."""
    folder = homeostat.write_rules(tmp_path, RULES)
    config = homeostat.make_settings(
        folder, temporal_dev_server.address, webhooks={"bearer_token": TOKEN}
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with homeostat.running(config) as endpoints, httpx.AsyncClient(timeout=60) as http:
        answer = await http.post(
            f"{endpoints.api_url}/v1/events",
            json=_failed("huge", datetime.now(UTC), message="m" * 900_000),
            headers=headers,
        )
        assert answer.status_code == 200, answer.text[:300]
        assert len(answer.json()["transitions"]) == 1
        temporal = await homeostat.client(temporal_dev_server.address)
        state = await homeostat.eventually(
            lambda: homeostat.resource_state(temporal, "job/huge"), timeout=60
        )
    [episode] = state.episodes
    assert episode.fired.labels["message"] == "m" * 2048 + "...[897952 characters cut]"
