"""Scenario 6: patch 20 hosts while 3 are unreachable; only those 3 are retried, after the outage.

The shipped patch-group plan runs the shipped apt_update.yml (dry run: no apt on the test
machine) over the inventory group `web`: 17 localhost aliases and 3 hosts whose SSH port
nobody answers. The step's retry policy (compressed by configuration, divided by 12) waits;
when the 3 are reachable again (the inventory names them by a working connection), the next
attempt runs them alone. A second episode for the same patch level touches nobody.
"""

import re

import pytest
import scenario_support as support
import yaml

from controller.domain import resources
from controller.workflows import remediation_io

HOSTS = [f"web-{i:02d}" for i in range(1, 21)]
DOWN = ["web-07", "web-13", "web-20"]
LEVEL = "2026-11"


def _inventory(path, *, down, dead_port):
    hosts = {}
    for name in HOSTS:
        hosts[name] = (
            {
                "ansible_connection": "ssh",
                "ansible_host": "127.0.0.1",
                "ansible_port": dead_port,
                "ansible_user": "nobody",
                "ansible_ssh_common_args": "-o ConnectTimeout=3 -o BatchMode=yes",
            }
            if name in down
            else {"ansible_connection": "local"}
        )
    path.write_text(yaml.safe_dump({"all": {"children": {"web": {"hosts": hosts}}}}))


def _patched(state, host) -> list[str]:
    log = state / f"patch-level-{host}.log"
    return log.read_text().splitlines() if log.exists() else []


async def _last_failure(temporal, workflow) -> str:
    """The message of the pending playbook activity's last failed attempt, if any."""
    description = await temporal.get_workflow_handle(workflow).describe()
    pending = description.raw_description.pending_activities
    return pending[0].last_failure.message if pending else ""


async def _run(config_path, state) -> str:
    code, out, err = await support.homeostat_cli(
        config_path,
        *("run", "patch-group", "group/web", "--no-wait", "--var", "group=web"),
        *("--var", f"patch_level={LEVEL}", "--var", f"state_dir={state}", "--var", "dry_run=true"),
    )
    assert code == 0, out + err
    return out.split()[1]


@pytest.mark.timeout(240)
async def test_unreachable_hosts_alone_are_retried_after_the_outage_and_a_second_episode_touches_nobody(
    tmp_path, scenario_temporal
):
    """17 hosts are patched at once; the 3 unreachable ones are retried alone when back, the history names exactly them, and a second run patches nobody again."""
    inventory = tmp_path / "inventory.yml"
    _inventory(inventory, down=DOWN, dead_port=support.free_port())
    state = tmp_path / "state"
    config_path = support.make_settings(
        tmp_path,
        scenario_temporal.address,
        rules=support.compressed_copy(
            tmp_path / "content", factor=12, files={"remediations/patch-group.yaml": None}
        ),
        ansible={"inventory": str(inventory)},
    )
    temporal = await support.client(scenario_temporal.address)
    async with support.running(support.load(config_path)):
        episode = await _run(config_path, state)
        workflow = resources.remediation_workflow_id(resources.EpisodeId(episode))
        failure = await support.eventually(
            lambda: _last_failure(temporal, workflow), timeout=120, interval=0.2
        )
        assert "3 hosts unreachable" in failure, failure
        assert sorted(re.findall(r"web-\d\d", failure)) == DOWN
        assert all(len(_patched(state, h)) == 1 for h in HOSTS if h not in DOWN)
        # The outage ends: the three hosts answer again.
        _inventory(inventory, down=[], dead_port=0)
        result = await support.remediation(temporal, episode, timeout=120)

        second = await _run(config_path, state)
        again = await support.remediation(temporal, second, timeout=120)

    assert result.outcome is remediation_io.Outcome.SUCCEEDED, result.message
    patch = result.steps[0]
    assert patch.output["hosts"] == 20
    assert patch.output["failed_hosts"] == []
    assert patch.output["retried_hosts"] == DOWN, "the last attempt ran exactly the 3"
    assert patch.output["attempts"] >= 2
    assert all(_patched(state, h) == [f"patched {LEVEL} {episode}"] for h in HOSTS)

    # The history names exactly the 3 in the failure the retry started from.
    history = await temporal.get_workflow_handle(workflow).fetch_history()
    started = [
        event.activity_task_started_event_attributes
        for event in history.events
        if event.HasField("activity_task_started_event_attributes")
    ]
    assert started[-1].attempt >= 2
    assert sorted(re.findall(r"web-\d\d", started[-1].last_failure.message)) == DOWN

    assert again.outcome is remediation_io.Outcome.SUCCEEDED, again.message
    assert again.steps[0].output["changed_hosts"] == []
    assert again.steps[0].output["hosts"] == 20
    assert all(len(_patched(state, h)) == 1 for h in HOSTS), "the second episode touched nobody"

    shown = support.steps_of(await support.history(config_path, episode))["patch"]
    assert shown["status"] == "succeeded"
    assert shown["attempts"] >= 2
    assert len(shown["details"]["results"]) == 20
