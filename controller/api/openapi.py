"""The OpenAPI document: a security scheme for every route and request bodies for the webhooks.

The operator routes declare their scheme (``operatorToken``) through their FastAPI
dependency. The webhooks and the Slack endpoint authenticate from the raw request (the
body must be read exactly as sent to check a signature), so FastAPI cannot see their
schemes or bodies; ``install`` adds them to the generated document, so ``/docs`` shows
how each route authenticates and can send a real event: "Authorize" with a webhook
token, then "Try it out" with the example body.

Every scheme is a different secret (``alertmanager.*``, ``webhooks.*``, ``api.tokens``,
``slack.signing_secret``): operator tokens never open a webhook, nor the other way round.
Where a route accepts a bearer token and a signature, the settings decide which are
required; the document lists each alone and both together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import fastapi
from fastapi.openapi import utils as openapi_utils

from controller.ingest import alertmanager

_SIGNATURE = (
    "HMAC-SHA256 of the timestamp, path and body, sent with X-Homeostat-Timestamp "
    "(docs/security.md gives the string to sign)."
)
SCHEMES: Mapping[str, dict[str, Any]] = {
    "alertmanagerBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "alertmanager.bearer_token: Alertmanager's http_config.authorization.",
    },
    "alertmanagerSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Homeostat-Signature",
        "description": f"alertmanager.hmac_secret. {_SIGNATURE}",
    },
    "eventsBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "webhooks.bearer_token.",
    },
    "eventsSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Homeostat-Signature",
        "description": f"webhooks.hmac_secret. {_SIGNATURE}",
    },
    "gitlabToken": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Gitlab-Token",
        "description": "webhooks.gitlab_token: the webhook's secret token in GitLab.",
    },
    "slackSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Slack-Signature",
        "description": "slack.signing_secret: v0=hex HMAC-SHA256 of "
        "'v0:{X-Slack-Request-Timestamp}:{raw body}', the timestamp within 5 minutes.",
    },
}


def _either(bearer: str, signature: str) -> list[dict[str, list[str]]]:
    return [{bearer: []}, {signature: []}, {bearer: [], signature: []}]


ROUTE_SECURITY: Mapping[str, list[dict[str, list[str]]]] = {
    "/v1/alertmanager": _either("alertmanagerBearer", "alertmanagerSignature"),
    "/v1/events": _either("eventsBearer", "eventsSignature"),
    "/v1/events/{stream}": _either("eventsBearer", "eventsSignature"),
    "/v1/gitlab": [{"gitlabToken": []}],
    "/v1/slack/interactions": [{"slackSignature": []}],
}
"""The security requirements of the routes that authenticate from the raw request."""

_EVENT_EXAMPLE = {"kind": "disk_full", "host": "web-1", "used_percent": 97}
_GITLAB_EXAMPLE = {
    "object_kind": "push",
    "ref": "refs/heads/main",
    "user_username": "alice",
    "project": {"path_with_namespace": "ops/playbooks"},
}


def _alertmanager_example(now: datetime) -> dict[str, Any]:
    return {
        "version": "4",
        "status": "firing",
        "receiver": "homeostat",
        "groupKey": '{}:{alertname="ServiceDown"}',
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "ServiceDown", "service": "web", "instance": "web-1"},
                "annotations": {"summary": "web-1 is down"},
                "startsAt": now.replace(microsecond=0).isoformat(),
            }
        ],
    }


def _json_body(schema: dict[str, Any], example: Any, description: str) -> dict[str, Any]:
    return {
        "required": True,
        "description": description,
        "content": {"application/json": {"schema": schema, "example": example}},
    }


def _bodies(components: dict[str, Any], now: datetime) -> dict[str, dict[str, Any]]:
    notification = alertmanager.Notification.model_json_schema(
        by_alias=True, ref_template="#/components/schemas/{model}"
    )
    components.setdefault("schemas", {}).update(notification.pop("$defs", {}))
    event = {
        "oneOf": [
            {"type": "object", "description": "one event: plain JSON or a CloudEvent"},
            {"type": "array", "items": {"type": "object"}, "description": "several events"},
        ]
    }
    return {
        "/v1/alertmanager": _json_body(
            notification, _alertmanager_example(now), "Alertmanager's webhook body, version 4"
        ),
        "/v1/events": _json_body(event, _EVENT_EXAMPLE, "An event (JSON or CloudEvents 1.0)"),
        "/v1/events/{stream}": _json_body(event, _EVENT_EXAMPLE, "An event on the stream"),
        "/v1/gitlab": _json_body(
            {"type": "object"}, _GITLAB_EXAMPLE, "GitLab's webhook body (X-Gitlab-Event names it)"
        ),
    }


def describe(app: fastapi.FastAPI, *, now: datetime) -> dict[str, Any]:
    """The OpenAPI document of ``app`` with the raw-request routes' schemes and bodies."""
    document = openapi_utils.get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
    )
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(SCHEMES)
    bodies = _bodies(components, now)
    for path, operations in document.get("paths", {}).items():
        post = operations.get("post")
        if post is None:
            continue
        if path in ROUTE_SECURITY:
            post["security"] = ROUTE_SECURITY[path]
        if path in bodies and "requestBody" not in post:
            post["requestBody"] = bodies[path]
    return document


def install(
    app: fastapi.FastAPI, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> None:
    """Serve ``describe(app)`` as the app's OpenAPI document (built once, on first use)."""
    built: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not built:
            built.update(describe(app, now=clock()))
        return built

    app.openapi = openapi  # type: ignore[method-assign]
