"""The operator API's routers and the Slack interactions route, from settings."""

from __future__ import annotations

from collections.abc import Mapping

import fastapi
from temporalio import client as temporal_client

from controller import settings as settings_module
from controller.api import auth as api_auth
from controller.api import live_rules as live_rules_api
from controller.api import operator as operator_api
from controller.api import reads as reads_api
from controller.api import slack as slack_api
from controller.assembly import ingest as ingest_module
from controller.ingest import (
    prometheus,
)
from controller.observability import metrics as metrics_module
from controller.operations import identity, links, steering


def operator_routers(
    settings: settings_module.Settings,
    client: temporal_client.Client,
    metrics: metrics_module.Metrics,
    ingest: ingest_module.Ingest | None = None,
) -> list[fastapi.APIRouter]:
    """The operator API (named tokens of ``api.tokens``) and the Slack interactions route.

    With ``ingest``, also its rules engine's live state (``/v1/alerts``, ``/v1/rules``).
    """
    directory = identity.Directory.of(settings.api.groups)
    tokens = api_auth.TokenBook(
        {name: token.get_secret_value() for name, token in settings.api.tokens.items()}
    )

    def refused(reason: str) -> None:
        del reason
        metrics.unauthenticated_requests.labels(route="operator").inc()

    steer = steering.Steering(client, timeout=settings.api.timeout)
    authenticate = api_auth.authenticator(tokens=tokens, directory=directory, on_refused=refused)
    operator = operator_api.build_router(steer=steer, authenticate=authenticate, metrics=metrics)
    reads = reads_api.build_router(
        client=client,
        links_to=links.Links(
            ui_url=settings.temporal.effective_web_ui_url or "",
            namespace=settings.temporal.namespace,
        ),
        authenticate=authenticate,
    )
    slack = slack_api.build_router(
        config=slack_api.SlackInteractions(
            signing_secret=settings_module.reveal(settings.slack.signing_secret),
            approvers=frozenset(settings.slack.approvers),
        ),
        steer=steer,
        directory=directory,
        metrics=metrics,
    )
    routers = [operator, reads, slack]
    if ingest is not None:
        live = ingest

        def polls() -> Mapping[str, prometheus.PollHealth]:
            return live.poller.health() if live.poller is not None else {}

        routers.append(
            live_rules_api.build_router(
                engine=lambda: live.engine, polls=polls, authenticate=authenticate
            )
        )
    return routers
