import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller import __version__, cli

runner = CliRunner()


def _commands(help_text: str) -> list[str]:
    section = help_text.split("Commands", 1)[1]
    return re.findall(r"^│ (\w[\w-]*) ", section, flags=re.MULTILINE)


def test_every_listed_command_has_working_help():
    """Each sub-command that --help lists answers its own --help."""
    top = runner.invoke(cli.app, ["--help"], terminal_width=120)
    assert top.exit_code == 0
    commands = _commands(top.output)
    assert {"up", "config", "version"} <= set(commands)
    for command in commands:
        result = runner.invoke(cli.app, [command, "--help"], terminal_width=120)
        assert result.exit_code == 0, (command, result.output)


def test_every_sub_command_of_a_listed_group_has_working_help():
    """`homeostat GROUP SUB --help` answers for every sub-command a group lists, even a group of one."""
    top = runner.invoke(cli.app, ["--help"], terminal_width=120)
    for group in ("config", "rules", "resource", "slack"):
        assert group in _commands(top.output)
        listed = runner.invoke(cli.app, [group, "--help"], terminal_width=120)
        assert listed.exit_code == 0, (group, listed.output)
        subs = _commands(listed.output)
        assert subs, (group, listed.output)
        for sub in subs:
            result = runner.invoke(cli.app, [group, sub, "--help"], terminal_width=120)
            assert result.exit_code == 0, (group, sub, result.output)


def test_version_prints_the_package_version():
    """`homeostat version` prints the installed version."""
    result = runner.invoke(cli.app, ["version"])
    assert result.output.strip() == __version__


def test_config_check_reports_the_bad_key_and_exits_2(tmp_path: Path):
    """An invalid settings file makes the command fail with the key named and exit status 2."""
    config = tmp_path / "homeostat.yaml"
    config.write_text("http:\n  port: -1\n")
    result = runner.invoke(cli.app, ["config", "check", "--config", str(config)])
    assert result.exit_code == 2
    assert "http.port" in result.output


def test_config_show_masks_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """`homeostat config show` never prints a secret value."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOMEOSTAT_TICKETING__TOKEN", "jira-t0ken")
    result = runner.invoke(cli.app, ["config", "show"])
    assert result.exit_code == 0
    assert "jira-t0ken" not in result.output
    assert '"token": "**********"' in result.output


def test_module_entry_point_matches_the_script():
    """`python -m controller --help` works like the `homeostat` script."""
    result = subprocess.run(
        [sys.executable, "-m", "controller", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert "autoscaling and self-healing" in result.stdout


def test_a_worker_or_ingest_process_needs_a_shared_temporal(tmp_path: Path):
    """`homeostat up --role worker` without temporal.address stops with the key to set, not an embedded server per replica."""
    config = tmp_path / "homeostat.yaml"
    config.write_text("http:\n  port: 0\n")
    result = runner.invoke(cli.app, ["up", "--role", "worker", "--config", str(config)])
    assert result.exit_code == 2
    assert "set temporal.address" in result.stderr
