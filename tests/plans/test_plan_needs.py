"""What a plan needs from the configuration, named before anything fires (lint --config)."""

from pathlib import Path

import yaml
from typer.testing import CliRunner

from controller import cli
from controller.plans import loader, needs

ROOT = Path(__file__).parents[2]
runner = CliRunner()


def test_each_need_names_the_steps_behind_it():
    """apt-update needs an inventory for its per-host loop and ticketing for its ladder; patch-group an inventory for its playbook's group."""
    plans = loader.load_plans(ROOT / "remediations")
    assert needs.of(plans["apt-update"]) == {
        needs.Need.INVENTORY: ("per_host",),
        needs.Need.TICKETING: ("escalation_1",),
    }
    assert needs.of(plans["patch-group"])[needs.Need.INVENTORY] == ("patch",)
    assert needs.of(plans["demo-restart"]) == {
        needs.Need.PROMETHEUS: ("up_again",),
        needs.Need.PAGING: ("escalation_1",),
    }


def _lint(tmp_path: Path, settings: dict) -> tuple[int, list[str]]:
    config = tmp_path / "homeostat.yaml"
    config.write_text(yaml.safe_dump(settings))
    result = runner.invoke(cli.app, ["rules", "lint", str(ROOT / "rules"), "--config", str(config)])
    return result.exit_code, result.stdout.splitlines()


def test_lint_with_a_config_reports_what_it_does_not_set(tmp_path):
    """With only paging configured, lint names each plan step that needs something else, and exits 1."""
    code, lines = _lint(tmp_path, {"paging": {"routing_key": "R0UT1NGKEY0000000000000000000001"}})
    assert code == 1
    apt = str(ROOT / "remediations" / "apt-update.yaml")
    [inventory] = [
        line for line in lines if line.startswith(f"{apt}:1:1: ") and "inventory" in line
    ]
    config = tmp_path / "homeostat.yaml"
    assert "plan apt-update needs inventory (steps per_host) but " in inventory
    assert inventory.endswith(f"{config} does not set ansible.inventory or cmdb.url")
    assert not [line for line in lines if "needs paging" in line]


def test_lint_with_everything_configured_is_clean(tmp_path):
    """An inventory, paging, ticketing, Prometheus and Slack configured: every shipped plan has what it needs."""
    code, lines = _lint(
        tmp_path,
        {
            "paging": {"routing_key": "R0UT1NGKEY0000000000000000000001"},
            "ticketing": {"url": "https://jira.example", "user": "u", "token": "t"},
            "ansible": {"inventory": str(tmp_path / "inventory.yml")},
            "prometheus": {"url": "http://127.0.0.1:9090"},
            "slack": {"bot_token": "xoxb-0123456789"},
        },
    )
    assert code == 0, lines
    assert lines[-1].startswith("ok: ")
