"""Observations: typed, normalized facts that sources hand to the rules engine.

``Observation`` is a frozen, keyword-only ``msgspec.Struct`` rather than the frozen
dataclass the other domain values are: one is built for every Kafka message, and a
``Struct`` is built in C, about an eighth of the cost of a frozen dataclass (whose
``__init__`` sets each field through ``object.__setattr__``). It behaves as the dataclass
did: fields compare for equality, assignment raises ``AttributeError``, and it is not
hashable (its labels and body are dicts). It is never tracked by the garbage collector
(``gc=False``): it refers only to its labels and its JSON body, which cannot refer back
to it, so it is never part of a reference cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any

import msgspec


class SourceKind(StrEnum):
    """Where an observation came from; rules select on it."""

    PROMETHEUS = "prometheus"
    ALERTMANAGER = "alertmanager"
    KAFKA = "kafka"
    WEBHOOK = "webhook"
    GITLAB = "gitlab"


class Observation(msgspec.Struct, frozen=True, kw_only=True, gc=False):
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
    labels: Mapping[str, str] = msgspec.field(default_factory=dict)
    value: float | None = None
    body: Mapping[str, Any] = msgspec.field(default_factory=dict)
