"""Times and samples for the rules-engine tests (a uniquely named module, not a conftest)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, kw_only=True)
class Series:
    """A PromQL result sample, as the query client returns them."""

    labels: dict[str, str] = field(default_factory=dict)
    value: float = 1.0


def at(seconds: float) -> datetime:
    """EPOCH plus ``seconds``."""
    return EPOCH + timedelta(seconds=seconds)
