"""Scenario 2: fan-out to 500 hosts from the CMDB in batches, fan-in to one summary.

The host list comes from the CMDB's REST API (NetBox-style pages of name, ip, user, role),
turned into an inventory grouped by role with host vars. The shipped deploy-fleet plan runs
the shipped fleet_deploy.yml (dry run) on the 500 hosts of role `web` (localhost aliases)
in batches of 100, two runs at a time; 2 hosts the CMDB marks in maintenance fail. One
summary (counts, failed hosts, duration) lands in the episode's result, in exactly one
Slack message, and in `homeostat history`.
"""

import re
import sys
from pathlib import Path

import pytest
import scenario_support as support

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))

from fake_cmdb import FakeCmdb
from fake_slack import FakeSlack

from controller.domain import resources
from controller.workflows import remediation_io

CMDB_TOKEN = "cmdb-token"
SLACK_TOKEN = "xoxb-scenario-2"
MAINTENANCE = {"web-017", "web-311"}


def _hosts() -> list[dict]:
    found = []
    for index in range(1, 501):
        name = f"web-{index:03d}"
        variables = {"ansible_connection": "local"}
        if name in MAINTENANCE:
            variables["maintenance"] = True
        found.append(
            {"name": name, "ip": "127.0.0.1", "user": "deploy", "role": "web", "vars": variables}
        )
    found += [
        {"name": f"db-{i}", "ip": "127.0.0.1", "user": "deploy", "role": "db"} for i in (1, 2)
    ]
    return found


@pytest.mark.timeout(300)
async def test_500_cmdb_hosts_in_batches_end_in_one_summary(tmp_path, scenario_temporal):
    """Every web host of the CMDB is deployed (none of the db ones), in batches; the 2 in maintenance are named in one Slack message, the result and the history."""
    cmdb = FakeCmdb(token=CMDB_TOKEN, hosts=_hosts()).start(tmp_path)
    slack = FakeSlack(token=SLACK_TOKEN, channels={"#deploys": "C0DEPLOYS"}).start(tmp_path)
    config_path = support.make_settings(
        tmp_path,
        scenario_temporal.address,
        cmdb={"url": cmdb.url, "token": CMDB_TOKEN, "page_size": 100},
        slack={"bot_token": SLACK_TOKEN, "api_url": slack.api_url},
        ansible={"batch_size": 100, "forks": 50, "parallel_runs": 2},
    )
    try:
        async with support.running(support.load(config_path)):
            code, out, err = await support.homeostat_cli(
                config_path,
                *("run", "deploy-fleet", "fleet/web", "--timeout", "240"),
                *("--var", "role=web", "--var", "version=2.4.1", "--var", "dry_run=true"),
            )
            episode = out.split()[1]
            history = await support.homeostat_cli(config_path, "history", episode)
    finally:
        cmdb.stop()
        slack.stop()
    assert code == 0, out + err
    assert "outcome: succeeded" in out
    temporal = await support.client(scenario_temporal.address)
    result = await support.remediation(temporal, episode)
    deploy, summary = result.steps
    assert deploy.outcome is remediation_io.StepOutcome.FAILED
    assert (deploy.output["hosts"], deploy.output["succeeded"]) == (500, 498)
    assert deploy.output["failed_hosts"] == sorted(MAINTENANCE)
    # The result's one line: counts, the duration and the first failed host with why.
    assert re.fullmatch(
        r"succeeded: 2 steps; deploy failed and the plan went on: fleet_deploy\.yml failed on "
        r"2 of 500 hosts in \d+s: web-017 Refuse a host in maintenance .*",
        result.message,
    ), result.message
    assert cmdb.page_requests() == 6, "502 hosts in pages of 100, read once"

    # Batches: one ansible-runner invocation per 100 hosts, under the step's run folder.
    workflow = resources.remediation_workflow_id(resources.EpisodeId(episode))
    [run] = await support.activity_inputs(temporal, workflow, "run_playbook")
    assert run["groups"] == ["web"]
    invocations = list(Path(deploy.output["log_ref"], "artifacts").iterdir())
    assert len(invocations) == 5

    [message] = slack.messages
    seconds = summary.output["text"].rsplit(" in ", 1)[1].split("s ", 1)[0]
    assert message.channel == "C0DEPLOYS"
    assert message.text == (
        f"Release 2.4.1 on role web: 498 of 500 hosts deployed, 2 failed "
        f'["web-017","web-311"], in {seconds}s ({episode})'
    )
    assert 0 < int(seconds) == deploy_seconds(deploy)
    assert history[0] == 0, history[1] + history[2]
    shown = " ".join(history[1].split())
    assert re.search(r"web-017: FAILED at Refuse a host in maintenance", shown), shown[:3000]
    assert "498 of 500 hosts deployed, 2 failed" in shown


def deploy_seconds(record) -> int:
    return round((record.finished_at - record.started_at).total_seconds())
