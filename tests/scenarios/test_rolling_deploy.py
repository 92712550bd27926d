"""Scenario 1: a long-running rolling deployment survives its worker being SIGKILLed half-way.

The shipped rolling-deploy plan rolls the shipped rolling_deploy.yml over four hosts (localhost
aliases), two at a time, started with `homeostat run` as a CI job would. When two hosts
are done, `homeostat up` (worker included) is killed with SIGKILL; a new one takes over and
deploys only the hosts not done yet. Durations are compressed by configuration (divided by 6).
"""

import pytest
import scenario_support as support
import yaml

from controller.domain import resources
from controller.workflows import remediation_io

HOSTS = [f"web-{i}" for i in range(1, 5)]
VERSION = "2.4.1"


def _inventory(path):
    hosts = {name: {"ansible_connection": "local"} for name in HOSTS}
    path.write_text(yaml.safe_dump({"all": {"children": {"web": {"hosts": hosts}}}}))
    return path


def _log(releases, host) -> list[str]:
    path = releases / host / "deploy.log"
    return path.read_text().splitlines() if path.exists() else []


def _done(releases) -> set[str]:
    return {h for h in HOSTS if any(line.startswith("done") for line in _log(releases, h))}


def _running(releases) -> set[str]:
    return {h for h in HOSTS if _log(releases, h) and h not in _done(releases)}


async def _deployed(temporal, workflow) -> list[str]:
    """The per-host deploy steps the history records as completed."""
    return [p for p in await support.completed_steps(temporal, workflow) if p.endswith("/deploy")]


@pytest.mark.timeout(240)
async def test_rollout_resumes_after_a_sigkill_with_the_remaining_hosts_only(
    tmp_path, scenario_temporal
):
    """Kill -9 Homeostat when half the hosts are deployed: the next one deploys only the rest, every host ends on the release, and no finished host is deployed twice."""
    releases = tmp_path / "releases"
    config_path = support.make_settings(
        tmp_path,
        scenario_temporal.address,
        rules=support.compressed_copy(
            tmp_path / "content", factor=6, files={"remediations/rolling-deploy.yaml": None}
        ),
        ansible={"inventory": str(_inventory(tmp_path / "inventory.yml"))},
    )
    first = support.Homeostat(config_path, tmp_path / "homeostat-1.log")
    second = support.Homeostat(config_path, tmp_path / "homeostat-2.log")
    temporal = await support.client(scenario_temporal.address)
    try:
        first.start()
        code, out, err = await support.homeostat_cli(
            config_path,
            *("run", "rolling-deploy", "service/storefront", "--no-wait"),
            *("--var", f"version={VERSION}", "--var", f"releases_dir={releases}"),
            *("--var", "settle=0"),
        )
        assert code == 0, out + err
        episode = out.split()[1]

        async def half_done_and_more_running():
            return len(_done(releases)) >= 2 and _running(releases)

        await support.eventually(half_done_and_more_running, timeout=120, interval=0.2)
        first.kill()
        # The checkpoint: what the history records as done when the worker died.
        workflow = resources.remediation_workflow_id(resources.EpisodeId(episode))
        checkpoint = await _deployed(temporal, workflow)
        done_before = {path.split("/")[1] for path in checkpoint}
        assert sorted(checkpoint) == [f"rollout/{h}/deploy" for h in sorted(done_before)]
        assert 2 <= len(done_before) < len(HOSTS)
        second.start()
        result = await support.remediation(temporal, episode, timeout=150)
    finally:
        first.kill()
        second.stop()

    assert result.outcome is remediation_io.Outcome.SUCCEEDED, result.message
    for host in HOSTS:
        assert (releases / host / "current" / "VERSION").read_text() == f"{VERSION}\n"
    for host in done_before:
        assert [line.split()[0] for line in _log(releases, host)] == ["start", "done"], host
    for host in set(HOSTS) - done_before:
        assert _log(releases, host)[-1].startswith("done"), host
    rollout = next(step for step in result.steps if step.step == "rollout")
    assert (rollout.output["items"], rollout.output["succeeded"]) == (4, 4)
    assert sorted(await _deployed(temporal, workflow)) == [f"rollout/{h}/deploy" for h in HOSTS]
    # The host the killed worker was deploying was retried by the new one.
    history = await temporal.get_workflow_handle(workflow).fetch_history()

    retried = [
        event.activity_task_started_event_attributes.attempt
        for event in history.events
        if event.HasField("activity_task_started_event_attributes")
        and event.activity_task_started_event_attributes.attempt > 1
    ]
    assert retried, "the playbook the first worker was running was retried"

    # `homeostat history` tells the same: every host's step, the interrupted one retried.
    steps = support.steps_of(await support.history(config_path, episode))
    deploys = {path: entry for path, entry in steps.items() if path.endswith("/deploy")}
    assert sorted(deploys) == [f"rollout/{h}/deploy" for h in HOSTS]
    assert all(entry["status"] == "succeeded" for entry in deploys.values())
    assert any(entry["attempts"] >= 2 for entry in deploys.values())
