"""The Slack activities against a local Slack Web API through the real slack_sdk client: what is posted, and how failures reach Temporal."""

from datetime import UTC, datetime

import pytest
from fake_http import Fault
from fake_slack import FakeSlack
from temporalio.exceptions import ApplicationError
from typer.testing import CliRunner

from controller import cli
from controller.activities import config as config_module
from controller.activities import slack
from controller.domain import approvals, transitions
from controller.workflows import activity_io, slack_io

TOKEN = "xoxb-test-0123456789"
EPISODE = "DiskFull/host/web-1/20260101T000000.000000Z"


@pytest.fixture
def fake(tmp_path):
    server = FakeSlack(token=TOKEN, channels={"#ops": "C0OPS"}).start(tmp_path)
    yield server
    server.stop()


def _activities(fake, token=TOKEN):
    return slack.SlackActivities(
        settings=config_module.SlackConfig(bot_token=token, api_url=fake.api_url),
        links=config_module.LinksConfig(temporal_ui_url="http://ui.example:8233"),
    )


def _question(channel="#ops", summary="DiskFull on host/web-1: disk at 97%"):
    return slack_io.SlackApprovalInput(
        context=activity_io.ActivityContext(
            resource="host/web-1", episode=EPISODE, rule="DiskFull", plan="clean", step="ask"
        ),
        channel=channel,
        question="Delete old logs on web-1?",
        summary=summary,
        severity=transitions.Severity.WARNING,
        approvers=("dba",),
        deadline=datetime(2026, 1, 1, 1, tzinfo=UTC),
    )


def test_the_question_names_the_episode_and_links_to_it(fake):
    """The posted message has the Web UI link, the history command and both buttons carrying the episode."""
    posted = _activities(fake).slack_post_approval(_question())
    assert posted.channel == "C0OPS"
    [message] = fake.messages
    assert message.ts == posted.ts
    text = str(message.blocks)
    assert (
        "http://ui.example:8233/namespaces/default/workflows/episode%2FDiskFull%2Fhost%2Fweb-1"
        in text
    )
    assert f"homeostat history {EPISODE}" in text
    [actions] = [block for block in message.blocks if block["type"] == "actions"]
    values = {button["action_id"]: button["value"] for button in actions["elements"]}
    assert set(values) == {approvals.APPROVE_ACTION, approvals.DENY_ACTION}
    assert approvals.ButtonValue.decode(values[approvals.APPROVE_ACTION]).episode == EPISODE


def test_alert_text_cannot_mention_everyone_or_forge_links(fake):
    """A summary with <!channel> and a <url|link> reaches Slack escaped, as plain text."""
    _activities(fake).slack_post_approval(
        _question(summary="<!channel> disk full, see <https://evil.example|the runbook> & act")
    )
    text = str(fake.messages[0].blocks)
    assert "<!channel>" not in text
    assert "<https://evil.example" not in text
    assert "&lt;!channel&gt;" in text
    assert "&amp; act" in text


def test_the_update_replaces_the_buttons_with_who_decided(fake):
    """chat.update gets the same message; the buttons are gone and the Slack approver is mentioned."""
    chat = _activities(fake)
    posted = chat.slack_post_approval(_question())
    chat.slack_update_approval(
        slack_io.SlackApprovalUpdateInput(
            context=_question().context,
            message=posted,
            question="Delete old logs on web-1?",
            summary="DiskFull on host/web-1",
            end=slack_io.ApprovalEnd.DENIED,
            by="slack:U0ALICE",
            via=approvals.Channel.SLACK,
            comment="not during the sale",
            then="the plan stops",
        )
    )
    [update] = fake.messages[0].updates
    text = str(update["blocks"])
    assert "*Denied* by <@U0ALICE>: not during the sale (the plan stops)" in text
    assert all(block["type"] != "actions" for block in update["blocks"])


@pytest.mark.parametrize(
    ("setup", "kind"),
    [
        ("unknown-channel", activity_io.PERMANENT_ERROR),
        ("bad-token", activity_io.PERMANENT_ERROR),
        ("rate-limited", activity_io.TRANSIENT_ERROR),
        ("slack-down", activity_io.TRANSIENT_ERROR),
        ("unreachable", activity_io.TRANSIENT_ERROR),
        ("not-configured", activity_io.PERMANENT_ERROR),
    ],
)
def test_failures_are_permanent_or_transient_as_slack_means_them(fake, setup, kind):
    """channel_not_found and invalid_auth are not retried; 429, 5xx and a refused connection are."""
    chat = _activities(fake, token="xoxb-wrong" if setup == "bad-token" else TOKEN)
    if setup == "rate-limited":
        fake.fail(Fault(status=429, body={"ok": False, "error": "ratelimited"}))
    if setup == "slack-down":
        fake.fail(Fault(status=503, body={"ok": False, "error": "service_unavailable"}))
    if setup == "unreachable":
        chat = slack.SlackActivities(
            settings=config_module.SlackConfig(bot_token=TOKEN, api_url="http://127.0.0.1:9/api/"),
            links=config_module.LinksConfig(),
        )
    if setup == "not-configured":
        chat = slack.SlackActivities(settings=None, links=config_module.LinksConfig())
    question = _question(channel="#nowhere" if setup == "unknown-channel" else "#ops")
    with pytest.raises(ApplicationError) as failed:
        chat.slack_post_approval(question)
    assert failed.value.type == kind
    assert failed.value.non_retryable is (kind == activity_io.PERMANENT_ERROR)
    assert TOKEN not in str(failed.value)


def test_slack_check_names_the_workspace_or_slacks_error(fake, monkeypatch, tmp_path):
    """`homeostat slack check` prints the workspace and bot for a good token, and exits 1 with invalid_auth for a bad one."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOMEOSTAT_SLACK__API_URL", fake.api_url)
    monkeypatch.setenv("HOMEOSTAT_SLACK__BOT_TOKEN", TOKEN)
    good = CliRunner().invoke(cli.app, ["slack", "check"])
    assert good.exit_code == 0, good.output
    assert "workspace Homeostat Test (T0TEST), bot user homeostat (U0BOT)" in good.output
    assert "slack.signing_secret is not set" in good.output
    assert len(fake.calls("auth.test")) == 1
    monkeypatch.setenv("HOMEOSTAT_SLACK__BOT_TOKEN", "xoxb-revoked")
    bad = CliRunner().invoke(cli.app, ["slack", "check"])
    assert bad.exit_code == 1
    assert "invalid_auth" in bad.output
    assert "xoxb-revoked" not in bad.output


def _notify(step="summary"):
    return slack_io.SlackNotifyInput(
        context=activity_io.ActivityContext(
            resource="host/web-1", episode=EPISODE, rule="DiskFull", plan="clean", step=step
        ),
        channel="#ops",
        text="Cleaned *web-1*: 3 GiB freed",
    )


def test_a_slack_step_posts_once_even_when_retried(fake):
    """The message carries the text and the episode's links; a retry of the same step answers the same message without posting again."""
    chat = _activities(fake)
    posted = chat.slack_notify(_notify())
    again = chat.slack_notify(_notify())
    assert again == posted
    [message] = fake.messages
    assert (message.channel, message.ts) == ("C0OPS", posted.ts)
    assert message.text == "Cleaned *web-1*: 3 GiB freed"
    assert f"homeostat history {EPISODE}" in str(message.blocks)
    chat.slack_notify(_notify(step="other"))
    assert len(fake.messages) == 2
