"""Scenario 3: staging, then a human decides in Slack (or through the API), then production.

The shipped staged-release plan (deadline compressed by configuration to 15 seconds) on
localhost aliases: staging-1, and prod-1 and prod-2. Three releases: 2.4.1 is approved by
a signed Slack click and reaches production; 2.5.0 is denied through the operator API and
2.6.0 gets no answer: both escalate with one page each and never reach production. Each
episode posts exactly one Slack message, updated with the answer; the approver's identity
and channel are in the history.
"""

import asyncio
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
import scenario_support as support
import yaml
from slack_sdk.signature import SignatureVerifier

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))

from fake_slack import FakeSlack

from controller.domain import approvals
from controller.workflows import remediation_io

BOT_TOKEN = "xoxb-scenario-3"
SIGNING_SECRET = "3c1d9a0e5b7f4a2c8e6d0b9a7f5e3c1d"
ALICE = "alice-token-scenario-3-0123456789"
MANAGER = "U0RELEASE"
PRODUCTION = ("prod-1", "prod-2")


def _inventory(path: Path) -> None:
    local = {"ansible_connection": "local"}
    groups = {
        "staging": {"hosts": {"staging-1": local}},
        "production": {"hosts": dict.fromkeys(PRODUCTION, local)},
    }
    path.write_text(yaml.safe_dump({"all": {"children": groups}}))


def _click(value: str) -> tuple[bytes, dict]:
    """Slack's form body for the release manager's Approve click, and its signed headers."""
    payload = {
        "type": "block_actions",
        "user": {"id": MANAGER, "username": "release-manager", "team_id": "T0SCEN"},
        "team": {"id": "T0SCEN", "domain": "homeostat-scenarios"},
        "channel": {"id": "C0RELEASES", "name": "releases"},
        "actions": [
            {
                "type": "button",
                "block_id": "homeostat_approval",
                "action_id": approvals.APPROVE_ACTION,
                "value": value,
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(timestamp=stamp, body=body)
    headers = {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return body, headers


def _release(releases: Path, host: str) -> str | None:
    version = releases / host / "current" / "VERSION"
    return version.read_text().strip() if version.exists() else None


async def _question(slack: FakeSlack, count: int) -> str:
    """The Approve button's value of the ``count``-th approval message, once it is posted."""

    async def posted():
        return slack.messages[count - 1] if len(slack.messages) >= count else None

    message = await support.eventually(posted, timeout=90, interval=0.2)
    [actions] = [block for block in message.blocks if block["type"] == "actions"]
    return next(
        button["value"]
        for button in actions["elements"]
        if button["action_id"] == approvals.APPROVE_ACTION
    )


async def _run(config_path: Path, version: str, releases: Path) -> str:
    code, out, err = await support.homeostat_cli(
        config_path,
        *("run", "staged-release", "service/checkout", "--no-wait"),
        *("--var", f"version={version}", "--var", f"releases_dir={releases}"),
    )
    assert code == 0, out + err
    return out.split()[1]


@pytest.mark.timeout(300)
async def test_approved_in_slack_reaches_production_and_a_deny_or_no_answer_escalates(
    tmp_path, scenario_temporal, pagerduty
):
    """Slack approval by the release manager deploys production; a deny through the API and a missed deadline each page once and leave production on the approved release."""
    slack = FakeSlack(token=BOT_TOKEN, channels={"#releases": "C0RELEASES"}).start(tmp_path)
    inventory = tmp_path / "inventory.yml"
    _inventory(inventory)
    releases = tmp_path / "releases"
    config_path = support.make_settings(
        tmp_path,
        scenario_temporal.address,
        rules=support.compressed_copy(
            tmp_path / "content", factor=120, files={"remediations/staged-release.yaml": None}
        ),
        ansible={"inventory": str(inventory)},
        paging=support.paging(pagerduty),
        api={
            "tokens": {"alice": ALICE},
            "groups": {"release-managers": [f"slack:{MANAGER}", "alice"]},
        },
        slack={
            "bot_token": BOT_TOKEN,
            "signing_secret": SIGNING_SECRET,
            "approvers": ["release-managers"],
            "api_url": slack.api_url,
        },
    )
    temporal = await support.client(scenario_temporal.address)
    try:
        async with (
            support.running(support.load(config_path)) as endpoints,
            httpx.AsyncClient(timeout=30) as http,
        ):
            approved = await _run(config_path, "2.4.1", releases)
            body, headers = _click(await _question(slack, 1))
            click = await http.post(
                f"{endpoints.api_url}/v1/slack/interactions", content=body, headers=headers
            )
            assert click.status_code == 200, click.text
            first = await support.remediation(temporal, approved, timeout=120)

            denied = await _run(config_path, "2.5.0", releases)
            await _question(slack, 2)
            answer = await http.post(
                f"{endpoints.api_url}/v1/episodes/{denied}/deny",
                json={"comment": "freeze week"},
                headers={"Authorization": f"Bearer {ALICE}"},
            )
            assert answer.status_code == 200, answer.text
            second = await support.remediation(temporal, denied, timeout=120)

            unanswered = await _run(config_path, "2.6.0", releases)
            await _question(slack, 3)
            third = await support.remediation(temporal, unanswered, timeout=120)
            history = await support.homeostat_cli(config_path, "history", approved)
            await support.eventually(
                lambda: asyncio.sleep(0, result=all(m.updates for m in slack.messages)),
                timeout=30,
            )
    finally:
        slack.stop()

    assert first.outcome is remediation_io.Outcome.SUCCEEDED, first.message
    assert [s.step for s in first.steps] == ["staging", "go_live", "production"]
    assert first.steps[1].output["by"] == f"slack:{MANAGER}"
    assert first.steps[1].output["channel"] == "slack"
    assert second.outcome is remediation_io.Outcome.ESCALATED
    assert second.message.startswith("escalated at go_live: denied by alice")
    assert [s.step for s in second.steps] == ["staging", "go_live", "escalation_1"]
    assert third.outcome is remediation_io.Outcome.ESCALATED
    assert [s.step for s in third.steps] == ["staging", "go_live", "escalation_1"]
    assert third.steps[1].outcome is remediation_io.StepOutcome.TIMED_OUT

    # Production got only the approved release; staging got every one.
    assert [_release(releases, host) for host in PRODUCTION] == ["2.4.1", "2.4.1"]
    assert _release(releases, "staging-1") == "2.6.0"
    # One Slack message per episode, each updated with how it ended; one page per escalation.
    assert len(slack.messages) == 3
    ends = [json.dumps(message.updates[-1]["blocks"]) for message in slack.messages]
    assert f"*Approved* by <@{MANAGER}>" in ends[0]
    assert "the plan stops and escalates" in ends[1]
    assert "*No answer* by the deadline (escalating)" in ends[2]
    assert [i.dedup_key for i in pagerduty.incidents] == [
        f"homeostat/{denied}",
        f"homeostat/{unanswered}",
    ]
    # The approver, and through which channel, in the history.
    assert history[0] == 0, history[1] + history[2]
    shown = " ".join(history[1].split())
    assert f"by slack:{MANAGER} via slack" in shown, shown
