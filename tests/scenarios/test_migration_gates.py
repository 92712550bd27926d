"""Scenario 4: a migration behind health gates stops before the DNS cutover when the new site is not healthy.

The shipped migrate-service plan: maintenance on (playbook), provision (terraform, a stand-in
script on PATH), health check (verify over HTTP), DNS cutover (http to a DNS API). The new
site never answers its health check, so the plan stops there, pages once, and never calls
the DNS API. Time is compressed by configuration (divided by 120); the example URLs point
at the test's servers.
"""

import json
import os
import sys
from pathlib import Path

import pytest
import scenario_support as support

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))

from fake_api import FakeApi

from controller.workflows import remediation_io

BIN = Path(__file__).with_name("bin")
DNS_TOKEN = "dns-api-token"


@pytest.mark.timeout(180)
async def test_a_failed_health_check_stops_before_the_cutover_and_pages(
    tmp_path, scenario_temporal, pagerduty, monkeypatch
):
    """The new site does not answer: the plan stops at the health gate, the DNS API is never called, one page goes out, and the history says where and why."""
    dns = FakeApi(token=DNS_TOKEN).start(tmp_path)
    dead = f"http://127.0.0.1:{support.free_port()}"
    infra = tmp_path / "infra"
    infra.mkdir()
    (infra / "main.tf.json").write_text(json.dumps({"output": {"address": {"value": "10.1.0.9"}}}))
    maintenance = tmp_path / "maintenance"
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    rules = support.compressed_copy(
        tmp_path / "content",
        factor=120,
        files={"remediations/migrate-service.yaml": None},
        replace={"https://shop.new-site.example.com": dead, "https://dns.example.com": dns.url},
    )
    config_path = support.make_settings(
        tmp_path,
        scenario_temporal.address,
        rules=rules,
        paging=support.paging(pagerduty),
        activities={"credentials": {"dns": {"bearer_token": DNS_TOKEN}}},
    )
    try:
        async with support.running(support.load(config_path)):
            code, out, err = await support.homeostat_cli(
                config_path,
                *("run", "migrate-service", "service/catalog", "--timeout", "150"),
                *("--var", f"tf_dir={infra}", "--var", f"maintenance_dir={maintenance}"),
            )
            episode = out.split()[1]
            history_code, history, history_err = await support.homeostat_cli(
                config_path, "history", episode
            )
    finally:
        dns.stop()
    assert code == 1, out + err
    assert "outcome: escalated" in out
    temporal = await support.client(scenario_temporal.address)
    result = await support.remediation(temporal, episode)
    assert [(s.step, s.outcome) for s in result.steps] == [
        ("maintenance", remediation_io.StepOutcome.SUCCEEDED),
        ("provision", remediation_io.StepOutcome.SUCCEEDED),
        ("healthy", remediation_io.StepOutcome.FAILED),
        ("escalation_1", remediation_io.StepOutcome.SUCCEEDED),
    ]
    assert "cutover" not in [s.step for s in result.steps]
    assert dns.requests == [], "DNS was not touched"
    assert (maintenance / "shop.maintenance").exists()
    assert len(pagerduty.incidents) == 1
    page = pagerduty.incidents[0].events[0]["payload"]
    assert page["summary"] == (
        "Migration of shop stopped before the DNS cutover; the old site is in maintenance"
    )
    assert result.message == (
        "escalated at healthy: did not hold within 0:00:05: response.status == 200"
    )
    assert "Connect" in result.steps[2].output["observed"], "why: the new site does not answer"
    assert history_code == 0, history + history_err
    shown = " ".join(history.split())
    assert "verification failed healthy (verify)" in shown
    assert "did not hold within 0:00:05: response.status == 200" in shown
    assert "ConnectError" in shown, "the history says why: the new site does not answer"
    assert "escalation" in shown
