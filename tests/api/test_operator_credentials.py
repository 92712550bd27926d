"""Operator credentials and Slack signatures, without a server: what is accepted, what is refused, and why."""

import json
import time
from datetime import timedelta

import fastapi
import pytest
from fastapi import testclient
from slack_sdk.signature import SignatureVerifier

from controller import errors, settings
from controller.api import auth, slack
from controller.domain import approvals
from controller.observability import metrics as metrics_module
from controller.operations import identity

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.mark.parametrize(
    ("tokens", "problem"),
    [
        ({"alice": ""}, "empty or contains whitespace"),
        ({"alice": "   "}, "empty or contains whitespace"),
        ({"alice": "with space 0123456789"}, "empty or contains whitespace"),
        ({"alice": "s3cr3t"}, "shorter than 16"),
        ({"alice": "same-token-0123456789", "bob": "same-token-0123456789"}, "also another"),
        ({" ": "alices-token-0123456789"}, "needs a name"),
    ],
)
def test_unusable_operator_tokens_are_refused_by_the_configuration(monkeypatch, tokens, problem):
    """An empty, short, blank-containing, shared or nameless token makes the settings invalid, naming api.tokens and the problem."""
    monkeypatch.setenv("HOMEOSTAT_API__TOKENS", json.dumps(tokens))
    with pytest.raises(errors.ConfigError) as refused:
        settings.load(None)
    assert "api.tokens" in str(refused.value)
    assert problem in str(refused.value)
    for value in tokens.values():
        if value.strip():
            assert value not in str(refused.value)


@pytest.mark.parametrize("key", ["bot_token", "signing_secret"])
def test_an_empty_slack_secret_is_refused(monkeypatch, key):
    """`slack.bot_token=` or `slack.signing_secret=` (empty) is an error, not 'no authentication'."""
    monkeypatch.setenv(f"HOMEOSTAT_SLACK__{key.upper()}", "")
    with pytest.raises(errors.ConfigError) as refused:
        settings.load(None)
    assert f"slack.{key}" in str(refused.value)


def test_the_token_book_finds_the_name_and_nothing_else():
    """A configured token maps to its name; a prefix, a longer string or another value maps to none."""
    book = auth.TokenBook({"alice": "alices-token-0123456789", "ops-team": "ops-token-0123456789"})
    assert book.configured
    assert book.name_of("alices-token-0123456789") == "alice"
    assert book.name_of("ops-token-0123456789") == "ops-team"
    for wrong in (
        "",
        "alices-token-012345678",
        "alices-token-01234567890",
        "ALICES-TOKEN-0123456789",
    ):
        assert book.name_of(wrong) is None
    assert not auth.TokenBook({}).configured


def _headers(body: bytes, *, at: float, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(at))
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    return {slack.TIMESTAMP_HEADER: stamp, slack.SIGNATURE_HEADER: signature}


def test_slack_signatures_match_slack_sdks_own():
    """A body signed the way slack_sdk signs it verifies; our signer produces the same string."""
    body = b"payload=%7B%22type%22%3A%22block_actions%22%7D"
    now = time.time()
    headers = _headers(body, at=now)
    slack.verify(SECRET, headers=headers, body=body, now=now, tolerance=timedelta(minutes=5))
    assert (
        slack.sign(SECRET, timestamp=headers[slack.TIMESTAMP_HEADER], body=body)
        == headers[slack.SIGNATURE_HEADER]
    )


@pytest.mark.parametrize(
    ("change", "outcome"),
    [
        ("secret", "bad_signature"),
        ("body", "bad_signature"),
        ("old", "stale"),
        ("future", "stale"),
        ("no-timestamp", "bad_signature"),
        ("no-signature", "bad_signature"),
        ("no-secret", "bad_signature"),
    ],
)
def test_slack_requests_that_are_not_slacks_are_refused(change, outcome):
    """Wrong secret, altered body, a timestamp 6 minutes off, missing headers or no configured secret: refused with the reason."""
    body = b"payload=%7B%7D"
    now = time.time()
    at = {"old": now - 360, "future": now + 360}.get(change, now)
    headers = _headers(body, at=at, secret="another-secret" if change == "secret" else SECRET)
    if change == "no-timestamp":
        del headers[slack.TIMESTAMP_HEADER]
    if change == "no-signature":
        del headers[slack.SIGNATURE_HEADER]
    sent = body + b"x" if change == "body" else body
    secret = None if change == "no-secret" else SECRET
    with pytest.raises(slack.SignatureError) as refused:
        slack.verify(secret, headers=headers, body=sent, now=now, tolerance=timedelta(minutes=5))
    assert refused.value.outcome == outcome
    assert SECRET not in str(refused.value)


@pytest.mark.parametrize("stamp", ["soon", "-5", "\u00b2\u00b3", "9" * 5000])
def test_a_malformed_slack_timestamp_is_refused_not_a_crash(stamp):
    """A timestamp that is not ASCII unix seconds (superscript digits, 5,000 digits) is a 401, not a 500."""
    body = b"payload=%7B%7D"
    now = time.time()
    headers = _headers(body, at=now)
    headers[slack.TIMESTAMP_HEADER] = stamp
    with pytest.raises(slack.SignatureError) as refused:
        slack.verify(SECRET, headers=headers, body=body, now=now, tolerance=timedelta(minutes=5))
    assert refused.value.outcome == "bad_signature"


def test_slack_approvers_are_user_ids_identities_or_groups():
    """A user listed by id, as slack:<id>, or through an approver group may click; anyone else may not."""
    groups = identity.Directory.of({"dba": ["slack:U0ALICE", "alice"]}).groups
    approvers = ["U0BOB", "slack:U0CAROL", "dba"]
    for user in ("U0BOB", "U0CAROL", "U0ALICE"):
        assert slack.allowed(user, approvers=approvers, groups=groups), user
    assert not slack.allowed("U0EVE", approvers=approvers, groups=groups)
    assert not slack.allowed("U0ALICE", approvers=[], groups=groups)


def test_approver_groups_and_the_plan_check():
    """Group members may answer a step that names the group; an empty list lets any authenticated identity answer."""
    who = identity.Directory.of({"dba": ["alice"], "sre": ["bob"]}).identify(
        "alice", approvals.Channel.API
    )
    assert who.groups == ("dba",)
    assert approvals.may_decide(["dba"], by=who.name, groups=who.groups)
    assert approvals.may_decide(["alice"], by="alice")
    assert not approvals.may_decide(["sre"], by=who.name, groups=who.groups)
    assert approvals.may_decide([], by="anyone")


def test_button_values_round_trip_and_reject_forgeries():
    """A button value names its resource and episode; values that are not ours are refused."""
    value = approvals.ButtonValue(
        resource="service/web", episode="rule/service/web/20260101T000000.000000Z", step="ask"
    )
    assert approvals.ButtonValue.decode(value.encode()) == value
    for forged in (
        "",
        "null",
        "[]",
        '{"resource": "service/web"}',
        '{"resource": "../x", "episode": "e"}',
    ):
        with pytest.raises(ValueError, match=r"JSON|resource"):
            approvals.ButtonValue.decode(forged)


def test_a_signed_payload_nested_too_deep_is_a_400_not_a_500():
    """A Slack-signed body whose payload nests 30,000 arrays deep is answered 400 naming the problem, not a 500."""
    app = fastapi.FastAPI()
    app.include_router(
        slack.build_router(
            config=slack.SlackInteractions(signing_secret=SECRET, approvers=frozenset({"U1"})),
            steer=None,
            directory=identity.Directory.of({}),
            metrics=metrics_module.create(),
        )
    )
    body = b"payload=" + b"[" * 30_000 + b"]" * 30_000
    headers = _headers(body, at=time.time())
    with testclient.TestClient(app, raise_server_exceptions=False) as http:
        answer = http.post("/v1/slack/interactions", content=body, headers=headers)
    assert answer.status_code == 400, answer.text
    assert "nested" in answer.json()["detail"]
