"""Scenario 8: Terraform, then kubectl, then an Ansible playbook, outputs passed as structured values.

The shipped provision-and-deploy plan, run with `homeostat run --wait` as a CI job would.
terraform and kubectl are stand-in scripts on PATH (tests/scenarios/bin; neither binary is
on the test machine); the playbook is the shipped register_backend.yml, run for real.
"""

import json
import os
from pathlib import Path

import pytest
import scenario_support as support

from controller.domain import resources

BIN = Path(__file__).with_name("bin")


@pytest.mark.timeout(180)
async def test_terraform_kubectl_and_a_playbook_run_in_order_and_hand_their_outputs_on(
    tmp_path, scenario_temporal, monkeypatch
):
    """Terraform's outputs reach kubectl's environment and, with kubectl's JSON, the playbook as objects and lists; the tools run in order."""
    infra = tmp_path / "infra"
    infra.mkdir()
    (infra / "main.tf.json").write_text(
        json.dumps({"output": {"address": {"value": "10.0.0.7"}, "ports": {"value": [80, 443]}}})
    )
    manifest = tmp_path / "shop.json"
    manifest.write_text(
        json.dumps({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "shop"}})
    )
    calls = tmp_path / "tools.log"
    backends = tmp_path / "backends"
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STANDIN_LOG", str(calls))
    config_path = support.make_settings(
        tmp_path, scenario_temporal.address, activities={"command_env": ["STANDIN_LOG"]}
    )
    temporal = await support.client(scenario_temporal.address)
    async with support.running(support.load(config_path)):
        code, out, err = await support.homeostat_cli(
            config_path,
            *("run", "provision-and-deploy", "service/shop", "--timeout", "150"),
            *("--var", f"tf_dir={infra}", "--var", f"manifest={manifest}"),
            *("--var", f"backends_dir={backends}"),
        )
    assert code == 0, out + err
    assert "outcome: succeeded" in out
    episode = out.split()[1]

    tools = [json.loads(line)[:3] for line in calls.read_text().splitlines()]
    assert tools == [
        ["terraform", f"-chdir={infra}", "apply"],
        ["terraform", f"-chdir={infra}", "output"],
        ["kubectl", "apply", "-f"],
    ]
    result = await support.remediation(temporal, episode)
    provision, deploy, register = result.steps
    assert provision.output["json"]["ports"]["value"] == [80, 443]
    assert deploy.output["json"]["metadata"]["annotations"] == {"address": "10.0.0.7"}
    assert register.outcome.value == "succeeded"
    assert json.loads((backends / "shop.json").read_text()) == {
        "service": "shop",
        "address": "10.0.0.7",
        "ports": [80, 443],
        "deployment": "shop",
        "generation": 1,
    }
    workflow = resources.remediation_workflow_id(resources.EpisodeId(episode))
    assert await support.activities_run(temporal, workflow) == [
        "run_command",
        "run_command",
        "run_playbook",
    ]
    # The playbook's input in the history holds the objects, not their text.
    extra = (await support.activity_inputs(temporal, workflow, "run_playbook"))[0]["extra_vars"]
    assert extra["infrastructure"]["address"]["value"] == "10.0.0.7"
    assert extra["deployment"]["metadata"]["name"] == "shop"

    steps = support.steps_of(await support.history(config_path, episode))
    assert [steps[s]["details"]["type"] for s in ("provision", "deploy", "register")] == [
        "command",
        "command",
        "playbook",
    ]
    assert steps["deploy"]["details"]["exit_code"] == 0
    assert '"address": "10.0.0.7"' in steps["deploy"]["details"]["stdout_tail"]
