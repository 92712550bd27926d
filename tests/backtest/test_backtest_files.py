"""`rules backtest` over recorded webhook requests: the table, JSON, a plot, and `--against` a git revision."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller import cli

runner = CliRunner()
GIT = shutil.which("git") or "/usr/bin/git"
START = datetime(2026, 5, 1, tzinfo=UTC)
RULES = """\
groups:
  - name: disks
    rules:
      - name: DiskFull
        source: webhook
        stream: disks
        match: labels.kind == 'disk'
        when: body.used_percent > THRESHOLD
        stale_after: 10m
        resource: host/{{ labels.host }}
        remediation: cleanup
"""
PLAN = "cooldown: 1h\nsteps:\n  - wait: 1s\n"


def _requests(path: Path) -> Path:
    """Disk reports every 5 minutes for 6 hours: host a is full twice 40 minutes apart, b once at 85%."""
    lines = []
    for index in range(72):
        at = START + timedelta(minutes=5 * index)
        minute = index * 5
        used = {
            "a": 95 if minute in range(30, 50) or minute in range(90, 110) else 40,
            "b": 85 if minute in range(200, 230) else 40,
        }
        for host, value in used.items():
            lines.append(
                json.dumps(
                    {
                        "received_at": at.isoformat(),
                        "stream": "disks",
                        "body": {"kind": "disk", "host": host, "used_percent": value},
                    }
                )
            )
    path.write_text("\n".join(lines) + "\n")
    return path


def _repo(root: Path, threshold: int) -> Path:
    for name in ("rules", "remediations", "playbooks"):
        (root / name).mkdir(parents=True, exist_ok=True)
    (root / "rules" / "disks.yaml").write_text(RULES.replace("THRESHOLD", str(threshold)))
    (root / "remediations" / "cleanup.yaml").write_text(PLAN)
    return root


def _args(root: Path, events: Path, *more: str) -> list[str]:
    return [
        "rules",
        "backtest",
        str(root / "rules"),
        "--from",
        START.isoformat(),
        "--to",
        (START + timedelta(hours=6)).isoformat(),
        "--events",
        str(events),
        *more,
    ]


def test_table_shows_each_episode_with_what_the_plan_did(tmp_path):
    """Two episodes on host a within the plan's cooldown: the second is refused by it."""
    root = _repo(tmp_path / "repo", 90)
    result = runner.invoke(cli.app, _args(root, _requests(tmp_path / "requests.jsonl")))
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("DiskFull ")]
    episodes = [row for row in rows if row[1].startswith("host/")]
    assert [(row[1], row[3], row[-2], row[-1]) for row in episodes] == [
        ("host/a", "00:30:00", "remediate", "-"),
        ("host/a", "01:30:00", "nothing", "cooldown"),
    ]
    totals = [row for row in rows if not row[1].startswith("host/")]
    assert totals == [["DiskFull", "2", "1", "0", "1", "0", "0", "0"]]


def test_json_and_plot(tmp_path):
    """`--json` carries every episode with its decision; `--plot` writes a PNG timeline."""
    pytest.importorskip("matplotlib")
    root = _repo(tmp_path / "repo", 80)
    plot = tmp_path / "disk.png"
    result = runner.invoke(
        cli.app, _args(root, _requests(tmp_path / "requests.jsonl"), "--json", "--plot", str(plot))
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [
        (item["resource"], item["action"], item["suppressed_by"]) for item in report["episodes"]
    ] == [
        ("host/a", "remediate", ""),
        ("host/a", "nothing", "cooldown"),
        ("host/b", "remediate", ""),
    ]
    assert report["totals"] == {"DiskFull": {"episodes": 3, "remediate": 2, "nothing": 1}}
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_against_a_git_revision_lists_what_the_change_adds(tmp_path):
    """Lowering the threshold in the working tree adds host b's 85% episode against HEAD."""
    root = _repo(tmp_path / "repo", 90)
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "PATH": "/usr/bin:/bin",
    }
    subprocess.run([GIT, "init", "-q", str(root)], check=True)
    subprocess.run([GIT, "-C", str(root), "add", "."], check=True)
    subprocess.run([GIT, "-C", str(root), "commit", "-qm", "rules"], check=True, env=env)
    _repo(root, 80)
    result = runner.invoke(
        cli.app, _args(root, _requests(tmp_path / "requests.jsonl"), "--against", "HEAD")
    )
    assert result.exit_code == 0, result.output
    assert "against HEAD (sha256:" in result.stdout
    assert "1 added, 0 removed, 0 shifted" in result.stdout
    changed = [line.split() for line in result.stdout.splitlines() if line.startswith("added ")]
    assert [(row[1], row[2], row[3]) for row in changed] == [("DiskFull", "host/b", "-")]


def test_prometheus_rules_without_prometheus_are_named_not_evaluated(tmp_path):
    """Events alone can be backtested; the Prometheus rules left out are named, not silently skipped."""
    root = _repo(tmp_path / "repo", 90)
    (root / "rules" / "hosts.yaml").write_text(
        "groups:\n  - name: hosts\n    rules:\n"
        "      - {name: HostDown, expr: up == 0, resource: 'host/{{ labels.instance }}'}\n"
    )
    result = runner.invoke(cli.app, _args(root, _requests(tmp_path / "requests.jsonl")))
    assert result.exit_code == 0, result.output
    assert "not evaluated (no --prometheus): HostDown" in result.stdout


def test_a_silence_in_the_rule_files_is_reported_as_what_suppressed_the_episode(tmp_path):
    """An episode under a rule-file silence never reached the workflow: it is listed, suppressed by that silence."""
    root = _repo(tmp_path / "repo", 80)
    rules = root / "rules" / "disks.yaml"
    rules.write_text(
        rules.read_text()
        + "silences:\n  - name: b-maintenance\n    match: resource == 'host/b'\n"
        + "    starts_at: 2026-05-01T03:00:00Z\n    ends_at: 2026-05-01T05:00:00Z\n"
    )
    result = runner.invoke(cli.app, _args(root, _requests(tmp_path / "requests.jsonl"), "--json"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [
        (item["resource"], item["action"], item["suppressed_by"]) for item in report["episodes"]
    ] == [
        ("host/a", "remediate", ""),
        ("host/a", "nothing", "cooldown"),
        ("host/b", "nothing", "silence b-maintenance"),
    ]
