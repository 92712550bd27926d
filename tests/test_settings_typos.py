"""A misspelled HOMEOSTAT_* variable is an error naming the closest setting, not silently ignored."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from controller import cli, errors, settings

runner = CliRunner()


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No HOMEOSTAT_* variable of the test runner leaks in; no homeostat.yaml is found."""
    for name in list(os.environ):
        if name.startswith("HOMEOSTAT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    ("name", "closest"),
    [
        ("HOMEOSTAT_WEBHOOK__BEARER_TOKEN", "HOMEOSTAT_WEBHOOKS__BEARER_TOKEN"),
        ("HOMEOSTAT_HTTP_PORT", "HOMEOSTAT_HTTP__PORT"),
        ("HOMEOSTAT_TEMPORAL__ADRESS", "HOMEOSTAT_TEMPORAL__ADDRESS"),
        ("HOMEOSTAT_KAFKA__BOOTSTRAP_SERVER", "HOMEOSTAT_KAFKA__BOOTSTRAP_SERVERS"),
        (
            "HOMEOSTAT_ACTIVITIES__CREDENTIALS__CMDB__BEARER_TOKN",
            "HOMEOSTAT_ACTIVITIES__CREDENTIALS__CMDB__BEARER_TOKEN",
        ),
    ],
)
def test_unknown_variable_is_an_error_with_the_closest_name(clean_env, monkeypatch, name, closest):
    """The two typos of the issue (singular group, single underscore) and others are refused."""
    monkeypatch.setenv(name, "9000")
    with pytest.raises(errors.ConfigError) as caught:
        settings.load(None)
    assert f"{name}: unknown setting (did you mean {closest}?)" in str(caught.value)


def test_config_check_reports_the_typo_and_exits_2(clean_env, monkeypatch):
    """`homeostat config check` names the variable and the setting it probably meant."""
    monkeypatch.setenv("HOMEOSTAT_HTTP_PORT", "9000")
    result = runner.invoke(cli.app, ["config", "check"])
    assert result.exit_code == 2
    assert "HOMEOSTAT_HTTP_PORT: unknown setting (did you mean HOMEOSTAT_HTTP__PORT?)" in (
        result.output
    )
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "name",
    [
        "HOMEOSTAT_HTTP__PORT",
        "HOMEOSTAT_TEMPORAL",
        "HOMEOSTAT_ACTIVITIES__CREDENTIALS__CMDB__BEARER_TOKEN",
        "HOMEOSTAT_ACTIVITIES__COMMAND_SECRET_ENV__DB_PASSWORD",
        "HOMEOSTAT_PAGING__ROUTING_KEYS__DATABASE",
        "homeostat_http__port",
        "HOMEOSTAT_API_URL",
        "HOMEOSTAT_API_TOKEN",
        "HOMEOSTAT_VAR_REPLICAS",
        "HOMEOSTAT_VARS",
    ],
)
def test_every_real_setting_and_the_cli_variables_are_accepted(clean_env, monkeypatch, name):
    """Settings (nested, dict keys, any case) and the variables the CLI and steps use are not typos."""
    monkeypatch.setenv(name, "x")
    problems = settings.unknown_variables({name: "x"})
    assert problems == []


def test_up_refuses_to_start_with_a_typo(clean_env, tmp_path):
    """`homeostat up` stops at once, before starting anything, naming the variable."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HOMEOSTAT_")}
    env["HOMEOSTAT_WEBHOOK__BEARER_TOKEN"] = "x"
    result = subprocess.run(
        [sys.executable, "-m", "controller", "up"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "did you mean HOMEOSTAT_WEBHOOKS__BEARER_TOKEN?" in result.stderr
    assert "Traceback" not in result.stderr
