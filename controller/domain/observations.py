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


_FRESH: Any = object()
"""Default of ``labels`` and ``body``: a new empty dict."""


@dataclass(frozen=True, slots=True, kw_only=True, init=False)
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

    def __init__(
        self,
        *,
        source: SourceKind,
        stream: str,
        at: datetime,
        labels: Mapping[str, str] = _FRESH,
        value: float | None = None,
        body: Mapping[str, Any] = _FRESH,
    ) -> None:
        """The generated ``__init__``, made cheaper: one is built per Kafka message.

        A frozen dataclass sets each field through ``object.__setattr__``; setting the
        slots directly does the same for a third of the time, and the instance is as
        immutable as ever (assignment still raises ``FrozenInstanceError``).
        """
        _set_source(self, source)
        _set_stream(self, stream)
        _set_at(self, at)
        _set_labels(self, {} if labels is _FRESH else labels)
        _set_value(self, value)
        _set_body(self, {} if body is _FRESH else body)


_set_source, _set_stream, _set_at, _set_labels, _set_value, _set_body = (
    Observation.__dict__[name].__set__
    for name in ("source", "stream", "at", "labels", "value", "body")
)
