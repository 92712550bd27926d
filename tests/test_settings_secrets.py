import subprocess
import sys

import pytest

from controller import errors, settings

WEBHOOK_SECRETS = [
    "HOMEOSTAT_ALERTMANAGER__BEARER_TOKEN",
    "HOMEOSTAT_ALERTMANAGER__HMAC_SECRET",
    "HOMEOSTAT_WEBHOOKS__BEARER_TOKEN",
    "HOMEOSTAT_WEBHOOKS__HMAC_SECRET",
    "HOMEOSTAT_WEBHOOKS__GITLAB_TOKEN",
]


@pytest.mark.parametrize("variable", WEBHOOK_SECRETS)
@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_webhook_secret_is_refused_naming_the_key(monkeypatch, tmp_path, variable, value):
    """An empty (or blank) token or HMAC secret is a configuration error, never 'no authentication'."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(variable, value)
    key = variable.removeprefix("HOMEOSTAT_").lower().replace("__", ".")
    with pytest.raises(errors.ConfigError, match=rf"{key}: .*empty"):
        settings.load(None)


def test_an_empty_secret_in_the_file_is_refused_too(tmp_path):
    """`gitlab_token: ""` in homeostat.yaml fails like the variable does."""
    config = tmp_path / "homeostat.yaml"
    config.write_text('webhooks:\n  gitlab_token: ""\n')
    with pytest.raises(errors.ConfigError, match=r"webhooks\.gitlab_token: .*empty"):
        settings.load(config)


def test_config_check_and_up_refuse_an_empty_secret_with_a_clear_message(tmp_path):
    """`homeostat config check` and `homeostat up` exit 2 naming the key, with no traceback."""
    env = {"PATH": "/usr/bin:/bin", "HOMEOSTAT_WEBHOOKS__GITLAB_TOKEN": ""}
    for command in (["config", "check"], ["up"]):
        result = subprocess.run(
            [sys.executable, "-m", "controller", *command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2, result.stdout + result.stderr
        assert "webhooks.gitlab_token" in result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("HOMEOSTAT_KAFKA__BOOTSTRAP_SERVERS", "[broken"),
        ("HOMEOSTAT_KAFKA", "{not json"),
        ("HOMEOSTAT_ACTIVITIES__COMMAND_SECRET_ENV", '{"A": '),
    ],
)
def test_malformed_json_in_a_variable_names_the_variable(monkeypatch, tmp_path, variable, value):
    """A list or mapping variable that is not valid JSON is reported by name, not as a traceback."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(variable, value)
    with pytest.raises(errors.ConfigError, match=rf"{variable}: not valid JSON"):
        settings.load(None)


def test_config_check_reports_malformed_json_without_a_traceback(tmp_path):
    """`homeostat config check` names the variable whose JSON is broken and exits 2."""
    result = subprocess.run(
        [sys.executable, "-m", "controller", "config", "check"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOMEOSTAT_KAFKA__BOOTSTRAP_SERVERS": "[broken"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "HOMEOSTAT_KAFKA__BOOTSTRAP_SERVERS: not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr
