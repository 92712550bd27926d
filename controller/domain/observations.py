"""Observations: typed, normalized facts that sources hand to the rules engine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class SourceKind(StrEnum):
    """Where an observation came from; rules select on it."""

    PROMETHEUS = "prometheus"
    ALERTMANAGER = "alertmanager"
    KAFKA = "kafka"
    WEBHOOK = "webhook"
    GITLAB = "gitlab"


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """One fact at one instant: a sample, an alert, an event.

    Attributes:
        source: the kind of source that produced it.
        stream: the source's own channel (Kafka topic, Prometheus rule group, webhook path).
        at: event time, timezone-aware UTC.
        labels: identifying string labels (series labels, alert labels, event attributes).
        value: the sample value, when the observation is a sample.
        body: the event body, for CEL conditions over events.
    """

    source: SourceKind
    stream: str
    at: datetime
    labels: Mapping[str, str] = field(default_factory=dict)
    value: float | None = None
    body: Mapping[str, Any] = field(default_factory=dict)
