"""Committed histories replay against today's workflow code through `homeostat replay`: a change that breaks running workflows fails here.

The histories in ``histories/`` were recorded by ``test_plan_timeline.py`` with
``HOMEOSTAT_RECORD_HISTORIES=1``. When a change to the workflows is deliberately
incompatible (and running workflows are migrated), record them again and say so.
``resource_full`` and ``resource_continued_as_new`` were recorded while ``load_plan`` was an
activity; their ``_local_plan`` twins since it is a local activity (``workflow.patched``),
while episodes were still child workflows; the ``_eager`` histories (resource and
remediation) since episodes are started by the local activity ``start_episode``.
"""

import base64
import json
from pathlib import Path

from typer.testing import CliRunner

from controller import cli
from controller.workflows import actions, steps

HISTORIES = Path(__file__).with_name("histories")
runner = CliRunner()


def test_histories_are_committed():
    """Both workflows have recorded histories, a continue-as-new among them."""
    names = {path.stem for path in HISTORIES.glob("*.json")}
    assert {"resource_full", "resource_continued_as_new", "remediation_full"} <= names
    assert {"resource_full_local_plan", "resource_continued_as_new_local_plan"} <= names
    assert {"resource_full_eager", "resource_continued_as_new_eager"} <= names
    assert {"remediation_full_eager", "remediation_ladder_eager"} <= names


def _kinds(name: str) -> set[str]:
    """How a resource history loaded plans and started episodes (activity, local, child)."""
    events = json.loads((HISTORIES / f"{name}.json").read_text())["events"]
    kinds = set()
    for event in events:
        scheduled = event.get("activityTaskScheduledEventAttributes")
        if scheduled and scheduled["activityType"]["name"] == "load_plan":
            kinds.add("plan activity")
        marker = event.get("markerRecordedEventAttributes")
        if marker and marker["markerName"] == "core_local_activity":
            data = json.loads(base64.b64decode(marker["details"]["data"]["payloads"][0]["data"]))
            kinds.add(f"local {data['activity_type']}")
        if "startChildWorkflowExecutionInitiatedEventAttributes" in event:
            kinds.add("child")
    return kinds


def test_histories_from_before_and_after_each_patch_are_all_kept():
    """Plans loaded as activities, then local activities; episodes started as children, then by a local activity: the replay test covers each."""
    assert _kinds("resource_full") == {"plan activity", "child"}
    assert _kinds("resource_continued_as_new") == {"plan activity", "child"}
    assert _kinds("resource_full_local_plan") == {"local load_plan", "child"}
    assert _kinds("resource_continued_as_new_local_plan") == {"local load_plan", "child"}
    assert _kinds("resource_full_eager") == {"local load_plan", "local start_episode"}
    assert _kinds("resource_continued_as_new_eager") == {"local load_plan", "local start_episode"}


def test_every_committed_history_replays_through_the_command():
    """`homeostat replay tests/workflows/histories` prints OK for each history and exits 0."""
    result = runner.invoke(cli.app, ["replay", str(HISTORIES)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == len(list(HISTORIES.glob("*.json")))
    assert all(line.startswith("OK ") for line in lines), result.output


async def _run_command_v2(env, step, path, item, results):
    """A deliberately non-deterministic change: the command step calls another activity."""
    return await actions.call(
        "run_command_v2", None, object, step, default=actions.default_timeout("command")
    )


def test_a_non_deterministic_change_fails_and_names_the_event(monkeypatch):
    """After the command step is changed to schedule another activity, replay exits 1 naming event 5 and both activity types."""
    monkeypatch.setitem(steps._ACTIONS, "command", _run_command_v2)
    ladder = HISTORIES / "remediation_ladder.json"
    result = runner.invoke(cli.app, ["replay", str(ladder), str(HISTORIES / "resource_full.json")])
    assert result.exit_code == 1, result.output
    assert (
        "FAIL  remediation_ladder (RemediationWorkflow, 55 events): diverges at event 5 ActivityTaskScheduled"
        in result.output
    )
    assert "recorded: activity run_command (id 1)" in result.output
    assert "code:     run_command_v2" in result.output
    assert "OK    resource_full" in result.output
    scheduled = json.loads(ladder.read_text())["events"][4]
    assert scheduled["eventId"] == "5"
    assert (
        scheduled["activityTaskScheduledEventAttributes"]["activityType"]["name"] == "run_command"
    )


def test_replay_json_reports_the_divergence_for_tools(monkeypatch):
    """`--json` prints one object per history with the divergent event's id."""
    monkeypatch.setitem(steps._ACTIONS, "command", _run_command_v2)
    result = runner.invoke(cli.app, ["replay", "--json", str(HISTORIES / "remediation_full.json")])
    assert result.exit_code == 1
    [line] = [line for line in result.output.splitlines() if line.startswith("{")]
    report = json.loads(line)
    assert report["ok"] is False
    assert report["divergence"]["event_id"] == 82
    assert report["divergence"]["code"] == "run_command_v2"


def test_replay_of_an_unreadable_file_is_a_usage_error(tmp_path):
    """A file that is not a history exits 2 with its name, without a traceback."""
    bad = tmp_path / "notes.json"
    bad.write_text('{"hello": 1}')
    result = runner.invoke(cli.app, ["replay", str(bad)])
    assert result.exit_code == 2
    assert "notes.json: not a workflow history" in result.output
    assert "Traceback" not in result.output
