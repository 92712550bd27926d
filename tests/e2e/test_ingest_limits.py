"""Webhook events with skewed clocks or oversized labels are refused before they change anything."""

from datetime import UTC, datetime, timedelta

import homeostat
import httpx
import pytest

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
        assert (
            _metric(metrics, "homeostat_observations_refused_total", reason="clock_skew") == 1
        )
