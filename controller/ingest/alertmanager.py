"""Alertmanager's webhook (payload version 4) as observations.

Each alert is taken by its own ``status``, not the group's. Firing alerts start episodes
directly (Prometheus already applied ``for``); resolved alerts end them. Alertmanager in
HA mode delivers every notification from each replica, and re-sends groups on every
``repeat_interval``: the episode id derives from the alert's ``startsAt``, so a duplicate
becomes the same transition, which the engine and the workflow both ignore.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import pydantic

from controller.domain import observations

_ZERO_TIME_YEAR = 1
"""Alertmanager sends ``0001-01-01T00:00:00Z`` as ``endsAt`` of an alert with no end."""


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="ignore", frozen=True)


def _string_map(value: Any) -> Any:
    """One error for a whole bad label map, not one per entry (a hostile body has millions)."""
    if isinstance(value, dict) and not all(
        isinstance(item, str) for pair in value.items() for item in pair
    ):
        raise ValueError("must map names to string values")
    return value


StringMap = Annotated[dict[str, str], pydantic.BeforeValidator(_string_map)]
"""Labels and annotations: names to text values."""


class Alert(_Model):
    """One alert of a notification."""

    status: str = pydantic.Field(pattern="^(firing|resolved)$")
    labels: StringMap
    annotations: StringMap = pydantic.Field(default_factory=dict)
    starts_at: datetime = pydantic.Field(alias="startsAt")
    ends_at: datetime | None = pydantic.Field(default=None, alias="endsAt")
    generator_url: str = pydantic.Field(default="", alias="generatorURL")
    fingerprint: str = ""

    @pydantic.field_validator("starts_at", "ends_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a timezone (Alertmanager sends RFC 3339)")
        return value


class Notification(_Model):
    """The webhook body, version 4."""

    version: str = pydantic.Field(pattern="^4$")
    group_key: str = pydantic.Field(default="", alias="groupKey")
    truncated_alerts: int = pydantic.Field(default=0, alias="truncatedAlerts")
    status: str = ""
    receiver: str = ""
    group_labels: StringMap = pydantic.Field(default_factory=dict, alias="groupLabels")
    common_labels: StringMap = pydantic.Field(default_factory=dict, alias="commonLabels")
    common_annotations: StringMap = pydantic.Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = pydantic.Field(default="", alias="externalURL")
    alerts: list[Alert] = pydantic.Field(fail_fast=True)
    """The first bad alert stops validation: errors stay few, whatever the body holds."""


def to_observations(notification: Notification) -> list[observations.Observation]:
    """One observation per alert, stamped with its own event time."""
    found = []
    for alert in notification.alerts:
        ended = alert.ends_at if alert.ends_at and alert.ends_at.year > _ZERO_TIME_YEAR else None
        at = ended if alert.status == "resolved" and ended is not None else alert.starts_at
        found.append(
            observations.Observation(
                source=observations.SourceKind.ALERTMANAGER,
                stream=notification.receiver,
                at=at,
                labels=dict(alert.labels),
                body={
                    "status": alert.status,
                    "startsAt": alert.starts_at,
                    "endsAt": ended,
                    "fingerprint": alert.fingerprint,
                    "annotations": dict(alert.annotations),
                    "labels": dict(alert.labels),
                    "generatorURL": alert.generator_url,
                    "receiver": notification.receiver,
                    "externalURL": notification.external_url,
                },
            )
        )
    return found
