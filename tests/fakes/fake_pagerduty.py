"""PagerDuty Events API v2, as documented: ``POST /v2/enqueue`` over HTTPS.

Documented contract (developer.pagerduty.com, "Events API v2 Overview" and "Send an Alert
Event"): the body carries ``routing_key``, ``event_action`` (trigger, acknowledge,
resolve), ``dedup_key`` (required except for trigger) and, for trigger, ``payload`` with
``summary``, ``source`` and ``severity`` (critical, error, warning, info), optionally
``component``, ``group``, ``class``, ``custom_details``, and ``links``. Answers: 202
``{"status": "success", "message": "Event processed", "dedup_key": ...}``; 400 ``{"status":
"invalid event", "message": ..., "errors": [...]}`` for an invalid event or routing key;
429 when throttled; 5xx on PagerDuty's errors.

Incidents follow the dedup key: a trigger opens an incident unless one with the key is
open (then the event is added to it); resolve closes it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from fake_http import FakeService, Request

SEVERITIES = {"critical", "error", "warning", "info"}


@dataclass
class Incident:
    dedup_key: str
    routing_key: str
    status: str = "triggered"
    events: list[dict[str, Any]] = field(default_factory=list)


class FakePagerDuty(FakeService):
    def __init__(self, *, routing_keys: set[str]) -> None:
        super().__init__(tls=True)
        self.routing_keys = routing_keys
        self.incidents: list[Incident] = []

    def open_incident(self, dedup_key: str) -> Incident | None:
        return next(
            (i for i in self.incidents if i.dedup_key == dedup_key and i.status != "resolved"),
            None,
        )

    def route(self, request: Request) -> tuple[int, Any]:
        if request.method != "POST" or request.path != "/v2/enqueue":
            return 404, {"status": "not found"}
        event = request.body if isinstance(request.body, dict) else {}
        problems = self._problems(event)
        if problems:
            return 400, {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": problems,
            }
        action = event["event_action"]
        key = event.get("dedup_key") or uuid.uuid4().hex
        incident = self.open_incident(key)
        if action == "trigger":
            if incident is None:
                incident = Incident(dedup_key=key, routing_key=event["routing_key"])
                self.incidents.append(incident)
            incident.events.append(event)
        elif incident is not None:
            incident.events.append(event)
            incident.status = "resolved" if action == "resolve" else "acknowledged"
        return 202, {"status": "success", "message": "Event processed", "dedup_key": key}

    def _problems(self, event: dict[str, Any]) -> list[str]:
        if event.get("routing_key") not in self.routing_keys:
            return ["Invalid routing key"]
        action = event.get("event_action")
        if action not in {"trigger", "acknowledge", "resolve"}:
            return ["'event_action' is invalid"]
        if action != "trigger" and not event.get("dedup_key"):
            return ["'dedup_key' is missing or blank"]
        if action == "trigger":
            payload = event.get("payload") or {}
            missing = [
                f"'payload.{k}' is missing or blank"
                for k in ("summary", "source", "severity")
                if not payload.get(k)
            ]
            if payload.get("severity") and payload["severity"] not in SEVERITIES:
                missing.append("'payload.severity' is invalid")
            return missing
        return []
