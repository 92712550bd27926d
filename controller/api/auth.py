"""Operator authentication: named bearer tokens, separate from the webhooks' credentials.

Each token stands for a person or a team (``api.tokens``: name to token). A request
carries ``Authorization: Bearer <token>``; the name it maps to is the identity every
change is recorded under. The token is compared with every configured one in constant
time (by their SHA-256 digests), so neither which name matched nor how much of a token
was right shows in the timing. With no token configured every request is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping
from typing import Annotated, Any

import fastapi
import structlog
from fastapi import security

from controller.domain import approvals
from controller.operations import identity

log = structlog.get_logger(__name__)

SCHEME = security.HTTPBearer(
    auto_error=False,
    scheme_name="operatorToken",
    description="An operator token (setting api.tokens); the change is recorded under its name.",
)


class TokenBook:
    """The configured operator tokens, by the digest of each."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        """Remember ``tokens`` (name to token) as digests only."""
        self._digests = [(_digest(token), name) for name, token in tokens.items() if token]

    @property
    def configured(self) -> bool:
        """Whether any token is configured."""
        return bool(self._digests)

    def name_of(self, token: str) -> str | None:
        """The name ``token`` stands for, or ``None``; looks at every token every time."""
        sent = _digest(token)
        found: str | None = None
        for digest, name in self._digests:
            if hmac.compare_digest(sent, digest):
                found = name
        return found


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


Authenticator = Callable[..., Awaitable[identity.Identity]]


def authenticator(
    *,
    tokens: TokenBook,
    directory: identity.Directory,
    on_refused: Callable[[str], Any] = lambda _reason: None,
) -> Authenticator:
    """A FastAPI dependency that answers the caller's ``Identity`` or raises 401.

    Args:
        tokens: the operator tokens.
        directory: the approver groups, to attach the caller's.
        on_refused: called with the reason of every refusal (for metrics).
    """

    async def authenticate(
        credentials: Annotated[
            security.HTTPAuthorizationCredentials | None, fastapi.Depends(SCHEME)
        ],
        request: fastapi.Request,
    ) -> identity.Identity:
        if not tokens.configured:
            reason = "no operator tokens are configured (api.tokens): every request is refused"
        elif credentials is None:
            reason = "missing 'Authorization: Bearer <operator token>'"
        else:
            name = tokens.name_of(credentials.credentials)
            if name is not None:
                return directory.identify(name, approvals.Channel.API)
            reason = "unknown operator token"
        log.warning("operator_unauthenticated", path=request.url.path, reason=reason)
        on_refused(reason)
        raise fastapi.HTTPException(
            status_code=401, detail=reason, headers={"WWW-Authenticate": "Bearer"}
        )

    return authenticate
