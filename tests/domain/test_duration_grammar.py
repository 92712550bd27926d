"""One duration grammar for rules, plans and settings: a bare number needs a unit everywhere."""

from __future__ import annotations

from datetime import timedelta

import pytest

from controller import errors, settings
from controller.domain import durations
from controller.plans import loader as plans_loader
from controller.rules import loader as rules_loader

RULE = "groups:\n  - name: g\n    rules:\n      - {{name: A, expr: up == 0, resource: 'service/x', for: {value}}}\n"
PLAN = "cooldown: {value}\nsteps:\n  - wait: 1s\n"


def _rule_problems(tmp_path, value: str) -> list[str]:
    path = tmp_path / "rules.yaml"
    path.write_text(RULE.format(value=value))
    return [str(problem) for problem in rules_loader.lint([path], known_remediations=None)]


def _plan_problems(value: str) -> list[str]:
    _, found = plans_loader.check_text(PLAN.format(value=value), file="p.yaml", name="p")
    return [str(problem) for problem in found]


def _settings_problem(tmp_path, value: str) -> str:
    path = tmp_path / "homeostat.yaml"
    path.write_text(f"kafka:\n  session_timeout: {value}\n")
    try:
        settings.load(path)
    except errors.ConfigError as exc:
        return str(exc)
    return ""


def test_a_bare_number_is_refused_by_rules_plans_and_settings(tmp_path):
    """`5` means nothing without a unit: rules, plans and settings all say so, the same way."""
    assert any(
        "5 needs a unit, like 5s or 5m" in problem for problem in _rule_problems(tmp_path, "5")
    )
    assert any("5 needs a unit, like 5s or 5m" in problem for problem in _plan_problems("5"))
    assert "5 needs a unit, like 5s or 5m" in _settings_problem(tmp_path, "5")


def test_a_bare_number_in_an_environment_variable_is_refused(monkeypatch):
    """HOMEOSTAT_KAFKA__SESSION_TIMEOUT=45 is refused like `45` in a file."""
    monkeypatch.setenv("HOMEOSTAT_KAFKA__SESSION_TIMEOUT", "45")
    with pytest.raises(errors.ConfigError, match="45 needs a unit"):
        settings.load(None)


@pytest.mark.parametrize("value", ["0", "90s", "1m30s", "250ms"])
def test_zero_and_durations_with_units_mean_the_same_everywhere(tmp_path, value):
    """Zero needs no unit; every written duration is the same length in all three places."""
    expected = durations.parse_duration(value)
    assert _rule_problems(tmp_path, value) == []
    assert _plan_problems(value) == []
    assert _settings_problem(tmp_path, value) == ""
    loaded = settings.load(tmp_path / "homeostat.yaml")
    assert loaded.kafka.session_timeout == expected
    plan, _ = plans_loader.check_text(PLAN.format(value=value), file="p.yaml", name="p")
    assert plan is not None
    assert plan.cooldown == expected


def test_coerce_takes_text_and_timedeltas():
    """The one parser behind all three takes text or a timedelta, and refuses other types."""
    assert durations.coerce("5m") == timedelta(minutes=5)
    assert durations.coerce(timedelta(seconds=3)) == timedelta(seconds=3)
    assert durations.coerce(0) == timedelta(0)
    with pytest.raises(ValueError, match="needs a unit"):
        durations.coerce(2.5)
    with pytest.raises(ValueError, match="not a duration"):
        durations.coerce(True)
