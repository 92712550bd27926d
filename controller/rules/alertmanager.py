"""Alertmanager rules: an alert that fired upstream starts an episode; its resolution ends it.

Prometheus already applied ``for`` before Alertmanager sent the alert, so the episode
starts at the alert's ``startsAt`` and ends at its ``endsAt``. Alertmanager re-sends firing
alerts on every group interval and may repeat a resolution: both are idempotent here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from controller.domain import observations, resources, transitions
from controller.rules import alerts, model

_NANOS = re.compile(r"(\.\d{6})\d+")


class AlertmanagerAlerts:
    """The alerts of one Alertmanager rule, by fingerprint."""

    __slots__ = ("active", "rule")

    def __init__(self, rule: model.Rule) -> None:
        """No alert yet."""
        self.rule = rule
        self.active: dict[alerts.AlertKey, alerts.Alert] = {}

    def observe(
        self,
        observation: observations.Observation,
        *,
        resource: resources.ResourceKey,
        annotations: Mapping[str, str],
    ) -> tuple[list[alerts.Change], str | None]:
        """Apply one alert notification; the changes, and why it was ignored if it was."""
        fingerprint = str(observation.body.get("fingerprint") or "")
        key: alerts.AlertKey = (("", resource), ("fingerprint", fingerprint))
        if not fingerprint:
            key += tuple(sorted(observation.labels.items()))
        status = observation.body.get("status")
        existing = self.active.get(key)
        if status == "firing":
            if existing is not None:
                # A re-sent firing alert; a new startsAt means a missed resolution: the
                # episode simply goes on.
                return [], "duplicate"
            starts_at = timestamp(observation.body.get("startsAt")) or observation.at
            alert = alerts.Alert(
                key=key,
                resource=resource,
                labels=alerts.alert_labels(self.rule, observation.labels),
                annotations=alerts.annotations_of(
                    self.rule, observation.labels, annotations=annotations
                )
                or dict(annotations),
            )
            alert.state = alerts.State.FIRING
            alert.active_at = alert.fired_at = starts_at
            self.active[key] = alert
            return [alert.change(transitions.TransitionKind.FIRED, starts_at)], None
        if status == "resolved":
            if existing is None:
                return [], "duplicate"
            del self.active[key]
            ends_at = timestamp(observation.body.get("endsAt")) or observation.at
            existing.state = alerts.State.INACTIVE
            at = max(ends_at, existing.fired_at or ends_at)
            return [existing.change(transitions.TransitionKind.RESOLVED, at)], None
        return [], "bad_status"


def timestamp(value: object) -> datetime | None:
    """An Alertmanager time; ``None`` for a missing, zero (``0001-01-01``) or naive one."""
    if not isinstance(value, str) or value.startswith("0001-"):
        return None
    try:
        parsed = datetime.fromisoformat(_NANOS.sub(r"\1", value.replace("Z", "+00:00")))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
