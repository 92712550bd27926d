"""Webhook authentication: a bearer token, an HMAC-SHA256 body signature, or both.

Alertmanager's stock ``webhook_configs`` sends ``Authorization: Bearer <token>`` (its
``http_config.authorization``); senders that can sign bodies send
``X-Homeostat-Signature: sha256=<hex of HMAC-SHA256(secret, body)>``. When both are
configured, both must match. When neither is, every request is refused: an endpoint that
starts remediations never runs open. Comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from controller import errors

SIGNATURE_HEADER = "x-homeostat-signature"


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """What a request must carry; ``None`` means that method is not required."""

    bearer_token: str | None = None
    hmac_secret: str | None = None

    @property
    def configured(self) -> bool:
        """Whether any method is configured at all."""
        return self.bearer_token is not None or self.hmac_secret is not None


def sign(secret: str, body: bytes) -> str:
    """The signature header value a sender computes for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(credentials: Credentials, *, headers: Mapping[str, str], body: bytes) -> None:
    """Check a request's headers and body against ``credentials``.

    Args:
        credentials: what is required.
        headers: the request headers, with lower-case names.
        body: the raw request body, exactly as received.

    Raises:
        errors.AuthError: the request does not authenticate; the message says which
            method failed and never echoes what was sent.
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
    if credentials.hmac_secret is not None:
        expected = sign(credentials.hmac_secret, body)
        if not hmac.compare_digest(headers.get(SIGNATURE_HEADER, "").encode(), expected.encode()):
            raise errors.AuthError(f"missing or wrong {SIGNATURE_HEADER} signature")
