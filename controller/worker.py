"""The Temporal worker: every workflow and activity of Homeostat on one task queue.

A composition root: it reads settings and turns them into the plain ``ActivitiesConfig``
the activities are built from, so workflow and activity modules never read settings.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

from temporalio import client as temporal_client
from temporalio import worker as temporal_worker

from controller import activities, workflows
from controller import settings as settings_module
from controller.activities import redaction
from controller.plans import spec
from controller.workflows import converter

GRACEFUL_SHUTDOWN = timedelta(seconds=10)
"""Time a running playbook gets on shutdown to report its progress for the retry."""


def activities_config(settings: settings_module.Settings) -> activities.ActivitiesConfig:
    """The activities' configuration, as plain values, from ``settings``."""
    paging, ticketing, cmdb = settings.paging, settings.ticketing, settings.cmdb
    temporal = settings.temporal
    ui_url = temporal.effective_web_ui_url
    return activities.ActivitiesConfig(
        # Absolute: ansible-runner runs ansible-playbook from the playbooks folder, where a
        # relative inventory or run directory would name another place.
        remediations_dir=settings.rules.remediations_dir.resolve(),
        playbooks_dir=settings.rules.playbooks_dir.resolve(),
        state_dir=settings.activities.state_dir.resolve(),
        ansible=activities.AnsibleConfig(
            inventory=settings.ansible.inventory.resolve() if settings.ansible.inventory else None,
            batch_size=settings.ansible.batch_size,
            forks=settings.ansible.forks,
            parallel_runs=settings.ansible.parallel_runs,
            python_interpreter=settings.ansible.python_interpreter,
        ),
        pagerduty=activities.PagerDutyConfig(
            events_url=paging.events_url,
            routing_key=settings_module.reveal(paging.routing_key) or "",
            routing_keys={
                name: key.get_secret_value() for name, key in paging.routing_keys.items()
            },
            ca_file=paging.ca_file,
        )
        if paging.routing_key is not None
        else None,
        jira=activities.JiraConfig(
            url=ticketing.url,
            flavor=activities.JiraFlavor(ticketing.flavor),
            user=ticketing.user or "",
            token=settings_module.reveal(ticketing.token) or "",
            project=ticketing.project,
            ca_file=ticketing.ca_file,
        )
        if ticketing.url is not None
        else None,
        cmdb=activities.CmdbConfig(
            url=cmdb.url,
            token=settings_module.reveal(cmdb.token) or "",
            scheme=cmdb.scheme,
            page_size=cmdb.page_size,
            cache_ttl=cmdb.cache_ttl,
            max_stale=cmdb.max_stale,
        )
        if cmdb.url is not None
        else None,
        prometheus=activities.PrometheusConfig(
            url=settings.prometheus.url, timeout=settings.prometheus.query_timeout
        )
        if settings.prometheus.url is not None
        else None,
        commands=activities.CommandsConfig(
            inherit_env=tuple(settings.activities.command_env),
            secret_env={
                name: value.get_secret_value()
                for name, value in settings.activities.command_secret_env.items()
            },
        ),
        credentials={
            name: activities.HttpCredential(
                bearer_token=settings_module.reveal(credential.bearer_token) or "",
                username=credential.username,
                password=settings_module.reveal(credential.password) or "",
                headers={
                    key: value.get_secret_value() for key, value in credential.headers.items()
                },
                params={key: value.get_secret_value() for key, value in credential.params.items()},
            )
            for name, credential in settings.activities.credentials.items()
        },
        http_timeout=settings.activities.http_timeout,
        links=activities.LinksConfig(temporal_ui_url=ui_url or "", namespace=temporal.namespace),
        slack=activities.SlackConfig(
            bot_token=settings_module.reveal(settings.slack.bot_token) or "",
            api_url=settings.slack.api_url,
            ca_file=settings.slack.ca_file,
        )
        if settings.slack.bot_token is not None
        else None,
    )


def registered_workflows() -> Sequence[type]:
    """The workflow classes this worker runs."""
    return list(workflows.WORKFLOWS)


def secret_mask(settings: settings_module.Settings) -> Callable[[str], str]:
    """What masks every configured secret, in every form it is sent, in a text (logs).

    The activities' credentials, and the secrets that authenticate requests to Homeostat
    and its own connections: webhook tokens and HMAC secrets, operator tokens, Slack's
    signing secret, Temporal's API key, Kafka's SASL password.
    """
    own = [
        settings.alertmanager.bearer_token,
        settings.alertmanager.hmac_secret,
        settings.webhooks.bearer_token,
        settings.webhooks.hmac_secret,
        settings.webhooks.gitlab_token,
        settings.slack.signing_secret,
        settings.temporal.api_key,
        settings.kafka.sasl_password,
        *settings.api.tokens.values(),
    ]
    texts = [text for secret in own if (text := settings_module.reveal(secret))]
    known = activities_config(settings).secrets()
    return redaction.Redactor([*known, *texts]).known


def build(
    client: temporal_client.Client,
    settings: settings_module.Settings,
    *,
    plans_in_force: Callable[[], Mapping[str, spec.Plan]] | None = None,
) -> temporal_worker.Worker:
    """A worker for Homeostat's task queue; run it with ``async with`` or ``run()``.

    Every activity's result and failure passes the masking interceptor (no configured
    secret leaves the worker, in any form). Blocking activities (playbooks, commands) run
    on a bounded thread pool of ``activities.threads``; the worker takes no more
    activities than it has threads. ``plans_in_force`` gives the plans of the rule set
    ingest loaded (``homeostat up``).
    """
    threads = settings.activities.threads
    converter.warm_up()
    config = activities_config(settings)
    return temporal_worker.Worker(
        client,
        task_queue=settings.temporal.task_queue,
        workflows=registered_workflows(),
        workflow_runner=workflows.sandbox_runner(),
        activities=activities.build(config, plans_in_force=plans_in_force),
        interceptors=[activities.interceptor(config)],
        activity_executor=concurrent.futures.ThreadPoolExecutor(
            max_workers=threads, thread_name_prefix="activity"
        ),
        max_concurrent_activities=threads,
        max_cached_workflows=settings.temporal.max_cached_workflows,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )
