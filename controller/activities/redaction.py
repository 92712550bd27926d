"""Secrets out of captured output: what commands print and APIs answer reaches histories.

Two nets. Every secret value the worker knows (``ActivitiesConfig.secrets``) is replaced
wherever it appears; and ``key=value`` / ``"key": "value"`` pairs whose key names a secret
(password, token, secret, api key, authorization) have their value replaced, which also
catches secrets the worker never knew, such as one a command generated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

MASK = "***"
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


class Redactor:
    """Masks known secret values and secret-looking pairs in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        """Mask ``secrets`` (values shorter than four characters are ignored)."""
        self._secrets = tuple(sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True))  # noqa: PLR2004
        self.longest = max((len(s) for s in self._secrets), default=0)

    def text(self, value: str) -> str:
        """``value`` with every secret masked."""
        for secret in self._secrets:
            value = value.replace(secret, MASK)
        return _PAIR.sub(lambda m: f"{m['key']}{m['sep']}{m['quote']}{MASK}", value)

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
