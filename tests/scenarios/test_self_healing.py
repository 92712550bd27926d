"""Scenario 10: self-healing from an Alertmanager alert, with nobody touching anything.

A real service process is SIGKILLed; the real Prometheus sees it down and fires the shipped
alerting rule; the real Alertmanager notifies Homeostat; the shipped demo-restart plan runs
its playbook, which starts the service again; verification asks Prometheus until it sees it
up; the alert resolves and the episode closes. Nobody is paged.
"""

import os
import re
import signal
import subprocess
import sys

import httpx
import pytest
import scenario_support as support

from controller.demo import stack, standin
from controller.domain import resources
from controller.workflows import remediation_io

RESOLVED = (
    r"resolved (the episode's condition cleared|DemoServiceDown resolved on service/shop-web)"
)

TOKEN = "scenario-10-token"


def _start_service(unit: standin.Unit) -> int:
    """Start the stand-in service with its own command, as an operator would."""
    subprocess.run(
        [
            *(sys.executable, "-m", "controller.demo.standin", "start"),
            *("--dir", str(unit.directory), "--port", str(unit.port), "--", unit.name),
        ],
        check=True,
        capture_output=True,
    )
    pid = standin.running_pid(unit)
    assert pid is not None
    return pid


async def _scraped(prometheus_url: str, value: str) -> bool:
    async with httpx.AsyncClient(timeout=2) as http:
        answer = await http.get(
            f"{prometheus_url}/api/v1/query", params={"query": f'up{{job="{stack.JOB}"}}'}
        )
    result = answer.json()["data"]["result"]
    return bool(result) and result[0]["value"][1] == value


@pytest.mark.timeout(180)
async def test_a_killed_service_is_restarted_and_the_episode_resolves(
    tmp_path, scenario_temporal, prometheus_factory, alertmanager_factory, pagerduty
):
    """SIGKILL the service: Prometheus, Alertmanager and the shipped plan bring it back, verify it up, and close the episode without paging anyone."""
    unit = standin.Unit(name="shop-web", directory=tmp_path / "services", port=support.free_port())
    pid = _start_service(unit)
    http_port = support.free_port()
    token_file = tmp_path / "homeostat-token"
    token_file.write_text(TOKEN)
    alertmanager = alertmanager_factory(
        config=stack.alertmanager_config(
            webhook_url=f"http://127.0.0.1:{http_port}/v1/alertmanager", token_file=token_file
        )
    )
    prometheus = prometheus_factory(
        config=stack.prometheus_config(
            services=[unit], alertmanager=f"127.0.0.1:{alertmanager.port}", rule_files=[]
        ),
        rule_files={stack.PROMETHEUS_RULES.name: stack.PROMETHEUS_RULES.read_text()},
    )
    config_path = support.make_settings(
        tmp_path,
        scenario_temporal.address,
        http={"port": http_port},
        alertmanager={"bearer_token": TOKEN},
        prometheus={"url": prometheus.url},
        paging=support.paging(pagerduty),
    )
    temporal = await support.client(scenario_temporal.address)
    try:
        async with support.running(support.load(config_path)):
            await support.eventually(lambda: _scraped(prometheus.url, "1"), timeout=60)
            os.kill(pid, signal.SIGKILL)
            state = await support.closed_episodes(temporal, "service/shop-web", timeout=120)
    finally:
        restarted = standin.running_pid(unit)
        standin.stop(unit)

    closed = state.outcomes[-1]
    assert [o.episode for o in state.outcomes] == [closed.episode], "one episode, one alert"
    assert closed.rule == "DemoServiceDown"
    assert closed.plan == "demo-restart"
    assert closed.outcome is remediation_io.Outcome.SUCCEEDED, closed.note
    assert restarted is not None
    assert restarted != pid, "the playbook started a new process"

    result = await support.remediation(temporal, closed.episode)
    restart, verify = result.steps
    assert (restart.step, restart.outcome) == ("restart", remediation_io.StepOutcome.SUCCEEDED)
    assert restart.output["changed_hosts"] == ["localhost"]
    assert (verify.step, verify.outcome) == ("up_again", remediation_io.StepOutcome.SUCCEEDED)
    assert 'service="shop-web"' in verify.output["observed"]
    workflow = resources.remediation_workflow_id(closed.episode)
    assert await support.activities_run(temporal, workflow) == ["run_playbook", "verify_promql"]
    assert pagerduty.requests == [], "nobody was paged"

    code, out, err = await support.homeostat_cli(config_path, "history", closed.episode)
    assert code == 0, out + err
    shown = " ".join(out.split())
    for line in (
        "opened DemoServiceDown fired on service/shop-web: plan demo-restart",
        "step succeeded restart (playbook)",
        "demo_restart.yml ok on 1 hosts, 1 changed",
        "localhost: ok, changed",
        "verification succeeded up_again (verify)",
        'holds: up{job="homeostat-demo", service="shop-web"} == 1',
    ):
        assert line in shown, out
    # Resolved while the remediation ran (it is told) or after it ended (the resource is).
    assert re.search(RESOLVED, shown), out
