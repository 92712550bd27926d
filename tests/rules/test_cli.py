from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from controller import cli
from controller.commands import rules as rules_commands

REPO = Path(__file__).parents[2]
runner = CliRunner()


def test_lint_shipped_rules_and_plans():
    """`homeostat rules lint rules/` passes, checking plans beside them too."""
    result = runner.invoke(cli.app, ["rules", "lint", str(REPO / "rules")])
    assert result.exit_code == 0, result.output
    assert "remediations" in result.output


def test_lint_reports_positions_and_unknown_remediation(tmp_path):
    """Problems print as file:line:column and the exit status is 1."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "remediations").mkdir()
    (tmp_path / "remediations" / "restart-service.yaml").write_text("description: x\n")
    bad = tmp_path / "rules" / "bad.yaml"
    bad.write_text(
        "groups:\n  - name: g\n    rules:\n      - name: A\n        expr: up == 0\n"
        "        for: 5x\n        resource: service/{{ labels.job }}\n"
        "      - name: B\n        expr: up == 0\n        resource: service/{{ labels.job }}\n"
        "        remediation: nope\n"
    )
    result = runner.invoke(
        cli.app, ["rules", "lint", str(bad), "--remediations", str(tmp_path / "remediations")]
    )
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith(f"{bad}:6:14: ") for line in lines), lines
    assert any(line.startswith(f"{bad}:11:22: unknown remediation 'nope'") for line in lines), lines


def test_repository_root_checks_rules_and_remediations():
    """Given the repository root, lint finds rules/ and remediations/."""
    found = rules_commands.targets([REPO], remediations=None)
    assert found.rules == [REPO / "rules"]
    assert found.remediations == REPO / "remediations"


def test_rule_tests_pass_and_fail(tmp_path):
    """`rules test` exits 0 on a passing file and 1 with promtool-style output on a failing one."""
    source = REPO / "tests/rules/conformance"
    shutil.copytree(source / "rules", tmp_path / "rules")
    text = (source / "basic.test.yaml").read_text()
    (tmp_path / "ok.test.yaml").write_text(text)
    (tmp_path / "bad.test.yaml").write_text(
        text.replace(
            "exp_labels: {job: node, instance: h2}", "exp_labels: {job: node, instance: h9}", 1
        )
    )
    ok = runner.invoke(cli.app, ["rules", "test", str(tmp_path / "ok.test.yaml")])
    assert ok.exit_code == 0, ok.output
    assert "SUCCESS (12 checks)" in ok.output
    bad = runner.invoke(cli.app, ["rules", "test", str(tmp_path / "bad.test.yaml")])
    assert bad.exit_code == 1
    assert "alertname: InstanceDown, time: 0m" in bad.output


def test_rule_test_file_errors_are_positioned(tmp_path):
    """A typo in a test file is reported at its position, before any server starts."""
    path = tmp_path / "t.test.yaml"
    path.write_text("rule_files: [missing.yaml]\ntests:\n  - interval: 1m\n    input_seriess: []\n")
    result = runner.invoke(cli.app, ["rules", "test", str(path)])
    assert result.exit_code == 1
    assert (
        f"{path}:1:14: no rule file 'missing.yaml'" in result.output
        or f"{path}:4:5: unknown key" in result.output
    )


def test_schema_command_prints_committed_schema():
    """`rules schema` prints exactly the committed schema."""
    result = runner.invoke(cli.app, ["rules", "schema"])
    assert result.exit_code == 0
    assert result.stdout == (REPO / "controller/rules/schema.json").read_text()
