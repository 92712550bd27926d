from datetime import timedelta
from pathlib import Path

import pytest

from controller import errors, settings


def test_defaults_run_an_embedded_temporal_with_its_ui(monkeypatch, tmp_path):
    """With no file and no variables, Homeostat embeds Temporal with a Web UI on 8233."""
    monkeypatch.chdir(tmp_path)
    loaded = settings.load(None)
    assert loaded.temporal.address is None
    assert loaded.temporal.ui is True
    assert loaded.temporal.ui_port == 8233
    assert loaded.http.port == 8080


def test_file_values_are_read_and_environment_overrides_them(monkeypatch, tmp_path: Path):
    """A value in homeostat.yaml applies unless a HOMEOSTAT_ variable overrides it."""
    config = tmp_path / "homeostat.yaml"
    config.write_text(
        "http:\n  port: 9000\nprometheus:\n  evaluation_interval: 30s\n"
        "temporal:\n  namespace: from-file\n"
    )
    monkeypatch.setenv("HOMEOSTAT_TEMPORAL__NAMESPACE", "from-env")
    loaded = settings.load(config)
    assert loaded.http.port == 9000
    assert loaded.prometheus.evaluation_interval == timedelta(seconds=30)
    assert loaded.temporal.namespace == "from-env"


def test_invalid_value_names_the_key_and_the_problem(tmp_path: Path):
    """A bad port fails at start with the dotted key and why."""
    config = tmp_path / "homeostat.yaml"
    config.write_text("http:\n  port: 99999\n")
    with pytest.raises(errors.ConfigError) as caught:
        settings.load(config)
    assert "http.port" in str(caught.value)
    assert "less than or equal to 65535" in str(caught.value)


def test_unknown_key_is_an_error_not_silently_ignored(tmp_path: Path):
    """A typo in a setting name is reported as an unknown setting with its path."""
    config = tmp_path / "homeostat.yaml"
    config.write_text("temporal:\n  adress: localhost:7233\n")
    with pytest.raises(errors.ConfigError, match=r"temporal\.adress: unknown setting"):
        settings.load(config)


def test_invalid_environment_value_is_reported(monkeypatch, tmp_path):
    """A bad value in a HOMEOSTAT_ variable names the key too."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOMEOSTAT_LOGGING__LEVEL", "loud")
    with pytest.raises(errors.ConfigError, match=r"logging\.level: .*must be one of"):
        settings.load(None)


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path):
    """Broken YAML is reported with file:line:column."""
    config = tmp_path / "homeostat.yaml"
    config.write_text("http:\n  port: [8080\n")
    with pytest.raises(errors.ConfigError, match=r"homeostat\.yaml:3:1: not valid YAML"):
        settings.load(config)


def test_missing_file_is_reported(tmp_path: Path):
    """A --config path that does not exist is a clear error."""
    with pytest.raises(errors.ConfigError, match="cannot read config file"):
        settings.load(tmp_path / "nope.yaml")


def test_secrets_are_typed_as_secrets_and_never_printed(monkeypatch, tmp_path):
    """Secret values are masked when the settings are shown or logged."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOMEOSTAT_PAGING__ROUTING_KEY", "R0UT1NGKEY")
    monkeypatch.setenv("HOMEOSTAT_ALERTMANAGER__BEARER_TOKEN", "s3cret-token")
    loaded = settings.load(None)
    assert loaded.paging.routing_key is not None
    assert loaded.paging.routing_key.get_secret_value() == "R0UT1NGKEY"
    shown = repr(loaded) + str(loaded.model_dump(mode="json"))
    assert "R0UT1NGKEY" not in shown
    assert "s3cret-token" not in shown
