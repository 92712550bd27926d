"""Scenario 7: time travel: an episode's history, and every scenario history replayed.

`homeostat history` shows an episode with every step's inputs and outputs, and `homeostat
replay` replays every history the scenario tests produced against today's code.

Run after the other scenarios (files run in name order), it replays the workflows of all
their task queues; run alone, it replays the one episode it starts itself (the shipped
page-oncall plan, paging and ticketing through the contract servers).
"""

import json

import pytest
import scenario_support as support

from controller.domain import resources


@pytest.mark.timeout(300)
async def test_history_shows_inputs_and_outputs_and_every_scenario_history_replays(
    tmp_path, scenario_temporal, pagerduty, jira
):
    """`homeostat history --json` has each step's inputs and outputs; `homeostat replay` replays every scenario workflow without a divergence."""
    config_path = support.make_settings(
        tmp_path,
        scenario_temporal.address,
        paging=support.paging(pagerduty),
        ticketing=support.ticketing(jira),
    )
    async with support.running(support.load(config_path)):
        code, out, err = await support.homeostat_cli(
            config_path,
            *("run", "page-oncall", "service/time-travel", "--timeout", "120"),
            *("--var", "team=platform"),
        )
        assert code == 0, out + err
        episode = out.split()[1]
    code, out, err = await support.homeostat_cli(config_path, "history", episode, "--json")
    assert code == 0, out + err
    timeline = json.loads(out)
    steps = {entry["step"]: entry for entry in timeline["entries"] if entry["kind"] == "step"}
    page, ticket = steps["page"]["details"], steps["ticket"]["details"]
    assert (
        page["summary"]
        == "manual on service/time-travel: page-oncall run by hand for service/time-travel"
    )
    assert page["dedup_key"] == f"homeostat/{episode}"
    assert ticket["key"] == "OPS-1"
    assert ticket["created"] is True
    assert pagerduty.incidents[0].dedup_key == page["dedup_key"]

    queues = ", ".join(f"'{queue}'" for queue in support.TASK_QUEUES)
    query = f"TaskQueue IN ({queues})"
    temporal = await support.client(scenario_temporal.address)
    expected = [wf async for wf in temporal.list_workflows(query)]
    code, out, err = await support.homeostat_cli(
        config_path, "replay", "--since", "2h", "--query", query, "--json"
    )
    assert code == 0, out + err
    reports = [json.loads(line) for line in out.splitlines()]
    assert all(report["ok"] for report in reports), [r for r in reports if not r["ok"]]
    assert len(reports) == len(expected) >= 2
    replayed = {report["workflow_id"] for report in reports}
    assert resources.remediation_workflow_id(resources.EpisodeId(episode)) in replayed
    assert resources.resource_workflow_id(resources.ResourceKey("service/time-travel")) in replayed
