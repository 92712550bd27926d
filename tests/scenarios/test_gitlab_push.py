"""Scenario 9: a GitLab push to main runs apt-update; the CI job's form exits non-zero on a deny or a failure.

The shipped PatchOnPushToMain rule and apt-update plan, made safe for the test machine by
configuration (dry run: no apt; a state folder of the test's; hosts are localhost aliases).
The push goes to the real webhook with GitLab's headers; a wrong token is refused. Then
`homeostat run apt-update ... --wait`, as a CI job runs it, goes through the same resource
workflow: denied, it exits 1; failing, it exits 1 and names the step that failed.
"""

import asyncio
import sys

import httpx
import pytest
import scenario_support as support
import yaml

from controller.domain import resources
from controller.workflows import remediation_io, resource_io

TOKEN = "gitlab-secret-token"
RESOURCE = "project/ops/patching"
LEVEL = "2026-11"


def _push(ref: str) -> dict:
    return {
        "object_kind": "push",
        "ref": ref,
        "user_username": "alice",
        "project": {"path_with_namespace": "ops/patching"},
        "commits": [{"id": "a1b2c3", "message": "Patch to 2026-11"}],
    }


async def _awaiting(temporal, episode: str | None = None) -> str | None:
    """The episode awaiting approval on the resource, if any."""
    state = await support.resource_state(temporal, RESOURCE)
    running = state.running
    if running is None or running.phase is not resource_io.Phase.AWAITING_APPROVAL:
        return None
    return running.episode if episode in {None, running.episode} else None


async def _cli(config_path, *args):
    code, out, err = await support.homeostat_cli(config_path, *args)
    assert code == 0, out + err
    return out


async def _pushes(url: str) -> None:
    """A wrong token is refused, another branch starts nothing, main starts one episode."""
    async with httpx.AsyncClient(timeout=30) as http:
        hook = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": TOKEN}
        wrong = await http.post(
            url, json=_push("refs/heads/main"), headers={**hook, "X-Gitlab-Token": "nope"}
        )
        assert wrong.status_code == 401
        other = await http.post(url, json=_push("refs/heads/feature"), headers=hook)
        assert other.status_code == 200, other.text
        assert other.json()["transitions"] == []
        pushed = await http.post(url, json=_push("refs/heads/main"), headers=hook)
        assert pushed.status_code == 200, pushed.text
        assert len(pushed.json()["transitions"]) == 1


async def _ended(job) -> tuple[int, str]:
    """The CI job's exit status and output."""
    out, err = await asyncio.wait_for(job.communicate(), 120)
    return job.returncode, out.decode() + err.decode()


async def _ci_job(config_path, *extra: str):
    """`homeostat run apt-update RESOURCE --wait` in the background, as a CI job runs it."""
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "controller", "run", "apt-update", RESOURCE, "--wait"),
        *("--timeout", "150", *extra, "--config", str(config_path)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=support.REPO,
    )


@pytest.mark.timeout(300)
async def test_push_to_main_runs_the_patch_and_the_ci_form_fails_on_deny_and_failure(
    tmp_path, scenario_temporal
):
    """A wrong token is refused, another branch starts nothing, a push to main patches after approval; the CI form exits 1 when denied and when the plan fails."""
    state = tmp_path / "state"
    inventory = tmp_path / "inventory.yml"
    hosts = {"web-1": {"ansible_connection": "local"}, "web-2": {"ansible_connection": "local"}}
    inventory.write_text(yaml.safe_dump({"all": {"children": {"web": {"hosts": hosts}}}}))
    variables = {"group": "web", "patch_level": LEVEL, "state_dir": str(state), "dry_run": "true"}
    config_path = support.make_settings(
        tmp_path,
        scenario_temporal.address,
        rules=support.compressed_copy(
            tmp_path / "content",
            factor=1,
            files={"remediations/apt-update.yaml": {"variables": variables}},
        ),
        webhooks={"gitlab_token": TOKEN},
        ansible={"inventory": str(inventory)},
    )
    temporal = await support.client(scenario_temporal.address)
    async with support.running(support.load(config_path)) as endpoints:
        await _pushes(f"{endpoints.api_url}/v1/gitlab")

        # The push: approved, then patched on both hosts.
        episode = await support.eventually(lambda: _awaiting(temporal), timeout=60)
        assert episode.startswith(f"PatchOnPushToMain/{RESOURCE}/")
        await _cli(config_path, "resource", "approve", RESOURCE, episode, "--reason", "MR !42")
        result = await support.remediation(temporal, episode, timeout=120)
        assert result.outcome is remediation_io.Outcome.SUCCEEDED, result.message
        for host in ("web-1", "web-2"):
            assert (state / f"patch-level-{host}").read_text() == f"{LEVEL}\n"

        # The CI form right after: the push's run started the cooldown, so only the ladder
        # runs; the output says how to end the cooldown.
        code, text = await _ended(await _ci_job(config_path))
        assert code == 1, text
        assert "not remediated: plan apt-update is cooling down until" in text
        assert f"homeostat resource reset {RESOURCE} --cooldown" in text

        # The CI form, denied: exit 1 (after an operator reset the cooldown).
        await _cli(config_path, "resource", "reset", RESOURCE, "--reason", "CI retry")
        job = await _ci_job(config_path)
        denied = await support.eventually(lambda: _awaiting(temporal), timeout=60)
        assert denied != episode
        await _cli(config_path, "resource", "deny", RESOURCE, denied, "--reason", "not now")
        code, text = await _ended(job)
        assert code == 1, text
        assert "outcome: denied" in text

        # The CI form, failing (the hosts cannot record their patch level): exit 1, with why.
        await _cli(config_path, "resource", "reset", RESOURCE)
        job = await _ci_job(config_path, "--var", "state_dir=/proc/homeostat-cannot-write")
        failing = await support.eventually(lambda: _awaiting(temporal), timeout=60)
        await _cli(config_path, "resource", "approve", RESOURCE, failing)
        code, text = await _ended(job)
    assert code == 1, text
    assert "outcome: escalated" in text
    assert "escalated at per_host/web-1/update: apt_update.yml failed on 1 of 1 hosts" in text, text
    assert "then escalation_1 failed too" in text, "the ticket rung fails (no Jira) after the cause"

    # All three went through the one resource workflow.
    history = await support.homeostat_cli(config_path, "history", RESOURCE)
    assert history[0] == 0, history[1] + history[2]
    for shown in (episode, denied, failing):
        assert shown in history[1]
    workflow = resources.remediation_workflow_id(resources.EpisodeId(episode))
    approvals = await support.activities_run(temporal, workflow)
    assert approvals.count("run_playbook") == 2
