"""Rules, credentials and valid requests for every webhook route, as real senders build them."""

from __future__ import annotations

import json
import time
from typing import Any

from controller.ingest import auth

ALERTMANAGER_TOKEN = "am-token"
EVENTS_TOKEN = "events-token"
EVENTS_SECRET = "events-secret"
GITLAB_TOKEN = "gitlab-token"

RULES = """\
groups:
  - name: probes
    rules:
      - name: ProbeEvent
        source: webhook
        match: labels.kind == 'probe'
        resource: service/{{ labels.service }}
        severity: warning
      - name: ProbeAlert
        source: alertmanager
        match: labels.alertname == 'Probe'
        resource: service/{{ labels.service }}
        severity: warning
      - name: ProbePipeline
        source: gitlab
        stream: pipeline
        match: labels.status == 'failed'
        resource: project/{{ labels.project }}
        severity: warning
"""
"""Every valid probe starts an episode at once for the resource it names."""

CREDENTIALS: dict[str, dict[str, Any]] = {
    "alertmanager": {"bearer_token": ALERTMANAGER_TOKEN},
    "webhooks": {
        "bearer_token": EVENTS_TOKEN,
        "hmac_secret": EVENTS_SECRET,
        "gitlab_token": GITLAB_TOKEN,
    },
}
"""Settings groups: the Alertmanager token; events with token and signature; GitLab's token."""


def headers_for(route: str, path: str, body: bytes) -> dict[str, str]:
    """What the route's sender adds: Alertmanager's bearer, a signed event, GitLab's token."""
    headers = {"Content-Type": "application/json"}
    if route == "alertmanager":
        headers["Authorization"] = f"Bearer {ALERTMANAGER_TOKEN}"
    elif route == "gitlab":
        headers["X-Gitlab-Token"] = GITLAB_TOKEN
        headers["X-Gitlab-Event"] = "Pipeline Hook"
    else:
        headers["Authorization"] = f"Bearer {EVENTS_TOKEN}"
        headers.update(auth.sign(EVENTS_SECRET, timestamp=int(time.time()), path=path, body=body))
    return headers


def valid_body(route: str, name: str) -> tuple[bytes, str]:
    """A body that starts an episode on ``route``, and the resource it names."""
    if route == "alertmanager":
        body: Any = {
            "version": "4",
            "status": "firing",
            "receiver": "homeostat",
            "groupKey": name,
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": "Probe", "service": name},
                    "startsAt": "2026-11-22T10:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z",
                }
            ],
        }
        return json.dumps(body).encode(), f"service/{name}"
    if route == "gitlab":
        body = {
            "object_kind": "pipeline",
            "object_attributes": {"status": "failed", "ref": "main"},
            "project": {"path_with_namespace": name},
        }
        return json.dumps(body).encode(), f"project/{name}"
    return json.dumps({"kind": "probe", "service": name}).encode(), f"service/{name}"


PATHS = {
    "alertmanager": "/v1/alertmanager",
    "events": "/v1/events",
    "events-stream": "/v1/events/fuzz",
    "gitlab": "/v1/gitlab",
}
"""Every webhook path, by a name; both event paths are the ``events`` route."""


def route_of(name: str) -> str:
    """The metric ``route`` label of a path name."""
    return "events" if name.startswith("events") else name
