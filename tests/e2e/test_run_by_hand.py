"""`homeostat run` as an operator uses it: its link and progress, a plan in cooldown, a timeout, and no traceback for expected failures."""

import asyncio
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import homeostat
import pytest

from controller.domain import resources
from controller.operations import links, views

QUICK = """\
description: A quick fix that may not run again for an hour
cooldown: 1h
steps:
  - id: first
    command: [echo, first step done]
  - id: second
    command: [echo, second step done]
"""
SLOW = """\
description: A fix that takes a while
steps:
  - id: linger
    wait: 1m
"""
UI = "http://ui.example:8233"


async def _run(config: Path, *args: str, cwd: Path | None = None) -> tuple[int, str, float]:
    began = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller",
        "run",
        *args,
        *(["--config", str(config)] if cwd is None else []),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=cwd,
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode(), time.monotonic() - began


@pytest.mark.timeout(240)
async def test_a_hand_run_shows_its_link_and_steps_and_a_cooling_plan_is_not_run(
    tmp_path, temporal_dev_server
):
    """The run prints the episode's Web UI link and each step as it ends; run again during the cooldown it says `not run: ... cooling down` at once, exits 1, and the resource is not left firing."""
    homeostat.write_rules(tmp_path, "groups: []\n")
    (tmp_path / "remediations" / "quick.yaml").write_text(QUICK)
    (tmp_path / "remediations" / "slow.yaml").write_text(SLOW)
    homeostat.make_settings(
        tmp_path,
        temporal_dev_server.address,
        temporal={"web_ui_url": UI},
        activities={"state_dir": str(tmp_path / "runs")},
    )
    path = tmp_path / "homeostat.yaml"
    config = homeostat.settings.load(path)
    resource = f"host/by-hand-{uuid.uuid4().hex[:6]}"
    temporal = await homeostat.client(temporal_dev_server.address)
    async with homeostat.running(config):
        code, out, _ = await _run(path, "quick", resource, "--timeout", "120")
        assert code == 0, out
        assert f"{UI}/namespaces/default/workflows/episode%2Fmanual%2F" in out
        assert "first (command): succeeded" in out
        assert "second (command): succeeded" in out
        assert out.index("first (command)") < out.index("second (command)")
        assert "outcome: succeeded" in out

        code, out, took = await _run(path, "quick", resource, "--timeout", "120")
        assert code == 1, out
        assert "not run: plan quick is cooling down until" in out
        assert took < 60, f"took {took:.0f} s"
        assert "Traceback" not in out

        async def settled():
            view = await views.show_resource(
                temporal,
                resources.ResourceKey(resource),
                links=links.Links(),
                now=datetime.now(UTC),
            )
            return view if view.open_episodes == 0 else None

        view = await homeostat.eventually(settled, timeout=30)
        assert view.phase.value == "cooling_down"

        code, out, took = await _run(path, "slow", f"{resource}-slow", "--timeout", "3")
        assert code == 1, out
        assert "still running after 3s" in out
        assert "Traceback" not in out
        assert took < 60


async def test_run_outside_a_homeostat_folder_says_what_is_missing(tmp_path):
    """From a folder without remediations/, `homeostat run` exits 2 naming the folder, without a traceback."""
    code, out, _ = await _run(Path(), "demo-cleanup", "host/x", cwd=tmp_path)
    assert code == 2, out
    assert "remediations" in out
    assert "Traceback" not in out
