"""`homeostat up` says at start what would otherwise quietly do nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

from structlog.testing import capture_logs

from controller import assembly, settings
from controller.observability import metrics as metrics_module

REPO = Path(__file__).resolve().parents[1]


def _events(config: settings.Settings) -> list[dict]:
    with capture_logs() as logs:
        assembly.build_ingest(config, object(), metrics_module.create())  # type: ignore[arg-type]
    return [entry for entry in logs if entry["log_level"] == "warning"]


def _rules(tmp_path: Path, **extra) -> settings.Settings:
    return settings.Settings(
        rules=settings.RulesSettings(
            rules_dir=tmp_path / "rules",
            remediations_dir=tmp_path / "remediations",
            playbooks_dir=tmp_path / "playbooks",
        ),
        **extra,
    )


def test_no_rules_is_a_warning_naming_the_folder(tmp_path):
    """Started where there is no rules/ folder, Homeostat warns that nothing will fire."""
    events = _events(_rules(tmp_path))
    assert [(event["event"], event["rules_dir"]) for event in events] == [
        ("no_rules_loaded", str(tmp_path / "rules"))
    ]


def test_shipped_rules_without_credentials_or_sinks_warn_once_each(tmp_path):
    """The shipped set with no secrets: each webhook its rules need refuses everyone, and each plan names what it needs that is not set up."""
    for folder in ("rules", "remediations", "playbooks"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    events = _events(_rules(tmp_path))
    refused = {
        event["endpoint"] for event in events if event["event"] == "webhook_refuses_everything"
    }
    assert refused == {"/v1/events", "/v1/alertmanager", "/v1/gitlab"}
    needs = {
        (event["plan"], event["need"])
        for event in events
        if event["event"] == "plan_needs_unconfigured"
    }
    assert ("page-oncall", "paging") in needs
    assert ("restart-service", "ticketing") in needs
    assert ("patch-group", "inventory") in needs
    assert ("demo-restart", "prometheus") in needs
    assert ("deploy-fleet", "slack") in needs
    assert all(
        need in {"paging", "ticketing", "inventory", "prometheus", "slack"} for _, need in needs
    )
    apt = next(e for e in events if (e.get("plan"), e.get("need")) == ("apt-update", "inventory"))
    assert apt["steps"] == ["per_host"]
    assert apt["hint"] == "those steps will fail: set ansible.inventory or cmdb.url"


def test_configured_credentials_and_sinks_silence_the_warnings(tmp_path):
    """With tokens, a routing key, Jira, an inventory, Prometheus and Slack set, the shipped set starts without a warning."""
    for folder in ("rules", "remediations", "playbooks"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    config = _rules(
        tmp_path,
        webhooks=settings.WebhooksSettings(bearer_token="events-token", gitlab_token="gl-token"),
        alertmanager=settings.AlertmanagerSettings(bearer_token="am-token"),
        paging=settings.PagingSettings(routing_key="R0UTINGKEY0000000000000000000000"),
        ticketing=settings.TicketingSettings(url="https://jira.example", user="u", token="t"),
        ansible=settings.AnsibleSettings(inventory=tmp_path / "inventory.yml"),
        prometheus=settings.PrometheusSettings(url="http://127.0.0.1:9090"),
        slack=settings.SlackSettings(bot_token="xoxb-0123456789"),
    )
    assert _events(config) == []
