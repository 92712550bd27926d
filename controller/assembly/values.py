"""Settings turned into the plain values each layer takes: credentials, limits, clients.

A composition root: only here (and in ``service`` and ``worker``) are settings read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio import client as temporal_client

from controller import dispatch, errors
from controller import settings as settings_module
from controller.domain import resources, transitions
from controller.ingest import (
    admission,
    auth,
    prometheus,
    promql,
    webhooks,
)
from controller.plans import bundle
from controller.workflows import resource_io


def rule_sources(settings: settings_module.Settings) -> bundle.Sources:
    """The folders of the rule set in force: rules, plans and playbooks."""
    return bundle.Sources(
        rules=(settings.rules.rules_dir,),
        remediations=settings.rules.remediations_dir,
        playbooks=settings.rules.playbooks_dir,
    )


def load_rules(settings: settings_module.Settings) -> bundle.Bundle:
    """Load rules, plans and playbooks at start, checked as ``homeostat rules lint`` does.

    Raises:
        errors.ConfigError: the set has problems; the message lists each one as
            ``file:line:column: message``.
    """
    try:
        return bundle.load(rule_sources(settings))
    except bundle.SetError as exc:
        listing = "\n".join(str(problem) for problem in exc.problems)
        raise errors.ConfigError(f"the rule files have problems:\n{listing}") from None


def webhook_config(settings: settings_module.Settings) -> webhooks.WebhookConfig:
    """Credentials and limits of the webhook endpoints."""
    return webhooks.WebhookConfig(
        alertmanager=auth.Credentials(
            bearer_token=settings_module.reveal(settings.alertmanager.bearer_token),
            hmac_secret=settings_module.reveal(settings.alertmanager.hmac_secret),
            tolerance=settings.http.signature_tolerance,
        ),
        events=auth.Credentials(
            bearer_token=settings_module.reveal(settings.webhooks.bearer_token),
            hmac_secret=settings_module.reveal(settings.webhooks.hmac_secret),
            tolerance=settings.http.signature_tolerance,
        ),
        gitlab_token=settings_module.reveal(settings.webhooks.gitlab_token),
        dispatch_deadline=settings.dispatch.webhook_deadline,
        timestamp_field=settings.kafka.timestamp_field,
        alertmanager_max_body=settings.alertmanager.max_body_size,
        events_max_body=settings.webhooks.max_body_size,
        gitlab_max_body=settings.webhooks.gitlab_max_body_size,
        max_events=settings.webhooks.max_events,
        max_body_memory=settings.http.max_body_memory,
    )


def admission_limits(settings: settings_module.Settings) -> admission.Limits:
    """What may enter the rules engine."""
    return admission.Limits(max_clock_skew=settings.ingest.max_clock_skew)


def kafka_client_options(kafka_settings: settings_module.KafkaSettings) -> dict[str, Any]:
    """kafka-python connection options: security protocol, SASL and TLS, as configured."""
    options: dict[str, Any] = {"security_protocol": kafka_settings.security_protocol.value}
    if kafka_settings.sasl_mechanism is not None:
        options["sasl_mechanism"] = kafka_settings.sasl_mechanism.value
        options["sasl_plain_username"] = kafka_settings.sasl_username
        options["sasl_plain_password"] = settings_module.reveal(kafka_settings.sasl_password)
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        path = getattr(kafka_settings, name)
        if path is not None:
            options[name] = str(path)
    return options


def resource_options(settings: settings_module.Settings) -> resource_io.ResourceOptions:
    """The tunables a resource workflow starts with (carried across continue-as-new)."""
    return resource_io.ResourceOptions(
        load_plan_timeout=settings.activities.load_plan_timeout,
        on_resolve_timeout=settings.activities.on_resolve_timeout,
    )


def _batch(batch: Sequence[transitions.Transition]) -> transitions.TransitionBatch:
    return transitions.TransitionBatch(transitions=tuple(batch))


def temporal_sender(
    client: temporal_client.Client,
    task_queue: str,
    *,
    options: resource_io.ResourceOptions | None = None,
) -> dispatch.TemporalSender:
    """Signal-with-start of ResourceWorkflow with a transition batch: the one hand-off.

    A resource workflow that does not run yet starts with ``options`` (default: the
    defaults); one that runs keeps the options it started with.
    """
    chosen = options or resource_io.ResourceOptions()

    def start_input(resource: resources.ResourceKey) -> resource_io.ResourceWorkflowInput:
        return resource_io.ResourceWorkflowInput(resource=resource, options=chosen)

    return dispatch.TemporalSender(
        client, task_queue=task_queue, start_input=start_input, signal_arg=_batch
    )


def querier(settings: settings_module.Settings) -> prometheus.Querier:
    """The Prometheus client the poller queries.

    Raises:
        errors.ConfigError: no ``prometheus.url`` is set.
    """
    url = settings.prometheus.url
    if url is None:
        raise errors.ConfigError("prometheus.url: needed by the Prometheus rules")
    return promql.Client(url, timeout=settings.prometheus.query_timeout)
