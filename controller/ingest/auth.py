"""Webhook authentication: a bearer token, a signed request (HMAC-SHA256), or both.

Alertmanager's stock ``webhook_configs`` sends ``Authorization: Bearer <token>`` (its
``http_config.authorization``). A sender that can sign signs each request, in the manner
of Slack's v0 and Stripe's schemes, over its time, its path and its body::

    X-Homeostat-Timestamp: <unix seconds when the request is sent>
    X-Homeostat-Signature: v1=<hex HMAC-SHA256(secret, "v1:<timestamp>:<path>:" + body)>

``path`` is the request path exactly as sent, without the query string
(``/v1/events/deploys``). A timestamp further than the tolerance from the clock is refused,
so captured requests cannot be replayed later, and a request signed for one path is refused
on another. Within the tolerance, ``ReplayGuard`` lets each signature through once.

When both methods are configured, both must match. When neither is, every request is
refused: an endpoint that starts remediations never runs open. The token is checked from
the headers alone, before any byte of the body is read; only the signature needs the
body. Comparisons are constant-time and no message echoes what was sent.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from controller import errors

SIGNATURE_HEADER = "x-homeostat-signature"
TIMESTAMP_HEADER = "x-homeostat-timestamp"
SCHEME = "v1"
"""The version tag of the signed text and of the signature header value."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """What a request must carry; ``None`` means that method is not required."""

    bearer_token: str | None = None
    hmac_secret: str | None = None
    tolerance: timedelta = timedelta(minutes=5)

    @property
    def configured(self) -> bool:
        """Whether any method is configured at all."""
        return self.bearer_token is not None or self.hmac_secret is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Signature:
    """A verified request signature, and when its timestamp leaves the tolerance."""

    digest: bytes
    expires: datetime


def signed_text(*, timestamp: str, path: str, body: bytes) -> bytes:
    """The exact bytes a sender signs: ``v1:<timestamp>:<path>:<body>``."""
    return f"{SCHEME}:{timestamp}:{path}:".encode() + body


def sign(secret: str, *, timestamp: int, path: str, body: bytes) -> dict[str, str]:
    """The headers a sender adds to a request to ``path`` with ``body``, sent at ``timestamp``."""
    text = signed_text(timestamp=str(timestamp), path=path, body=body)
    digest = hmac.new(secret.encode(), text, hashlib.sha256).hexdigest()
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: f"{SCHEME}={digest}",
    }


def unix_seconds(text: str) -> int | None:
    """``text`` as unix seconds: ASCII decimal digits, at most 12 (year 33658); else ``None``.

    ``str.isdigit`` alone also takes superscripts and other scripts' digits (a header
    decoded as Latin-1 may carry them), which ``int`` then refuses or reads differently.
    """
    if not text.isascii() or not text.isdigit() or len(text) > 12:  # noqa: PLR2004
        return None
    return int(text)


def verify_token(credentials: Credentials, *, headers: Mapping[str, str]) -> None:
    """Check what the headers alone can prove: the endpoint is configured, the bearer token.

    Args:
        credentials: what is required.
        headers: the request headers, with lower-case names.

    Raises:
        errors.AuthError: no credentials are configured, or the token is missing or wrong.
    """
    if not credentials.configured:
        raise errors.AuthError(
            "this endpoint has no credentials configured; it refuses all requests"
        )
    if credentials.bearer_token is not None:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), credentials.bearer_token.encode()
        ):
            raise errors.AuthError("missing or wrong bearer token")


def verify_signature(
    credentials: Credentials,
    *,
    headers: Mapping[str, str],
    path: str,
    body: bytes,
    now: datetime,
) -> Signature | None:
    """Check the request signature, when one is required.

    Args:
        credentials: what is required.
        headers: the request headers, with lower-case names.
        path: the request path as sent, without the query string.
        body: the raw request body, exactly as received.
        now: the clock, for the timestamp's tolerance.

    Returns:
        The verified signature, or ``None`` when no signature is required.

    Raises:
        errors.AuthError: the timestamp is missing, malformed or out of tolerance, or the
            signature is missing or does not match.
    """
    if credentials.hmac_secret is None:
        return None
    sent_at = headers.get(TIMESTAMP_HEADER, "").strip()
    seconds = unix_seconds(sent_at)
    if seconds is None:
        raise errors.AuthError(f"missing or malformed {TIMESTAMP_HEADER} (unix seconds)")
    stamp = datetime.fromtimestamp(seconds, tz=UTC)
    if abs(now - stamp) > credentials.tolerance:
        raise errors.AuthError(
            f"{TIMESTAMP_HEADER} is more than {credentials.tolerance} away from the server's "
            "clock; sign every request (and every retry) when it is sent"
        )
    text = signed_text(timestamp=sent_at, path=path, body=body)
    expected = hmac.new(credentials.hmac_secret.encode(), text, hashlib.sha256).digest()
    for candidate in headers.get(SIGNATURE_HEADER, "").split(","):
        scheme, _, value = candidate.strip().partition("=")
        if scheme == SCHEME and hmac.compare_digest(value.encode(), expected.hex().encode()):
            return Signature(digest=expected, expires=stamp + credentials.tolerance)
    raise errors.AuthError(
        f"missing or wrong {SIGNATURE_HEADER} (expected {SCHEME}=<hex HMAC-SHA256 of "
        f"'{SCHEME}:<timestamp>:<path>:<body>'>)"
    )


class Replay(StrEnum):
    """What ``ReplayGuard.claim`` found."""

    NEW = "new"
    IN_FLIGHT = "in_flight"
    ACCEPTED = "accepted"


class ReplayGuard:
    """Each signed request counts once while its timestamp is within the tolerance.

    A signature is claimed when its request starts, kept when the request was accepted, and
    released when it failed (so the sender's retry of the same bytes is processed). Entries
    leave when their timestamp leaves the tolerance, after which the timestamp check refuses
    the request anyway. Memory is bounded: past ``capacity`` the oldest entries go first.
    """

    def __init__(self, *, capacity: int = 100_000) -> None:
        """Start empty; hold at most ``capacity`` signatures."""
        self._capacity = capacity
        self._seen: collections.OrderedDict[bytes, tuple[datetime, bool]] = (
            collections.OrderedDict()
        )

    def claim(self, signature: Signature, *, now: datetime) -> Replay:
        """Claim ``signature`` for a request that starts now; what was there before."""
        self._expire(now)
        found = self._seen.get(signature.digest)
        if found is not None:
            return Replay.ACCEPTED if found[1] else Replay.IN_FLIGHT
        self._seen[signature.digest] = (signature.expires, False)
        while len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return Replay.NEW

    def accept(self, signature: Signature) -> None:
        """The request of ``signature`` was accepted: a replay of it is a duplicate."""
        if signature.digest in self._seen:
            self._seen[signature.digest] = (signature.expires, True)

    def release(self, signature: Signature) -> None:
        """The request of ``signature`` failed: the sender may send it again."""
        self._seen.pop(signature.digest, None)

    def _expire(self, now: datetime) -> None:
        while self._seen:
            digest, (expires, _) = next(iter(self._seen.items()))
            if expires >= now:
                return
            del self._seen[digest]
