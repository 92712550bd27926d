"""The README's five-minute tour, run against the shipped rules, plans and playbooks."""

import asyncio
import shutil
import sys
from pathlib import Path

import homeostat
import httpx
import pytest

from controller.workflows import remediation_io, resource_io

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "docs" / "examples"
SCRATCH = Path("/tmp/homeostat-demo")  # noqa: S108 - the path the shipped demo plan uses
TOKEN = "tour-secret-token"


@pytest.mark.timeout(180)
async def test_the_tour_runs_a_real_playbook_and_ends_the_episode(
    tmp_path, temporal_dev_server, monkeypatch
):
    """A disk-full event runs the demo-cleanup playbook for the host; the all-clear event ends the episode."""
    shutil.rmtree(SCRATCH, ignore_errors=True)
    # Relative folders, as `make run` has them: the shipped ones, seen from the working dir.
    for folder in ("rules", "remediations", "playbooks"):
        (tmp_path / folder).symlink_to(REPO / folder)
    monkeypatch.chdir(tmp_path)
    config = homeostat.make_settings(
        tmp_path,
        temporal_dev_server.address,
        rules={
            "rules_dir": "rules",
            "remediations_dir": "remediations",
            "playbooks_dir": "playbooks",
        },
        webhooks={"bearer_token": TOKEN},
        activities={"state_dir": ".homeostat/runs"},
    )
    temporal = await homeostat.client(temporal_dev_server.address)
    async with homeostat.running(config) as endpoints, httpx.AsyncClient(timeout=30) as http:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        answer = await http.post(
            f"{endpoints.api_url}/v1/events/demo",
            headers=headers,
            content=(EXAMPLES / "tour-disk-full.json").read_bytes(),
        )
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["transitions"]) == 1

        async def remediated():
            state = await homeostat.resource_state(temporal, "host/localhost")
            record = state.episodes[0] if state.episodes else None
            return (
                record
                if record is not None and record.status is resource_io.EpisodeStatus.DONE
                else None
            )

        record = await homeostat.eventually(remediated, timeout=120, interval=0.5)
        assert record.outcome is remediation_io.Outcome.SUCCEEDED, record.note
        assert (SCRATCH / "cleaned-localhost").read_text() == "localhost disk at 97%\n"

        answer = await http.post(
            f"{endpoints.api_url}/v1/events/demo",
            headers=headers,
            content=(EXAMPLES / "tour-disk-ok.json").read_bytes(),
        )
        assert answer.status_code == 200, answer.text

        async def ended():
            state = await homeostat.resource_state(temporal, "host/localhost")
            return state if not state.episodes and state.outcomes else None

        state = await homeostat.eventually(ended, timeout=30)
        assert state.outcomes[-1].outcome is remediation_io.Outcome.SUCCEEDED
    shutil.rmtree(SCRATCH, ignore_errors=True)


async def _homeostat(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


@pytest.mark.timeout(180)
async def test_homeostat_run_starts_a_plan_by_hand(tmp_path, temporal_dev_server):
    """`homeostat run PLAN RESOURCE` runs the plan as an episode and exits 0 on success; an unknown plan exits 2."""
    shutil.rmtree(SCRATCH, ignore_errors=True)
    config = homeostat.make_settings(
        tmp_path,
        temporal_dev_server.address,
        rules={
            "rules_dir": str(REPO / "rules"),
            "remediations_dir": str(REPO / "remediations"),
            "playbooks_dir": str(REPO / "playbooks"),
        },
        activities={"state_dir": str(tmp_path / "runs")},
    )
    path = str(tmp_path / "homeostat.yaml")
    async with homeostat.running(config):
        code, out, err = await _homeostat(
            "run", "demo-cleanup", "host/manual-run", "--var", "host=127.0.0.1", "--config", path
        )
        assert code == 0, out + err
        assert "cleanup (playbook): succeeded" in out
        assert "outcome: succeeded" in out
        assert (
            SCRATCH / "cleaned-127.0.0.1"
        ).read_text() == "demo-cleanup run by hand for host/manual-run\n"
        code, _, err = await _homeostat("run", "no-such-plan", "host/x", "--config", path)
        assert code == 2
        assert "no plan 'no-such-plan'" in err
    shutil.rmtree(SCRATCH, ignore_errors=True)
