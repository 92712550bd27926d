"""The kinds of values settings hold: durations, secrets, sizes, and the group base model."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import pydantic

from controller.domain import durations

MEBIBYTE = 1024 * 1024
MIN_TOKEN_LENGTH = 16
"""Operator tokens shorter than this are refused: they could be guessed."""


def _duration(value: Any) -> Any:
    return durations.coerce(value)


Duration = Annotated[timedelta, pydantic.BeforeValidator(_duration)]
"""A timedelta written as a Prometheus duration (``30s``, ``5m``); a bare number needs a unit."""


def _not_blank(value: pydantic.SecretStr) -> pydantic.SecretStr:
    if not value.get_secret_value().strip():
        raise ValueError(
            "must not be empty: an empty secret would authenticate anyone; "
            "unset it to refuse every request, or set a real secret"
        )
    return value


Secret = Annotated[pydantic.SecretStr, pydantic.AfterValidator(_not_blank)]
"""A secret that authenticates inbound requests: never empty or blank."""


def reveal(secret: pydantic.SecretStr | None) -> str | None:
    """The text of ``secret``, for the client that sends it; ``None`` when it is unset.

    Composition roots call this where they hand a secret to the code that uses it; the
    settings object itself never shows one (``config show``, logs, reprs).
    """
    return secret.get_secret_value() if secret is not None else None


class Group(pydantic.BaseModel):
    """A group of settings: an unknown key is an error, and values never change."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)
