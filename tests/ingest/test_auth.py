import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller import errors
from controller.ingest import auth

BODY = b'{"version":"4"}'
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
STAMP = int(NOW.timestamp())
PATH = "/v1/events/deploys"


def _verify(creds, headers, *, path=PATH, body=BODY, now=NOW):
    return auth.verify_signature(creds, headers=headers, path=path, body=body, now=now)


def test_stock_alertmanager_bearer_token_is_accepted():
    """`Authorization: Bearer <token>`, as Alertmanager's http_config sends it, authenticates."""
    creds = auth.Credentials(bearer_token="t0ken")
    auth.verify_token(creds, headers={"authorization": "Bearer t0ken"})


@pytest.mark.parametrize(
    "header", [{}, {"authorization": "Bearer wrong"}, {"authorization": "Basic dDA="}]
)
def test_missing_or_wrong_bearer_token_is_refused(header):
    """No token, a wrong token, or another scheme is refused."""
    with pytest.raises(errors.AuthError, match="bearer token"):
        auth.verify_token(auth.Credentials(bearer_token="t0ken"), headers=header)


def test_the_signed_text_is_version_timestamp_path_and_body():
    """The documented string to sign, `v1:<timestamp>:<path>:<body>`, is what verifies."""
    text = f"v1:{STAMP}:{PATH}:".encode() + BODY
    digest = hmac.new(b"k3y", text, hashlib.sha256).hexdigest()
    headers = {auth.TIMESTAMP_HEADER: str(STAMP), auth.SIGNATURE_HEADER: f"v1={digest}"}
    assert auth.sign("k3y", timestamp=STAMP, path=PATH, body=BODY) == headers
    assert _verify(auth.Credentials(hmac_secret="k3y"), headers) is not None


def test_a_signature_over_a_changed_body_is_refused():
    """A correct signature of other bytes does not authenticate."""
    headers = auth.sign("k3y", timestamp=STAMP, path=PATH, body=BODY)
    with pytest.raises(errors.AuthError, match="signature"):
        _verify(auth.Credentials(hmac_secret="k3y"), headers, body=BODY + b" ")


def test_a_request_signed_for_one_path_is_refused_on_another():
    """A body signed for /v1/events/audit-log does not authenticate on /v1/events/valid."""
    headers = auth.sign("k3y", timestamp=STAMP, path="/v1/events/audit-log", body=BODY)
    with pytest.raises(errors.AuthError, match="signature"):
        _verify(auth.Credentials(hmac_secret="k3y"), headers, path="/v1/events/valid")


@pytest.mark.parametrize("skew", [timedelta(minutes=-6), timedelta(minutes=6)])
def test_a_timestamp_outside_the_tolerance_is_refused(skew):
    """A correctly signed request from six minutes ago (or ahead) is refused, naming the window."""
    headers = auth.sign("k3y", timestamp=int((NOW + skew).timestamp()), path=PATH, body=BODY)
    with pytest.raises(errors.AuthError, match=r"more than 0:05:00 away"):
        _verify(auth.Credentials(hmac_secret="k3y"), headers)


def test_the_tolerance_is_configurable():
    """With a ten-minute tolerance, a six-minute-old signature authenticates."""
    creds = auth.Credentials(hmac_secret="k3y", tolerance=timedelta(minutes=10))
    stamp = int((NOW - timedelta(minutes=6)).timestamp())
    assert _verify(creds, auth.sign("k3y", timestamp=stamp, path=PATH, body=BODY)) is not None


@pytest.mark.parametrize("stamp", ["", "soon", "-5", "1e9", "9" * 40, "\u00b2\u00b3", "\u0663"])
def test_a_missing_or_malformed_timestamp_is_refused(stamp):
    """The timestamp must be unix seconds in ASCII digits (a Latin-1 superscript is a 401, not a 500)."""
    headers = auth.sign("k3y", timestamp=STAMP, path=PATH, body=BODY)
    headers[auth.TIMESTAMP_HEADER] = stamp
    with pytest.raises(errors.AuthError, match="timestamp"):
        _verify(auth.Credentials(hmac_secret="k3y"), headers)


def test_the_old_body_only_signature_is_refused():
    """`sha256=<HMAC of the body>` (the scheme before timestamps) no longer authenticates."""
    old = "sha256=" + hmac.new(b"k3y", BODY, hashlib.sha256).hexdigest()
    headers = {auth.TIMESTAMP_HEADER: str(STAMP), auth.SIGNATURE_HEADER: old}
    with pytest.raises(errors.AuthError, match="signature"):
        _verify(auth.Credentials(hmac_secret="k3y"), headers)


def test_any_of_several_signatures_may_match():
    """A sender rotating secrets may send `v1=<old>,v1=<new>`; one match authenticates."""
    good = auth.sign("k3y", timestamp=STAMP, path=PATH, body=BODY)[auth.SIGNATURE_HEADER]
    other = auth.sign("old", timestamp=STAMP, path=PATH, body=BODY)[auth.SIGNATURE_HEADER]
    headers = {auth.TIMESTAMP_HEADER: str(STAMP), auth.SIGNATURE_HEADER: f"{other}, {good}"}
    assert _verify(auth.Credentials(hmac_secret="k3y"), headers) is not None


def test_no_signature_is_needed_when_no_secret_is_configured():
    """With only a bearer token configured, the body is not signed."""
    assert _verify(auth.Credentials(bearer_token="t"), {}) is None


def test_an_endpoint_without_credentials_refuses_everything():
    """An unconfigured endpoint never runs open."""
    with pytest.raises(errors.AuthError, match="no credentials configured"):
        auth.verify_token(auth.Credentials(), headers={"authorization": "Bearer x"})


def test_a_signature_counts_once_until_it_expires():
    """A replayed signature is seen as in flight, then accepted; a released one may come again."""
    guard = auth.ReplayGuard()
    first = auth.Signature(digest=b"a", expires=NOW + timedelta(minutes=5))
    assert guard.claim(first, now=NOW) is auth.Replay.NEW
    assert guard.claim(first, now=NOW) is auth.Replay.IN_FLIGHT
    guard.release(first)
    assert guard.claim(first, now=NOW) is auth.Replay.NEW
    guard.accept(first)
    assert guard.claim(first, now=NOW) is auth.Replay.ACCEPTED
    assert guard.claim(first, now=NOW + timedelta(minutes=6)) is auth.Replay.NEW


def test_the_replay_guard_is_bounded():
    """Past its capacity the guard forgets the oldest signatures first."""
    guard = auth.ReplayGuard(capacity=2)
    expires = NOW + timedelta(minutes=5)
    for digest in (b"a", b"b", b"c"):
        guard.claim(auth.Signature(digest=digest, expires=expires), now=NOW)
    assert guard.claim(auth.Signature(digest=b"a", expires=expires), now=NOW) is auth.Replay.NEW
    assert (
        guard.claim(auth.Signature(digest=b"c", expires=expires), now=NOW) is auth.Replay.IN_FLIGHT
    )


def test_the_python_signer_in_docs_security_md_is_verified():
    """The Python snippet of docs/security.md produces headers Homeostat accepts."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    snippet = text.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(snippet, namespace)  # noqa: S102 - the documented example, run as a reader would
    body = b'{"kind":"deploy"}'
    headers = {key.lower(): value for key, value in namespace["sign"](b"k3y", PATH, body).items()}
    now = datetime.fromtimestamp(int(headers[auth.TIMESTAMP_HEADER]), tz=UTC)
    creds = auth.Credentials(hmac_secret="k3y")
    assert _verify(creds, headers, body=body, now=now) is not None
