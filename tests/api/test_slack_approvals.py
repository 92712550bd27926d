"""Slack approvals end to end: the real slack_sdk client against a local Slack Web API, signed clicks back through /v1/slack/interactions, on the Temporal dev server."""

import asyncio
import json
import time
from urllib.parse import urlencode

import homeostat
import httpx
import pytest
from fake_slack import FakeSlack
from operator_support import ALICE, start_episode, state, write_plan
from slack_sdk.signature import SignatureVerifier

from controller.domain import approvals, resources
from controller.workflows import remediation_io, resource_io

BOT_TOKEN = "xoxb-test-0123456789"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
PLAN = """
steps:
  - id: ask
    approve:
      message: "Fail over {{{{ resource }}}} to the replica?"
      deadline: {deadline}
      approvers: [dba]
      slack: "#ops-approvals"
  - {{id: failover, command: ["true"]}}
escalation:
  - page: nobody answered the fail-over question
"""


def _click(user: str, action: str, value: str, action_ts: str = "1764500000.000100") -> bytes:
    """The form body Slack posts for a button click (block_actions)."""
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T0TEST"},
        "api_app_id": "A0APP",
        "team": {"id": "T0TEST", "domain": "homeostat-test"},
        "container": {"type": "message", "message_ts": "1764500000.000001", "channel_id": "C0OPS"},
        "channel": {"id": "C0OPS", "name": "ops-approvals"},
        "response_url": "https://hooks.slack.invalid/actions/T0TEST/1/abc",
        "actions": [
            {
                "type": "button",
                "block_id": "homeostat_approval",
                "action_id": action,
                "value": value,
                "action_ts": action_ts,
                "text": {"type": "plain_text", "text": "Approve"},
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def _signed(body: bytes, *, at: float | None = None, secret: str = SIGNING_SECRET) -> dict:
    """Headers as Slack signs them (slack_sdk's own signature code)."""
    stamp = str(int(time.time() if at is None else at))
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


async def _until(check, *, timeout: float = 60):
    return await homeostat.eventually(check, timeout=timeout, interval=0.2)


async def _decisions(temporal, episode: str) -> int:
    history = await temporal.get_workflow_handle(
        resources.remediation_workflow_id(episode)
    ).fetch_history()
    return sum(
        1
        for event in history.events
        if event.HasField("workflow_execution_signaled_event_attributes")
        and event.workflow_execution_signaled_event_attributes.signal_name == "decision"
    )


def _question(slack, resource: str, episode: str):
    """The one approval message: in the channel, by the bot, with both buttons naming the episode."""
    [message] = slack.messages
    assert message.channel == "C0OPS"
    [post] = slack.calls("chat.postMessage")
    assert post.headers["authorization"] == f"Bearer {BOT_TOKEN}"
    [actions] = [block for block in message.blocks if block["type"] == "actions"]
    buttons = {button["action_id"]: button for button in actions["elements"]}
    assert set(buttons) == {approvals.APPROVE_ACTION, approvals.DENY_ACTION}
    assert buttons[approvals.APPROVE_ACTION]["style"] == "primary"
    value = approvals.ButtonValue.decode(buttons[approvals.APPROVE_ACTION]["value"])
    assert (value.resource, value.episode, value.step) == (resource, episode, "ask")
    shown = json.dumps(message.blocks)
    assert f"Fail over {resource} to the replica?" in shown, shown
    assert f"homeostat history {episode}" in shown
    assert "<!date^" in shown  # the deadline, in the reader's time zone
    return message, buttons


async def _refusals(http, url: str, approve: str, click: bytes) -> None:
    """Wrong secret, tampered body, stale or missing signature: 401; eve (unlisted): 403; bob (allowed in Slack, not a plan approver): 403."""
    wrong = await http.post(url, content=click, headers=_signed(click, secret="not-the-secret"))
    assert wrong.status_code == 401
    tampered = await http.post(
        url, content=click.replace(b"U0ALICE", b"U0ALICF"), headers=_signed(click)
    )
    assert tampered.status_code == 401
    stale = await http.post(url, content=click, headers=_signed(click, at=time.time() - 600))
    assert stale.status_code == 401
    unsigned = await http.post(url, content=click)
    assert unsigned.status_code == 401
    eve = _click("U0EVE", approvals.APPROVE_ACTION, approve)
    assert (await http.post(url, content=eve, headers=_signed(eve))).status_code == 403
    bob = _click("U0BOB", approvals.APPROVE_ACTION, approve)
    refused = await http.post(url, content=bob, headers=_signed(bob))
    assert refused.status_code == 403, refused.text
    assert "slack:U0BOB is not an approver" in refused.json()["detail"]


@pytest.fixture
def slack(tmp_path):
    fake = FakeSlack(token=BOT_TOKEN, channels={"#ops-approvals": "C0OPS"}).start(tmp_path)
    yield fake
    fake.stop()


def _settings(tmp_path, temporal_address, slack):
    return homeostat.make_settings(
        tmp_path,
        temporal_address,
        api={"tokens": {"alice": ALICE}, "groups": {"dba": ["slack:U0ALICE", "alice"]}},
        slack={
            "bot_token": BOT_TOKEN,
            "signing_secret": SIGNING_SECRET,
            "approvers": ["dba", "U0BOB"],
            "api_url": slack.api_url,
        },
    )


@pytest.mark.timeout(180)
async def test_a_signed_click_approves_exactly_once_and_the_message_says_so(
    tmp_path, temporal_dev_server, slack
):
    """The message has both buttons; bad signature, stale timestamp, unlisted and non-approver users change nothing; alice's click approves once, Slack's resend changes nothing, the message is updated."""
    write_plan(tmp_path, "failover", PLAN.format(deadline="10m"))
    config = _settings(tmp_path, temporal_dev_server.address, slack)
    temporal = await homeostat.client(temporal_dev_server.address)
    resource = "database/payments"
    async with homeostat.running(config) as endpoints, httpx.AsyncClient(timeout=30) as http:
        episode = await start_episode(temporal, config.temporal.task_queue, "failover", resource)
        await _until(lambda: asyncio.sleep(0, result=slack.messages))
        message, buttons = _question(slack, resource, episode)

        async def waiting():
            current = await state(temporal, resource)
            return current if current.phase is resource_io.Phase.AWAITING_APPROVAL else None

        await _until(waiting)
        url = f"{endpoints.api_url}/v1/slack/interactions"
        approve = buttons[approvals.APPROVE_ACTION]["value"]
        click = _click("U0ALICE", approvals.APPROVE_ACTION, approve)

        await _refusals(http, url, approve, click)
        assert (await state(temporal, resource)).phase is resource_io.Phase.AWAITING_APPROVAL
        assert await _decisions(temporal, episode) == 0

        began = time.monotonic()
        answer = await http.post(url, content=click, headers=_signed(click))
        assert time.monotonic() - began < 3
        assert answer.status_code == 200, answer.text
        assert answer.json()["ok"] is True
        resent = await http.post(
            url, content=click, headers={**_signed(click), "X-Slack-Retry-Num": "1"}
        )
        assert resent.status_code == 200, resent.text

        handle = temporal.get_workflow_handle(
            resources.remediation_workflow_id(episode),
            result_type=remediation_io.RemediationResult,
        )
        result = await asyncio.wait_for(handle.result(), 60)
        assert result.outcome is remediation_io.Outcome.SUCCEEDED
        assert result.steps[0].output["by"] == "slack:U0ALICE"
        assert result.steps[0].output["channel"] == "slack"
        late_deny = _click("U0ALICE", approvals.DENY_ACTION, approve, action_ts="1764500009.1")
        assert (
            await http.post(url, content=late_deny, headers=_signed(late_deny))
        ).status_code == 200
        assert await _decisions(temporal, episode) == 1

        await _until(lambda: asyncio.sleep(0, result=message.updates))
        [update] = message.updates
        assert update["ts"] == message.ts
        assert update["channel"] == "C0OPS"
        updated = json.dumps(update["blocks"])
        assert "*Approved* by <@U0ALICE>" in updated
        assert all(block["type"] != "actions" for block in update["blocks"])

        metrics = (await http.get(f"{endpoints.api_url}/metrics")).text
        for outcome, count in (("bad_signature", 3), ("stale", 1), ("unlisted_user", 1)):
            line = f'homeostat_operator_actions_total{{action="slack",channel="slack",outcome="{outcome}"}} {count}.0'
            assert line in metrics, outcome
        assert 'homeostat_unauthenticated_requests_total{route="slack"} 4.0' in metrics


@pytest.mark.timeout(120)
async def test_an_unanswered_slack_approval_is_updated_with_the_timeout_and_escalation(
    tmp_path, temporal_dev_server, slack
):
    """Nobody clicks within the 3-second deadline: the message loses its buttons and says that the plan escalates; the fail-over never ran."""
    write_plan(tmp_path, "failover", PLAN.format(deadline="3s"))
    config = _settings(tmp_path, temporal_dev_server.address, slack)
    temporal = await homeostat.client(temporal_dev_server.address)
    async with homeostat.running(config):
        episode = await start_episode(
            temporal, config.temporal.task_queue, "failover", "database/ledger"
        )
        handle = temporal.get_workflow_handle(
            resources.remediation_workflow_id(episode),
            result_type=remediation_io.RemediationResult,
        )
        await _until(handle.describe)
        result = await asyncio.wait_for(handle.result(), 60)
        assert result.outcome is remediation_io.Outcome.ESCALATED
        assert [step.step for step in result.steps] == ["ask", "escalation_1"]
        [message] = slack.messages
        [update] = message.updates
        updated = json.dumps(update["blocks"])
        assert "*No answer* by the deadline (escalating)" in updated
        assert all(block["type"] != "actions" for block in update["blocks"])
