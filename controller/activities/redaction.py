"""Secrets out of captured output: what commands print and APIs answer reaches histories.

Two nets. Every secret value the worker knows (``ActivitiesConfig.secrets``) is replaced
wherever it appears, in every form it may travel in (``forms``: raw, URL-encoded as a
query or form value, JSON-escaped); and ``key=value`` / ``"key": "value"`` pairs whose
key names a secret (password, token, secret, api key, authorization) have their value
replaced, which also catches secrets the worker never knew, such as one a command
generated.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET = 4
"""Shorter values are not masked: masking "1" would garble every output."""
# A key starts at a word boundary and its repetitions are bounded, which keeps the scan
# linear: an unbounded ``[\w.-]*`` tried at every position of a long word backtracks
# quadratically (seconds for 20 KB of output).
_PAIR = re.compile(
    r"""(?ix)
    (?<![\w.-])(?P<key>["']?[\w.-]{0,40}(?:password|passwd|secret|token|api[_-]?key|authorization|credential)[\w.-]{0,40}["']?)
    (?P<sep>\s*[:=]\s*)
    (?P<quote>["']?)
    (?P<value>(?:bearer\s+|basic\s+)?[^\s"',;]+)
    """
)


def forms(secret: str) -> set[str]:
    """``secret`` as it may appear in output: raw, URL-encoded (path, query, form), in JSON."""
    return {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
    }


def basic_pair(user: str, password: str) -> str:
    """The credentials of an ``Authorization: Basic`` header (base64 of ``user:password``)."""
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def basic_forms(user: str, password: str) -> set[str]:
    """The basic-auth pair with and without its base64 padding; empty without a password."""
    if not password:
        return set()
    pair = basic_pair(user, password)
    return {pair, pair.rstrip("=")}


class Redactor:
    """Masks known secret values and secret-looking pairs in text."""

    def __init__(self, secrets: Iterable[str] = (), *, minimum: int = MIN_SECRET) -> None:
        """Mask ``secrets`` in each of their ``forms`` (values shorter than ``minimum`` are not)."""
        found = {form for secret in secrets if len(secret) >= minimum for form in forms(secret)}
        self._secrets = tuple(sorted(found, key=len, reverse=True))
        self.longest = max((len(s) for s in self._secrets), default=0)

    def known(self, value: str) -> str:
        """``value`` with every known secret masked (and nothing else changed)."""
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value

    def text(self, value: str) -> str:
        """``value`` with every known secret and every secret-looking pair masked."""
        return _PAIR.sub(lambda m: f"{m['key']}{m['sep']}{m['quote']}{MASK}", self.known(value))

    def data(self, value: Any) -> Any:
        """A JSON-like value with every string masked (keys naming secrets mask their value)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                key: MASK if _secret_key(str(key)) and item else self.data(item)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self.data(item) for item in value]
        return value


def _secret_key(key: str) -> bool:
    lowered = key.lower().replace("-", "_")
    return any(
        word in lowered
        for word in ("password", "passwd", "secret", "token", "api_key", "apikey", "authorization")
    )
