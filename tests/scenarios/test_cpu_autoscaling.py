"""Scenario 5, the headline: CPU above 90% for 5 minutes scales out, pages and opens a ticket.

A real Prometheus scrapes a load generator (a deployment whose replicas share a load); the
shipped ServiceHighCpu rule and scale-web plan run with time compressed by configuration
(every duration and PromQL range divided by 60, so 5 minutes are 5 seconds, and a cooldown
long enough for the second breach to fall in it). kubectl is a stand-in script that drives
the load generator's replica count.
"""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import scenario_support as support

from controller.domain import resources
from controller.workflows import remediation_io, resource_io

BIN = Path(__file__).with_name("bin")
RESOURCE = "service/web"


@pytest.fixture
def load_generator(tmp_path):
    """The load generator: service web on 2 replicas, half a core each."""
    port = support.free_port()
    with (tmp_path / "loadgen.log").open("wb") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "controller.demo.loadgen", "--port", str(port)),
                *("--service", "web", "--replicas", "2", "--cores", "1.0"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(f"{url}/replicas", timeout=1)
                break
            except httpx.HTTPError:
                if process.poll() is not None:
                    raise
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _put(url: str, path: str, body: dict) -> None:
    httpx.put(f"{url}{path}", json=body, timeout=5).raise_for_status()


async def _episode(temporal, *, status, count: int) -> resource_io.EpisodeRecord | None:
    state = await support.resource_state(temporal, RESOURCE)
    if len(state.outcomes) + len(state.episodes) < count:
        return None
    found = [r for r in state.episodes if r.status is status]
    return found[-1] if found else None


@pytest.mark.timeout(240)
async def test_cpu_breach_scales_out_pages_tickets_and_a_second_breach_in_cooldown_only_escalates(
    tmp_path, scenario_temporal, prometheus_factory, pagerduty, jira, load_generator, monkeypatch
):
    """Two breaches: the first scales 2 -> 4 replicas, pages once and opens one ticket; the second, in the cooldown, pages and tickets without scaling; each recovery resolves its page and closes its ticket."""
    calls = tmp_path / "kubectl.log"
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("KUBECTL_STANDIN_URL", load_generator)
    monkeypatch.setenv("STANDIN_LOG", str(calls))
    prometheus = prometheus_factory(
        config={
            "global": {"scrape_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": "web",
                    "static_configs": [{"targets": [load_generator.removeprefix("http://")]}],
                }
            ],
        }
    )
    rules = support.compressed_copy(
        tmp_path / "content",
        factor=60,
        files={"rules/services.yaml": None, "remediations/scale-web.yaml": {"cooldown": "90s"}},
    )
    config_path = support.make_settings(
        tmp_path,
        scenario_temporal.address,
        rules=rules,
        prometheus={"url": prometheus.url},
        paging=support.paging(pagerduty),
        ticketing=support.ticketing(jira),
        activities={"command_env": ["KUBECTL_STANDIN_URL", "STANDIN_LOG"]},
    )
    temporal = await support.client(scenario_temporal.address)
    async with support.running(support.load(config_path)):
        # First breach: 1.9 cores on 2 replicas is 95% each.
        _put(load_generator, "/load", {"cores": 1.9})
        first = await support.eventually(
            lambda: _episode(temporal, status=resource_io.EpisodeStatus.DONE, count=1),
            timeout=90,
            interval=0.5,
        )
        assert first.outcome is remediation_io.Outcome.SUCCEEDED, first.note
        assert httpx.get(f"{load_generator}/replicas").json() == {"replicas": 4}
        # Scaled out, each replica runs at 47.5%: the episode resolves.
        state = await support.closed_episodes(temporal, RESOURCE, count=1, timeout=90)
        assert [c.plan for c in state.cooldowns] == ["scale-web"]

        # Second breach within the cooldown: 3.9 cores on 4 replicas is 97.5% each.
        _put(load_generator, "/load", {"cores": 3.9})
        second = await support.eventually(
            lambda: _episode(temporal, status=resource_io.EpisodeStatus.DONE, count=2),
            timeout=90,
            interval=0.5,
        )
        assert second.outcome is remediation_io.Outcome.ESCALATED
        assert "plan scale-web is cooling down until" in second.note
        _put(load_generator, "/load", {"cores": 1.0})
        state = await support.closed_episodes(temporal, RESOURCE, count=2, timeout=90)

    assert httpx.get(f"{load_generator}/replicas").json() == {"replicas": 4}, "not scaled again"
    scaled = [line for line in calls.read_text().splitlines() if '"scale"' in line]
    assert len(scaled) == 1, scaled

    episodes = [first.episode, second.episode]
    assert [o.episode for o in state.outcomes] == episodes
    # Exactly one page and one ticket per episode, each resolved or closed on recovery.
    assert [i.dedup_key for i in pagerduty.incidents] == [f"homeostat/{e}" for e in episodes]
    assert [i.status for i in pagerduty.incidents] == ["resolved", "resolved"]
    assert [
        len([e for e in i.events if e["event_action"] == "trigger"]) for i in pagerduty.incidents
    ] == [1, 1]
    tickets = list(jira.issues.values())
    assert len(tickets) == 2
    assert [t["fields"]["status"]["name"] for t in tickets] == ["Done", "Done"]
    assert tickets[0]["fields"]["summary"] == "ServiceHighCpu on service/web: scaled out"
    assert "again during the cooldown" in tickets[1]["fields"]["summary"]

    one = await support.remediation(temporal, first.episode)
    assert [(s.step, s.outcome.value) for s in one.steps] == [
        ("scale", "succeeded"),
        ("page", "succeeded"),
        ("ticket", "succeeded"),
    ]
    assert (one.steps[0].output["before"], one.steps[0].output["after"]) == (2, 4)
    two = await support.remediation(temporal, second.episode)
    assert [s.step for s in two.steps] == ["escalation_1", "escalation_2"]
    workflow = resources.remediation_workflow_id(second.episode)
    assert "scale" not in await support.activities_run(temporal, workflow)

    scaled = support.steps_of(await support.history(config_path, first.episode))["scale"]
    assert (scaled["details"]["current"], scaled["details"]["after"]) == (2, 4)
    assert scaled["details"]["metric_value"] > 0.9
    later = await support.history(config_path, second.episode)
    assert [s for s in support.steps_of(later) if s.startswith("escalation_")] == [
        "escalation_1",
        "escalation_2",
    ]
