"""Prometheus fires, two Alertmanagers notify, Homeostat starts one episode and ends it."""

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import homeostat
import httpx
import prometheus_client
import pytest
import yaml
from harness import prometheus
from prometheus_client.parser import text_string_to_metric_families

DOCS = Path(__file__).resolve().parents[2] / "docs" / "examples"
TOKEN = "am-e2e-token"

PROMETHEUS_RULES = """\
groups:
  - name: e2e
    interval: 1s
    rules:
      - alert: HighCPU
        expr: e2e_cpu > 0.9
        for: 2s
        labels: {severity: critical}
        annotations: {summary: "CPU of {{ $labels.service }} is high"}
"""

HOMEOSTAT_RULES = """\
groups:
  - name: alerts
    rules:
      - name: HighCPU
        source: alertmanager
        match: labels.alertname == 'HighCPU'
        resource: service/{{ labels.service }}
        severity: critical
"""


@pytest.fixture
def cpu_gauge():
    registry = prometheus_client.CollectorRegistry()
    gauge = prometheus_client.Gauge("e2e_cpu", "CPU.", ["service"], registry=registry)
    gauge.labels(service="web").set(0.1)
    with prometheus.exporter(registry) as port:
        yield gauge.labels(service="web"), port


def _alertmanager_config(tmp_path: Path, api_url: str) -> dict:
    """The documented example config, pointed at this test's Homeostat and timed for a test."""
    config = yaml.safe_load((DOCS / "alertmanager.yml").read_text())
    token_file = tmp_path / "homeostat-token"
    token_file.write_text(TOKEN)
    hook = config["receivers"][0]["webhook_configs"][0]
    hook["url"] = f"{api_url}/v1/alertmanager"
    hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    config["route"].update(group_wait="0s", group_interval="1s", repeat_interval="1h")
    return config


async def _all_delivered(http: httpx.AsyncClient, urls: list[str]) -> bool:
    """Whether each Alertmanager at ``urls`` has sent a webhook notification successfully."""
    for url in urls:
        text = (await http.get(f"{url}/metrics")).text
        sent = failed = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.labels.get("integration") != "webhook":
                    continue
                if sample.name == "alertmanager_notifications_total":
                    sent += sample.value
                elif sample.name == "alertmanager_notifications_failed_total":
                    failed += sample.value
        if sent - failed < 1:
            return False
    return True


def test_documented_alertmanager_config_is_valid(tmp_path):
    """The Alertmanager snippet shipped in docs passes the real `amtool check-config`."""
    result = subprocess.run(
        ["amtool", "check-config", str(DOCS / "alertmanager.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.timeout(120)
async def test_alert_to_episode_exactly_once_and_resolve_ends_it(
    tmp_path, temporal_dev_server, prometheus_factory, alertmanager_factory, cpu_gauge
):
    """One resource workflow and one episode despite two Alertmanagers and a replayed payload; the resolve closes it."""
    gauge, target_port = cpu_gauge
    folder = homeostat.write_rules(tmp_path, HOMEOSTAT_RULES)
    config = homeostat.make_settings(
        folder, temporal_dev_server.address, alertmanager={"bearer_token": TOKEN}
    )
    temporal = await homeostat.client(temporal_dev_server.address)
    async with homeostat.running(config) as endpoints:
        managers = [
            alertmanager_factory(config=_alertmanager_config(tmp_path, endpoints.api_url))
            for _ in range(2)
        ]
        prometheus_factory(
            config={
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "svc",
                        "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
                    }
                ],
                "alerting": {
                    "alertmanagers": [
                        {"static_configs": [{"targets": [f"127.0.0.1:{m.port}" for m in managers]}]}
                    ]
                },
            },
            rule_files={"e2e.rules.yml": PROMETHEUS_RULES},
        )
        gauge.set(0.95)
        state = await homeostat.eventually(
            lambda: homeostat.resource_state(temporal, "service/web"), timeout=45
        )
        assert len(state.episodes) == 1
        episode = state.episodes[0].fired

        # Replay the exact notification twice, as an HA pair or a retry would.
        async with httpx.AsyncClient() as http:
            alerts = (await http.get(f"{managers[0].url}/api/v2/alerts")).json()
            body = json.dumps(
                {
                    "version": "4",
                    "status": "firing",
                    "receiver": "homeostat",
                    "groupKey": "g",
                    "alerts": [
                        {
                            "status": "firing",
                            "labels": a["labels"],
                            "annotations": a["annotations"],
                            "startsAt": a["startsAt"],
                            "endsAt": "0001-01-01T00:00:00Z",
                            "fingerprint": a["fingerprint"],
                        }
                        for a in alerts
                    ],
                }
            ).encode()
            for _ in range(2):
                answer = await http.post(
                    f"{endpoints.api_url}/v1/alertmanager",
                    content=body,
                    headers={"Authorization": f"Bearer {TOKEN}"},
                )
                assert answer.status_code == 200, answer.text
            refused = await http.post(f"{endpoints.api_url}/v1/alertmanager", content=body)
            assert refused.status_code == 401

            # Both Alertmanagers delivered the alert themselves, besides the replays above.
            await homeostat.eventually(
                lambda: _all_delivered(http, [m.url for m in managers]), timeout=45
            )
        state = await homeostat.resource_state(temporal, "service/web")
        assert [e.fired.episode for e in state.episodes] == [episode.episode]
        assert await homeostat.runs_of(temporal, "service/web") == 1

        shown = await _cli(tmp_path, "resource", "show", "service/web", "--json")
        assert json.loads(shown)["episodes"][0]["episode"] == episode.episode
        silenced = await _cli(
            tmp_path,
            "resource",
            "silence",
            "service/web",
            "2h",
            "--reason",
            "maintenance",
            "--json",
        )
        assert json.loads(silenced)["phase"] == "silenced"
        await _cli(tmp_path, "resource", "unsilence", "service/web")

        gauge.set(0.1)
        state = await homeostat.eventually(lambda: _closed(temporal), timeout=45)
        assert state.episodes == ()
        assert [o.episode for o in state.outcomes] == [episode.episode]
        assert await homeostat.runs_of(temporal, "service/web") == 1


async def _cli(tmp_path, *args: str) -> str:
    """Run `homeostat ARGS --config` as an operator would; its standard output."""
    command = [
        sys.executable,
        "-m",
        "controller",
        *args,
        "--config",
        str(tmp_path / "homeostat.yaml"),
    ]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def _closed(temporal):
    state = await homeostat.resource_state(temporal, "service/web")
    return state if not state.episodes else None
