"""Every side effect of Homeostat, as Temporal activities named in ``activity_io``.

``build(config)`` makes the clients from plain configuration values and returns the
activity callables to register on a worker. Sync activities (playbooks, commands,
scaling, paging, inventory, plans) run on the worker's ``activity_executor`` thread pool;
the rest (HTTP, verification, ticketing) are async.

Modules, one concern each: ``ansible`` (run_playbook; ``ansible_runs`` is one
ansible-runner invocation), ``inventory`` and ``cmdb`` (fetch_inventory), ``plans``
(load_plan), ``episodes`` (start_episode), ``paging`` (PagerDuty), ``ticketing`` and
``jira``, ``commands``, ``rest`` (http_call), ``scaling`` (scale actuators), ``verify``
(PromQL, CEL, query_metric), ``slack`` (approval messages);
``failures`` (errors to Temporal), ``processes`` (children that die with the worker),
``redaction`` (secrets out of output), ``masking`` (the worker interceptor that masks
every result and failure), ``rundirs`` (where runs keep files).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx

from controller.activities import (
    ansible,
    cmdb,
    commands,
    episodes,
    inventory,
    jira,
    masking,
    paging,
    plans,
    redaction,
    rest,
    scaling,
    slack,
    ticketing,
    verify,
)
from controller.activities.config import (
    ActivitiesConfig,
    AnsibleConfig,
    CmdbConfig,
    CommandsConfig,
    HttpCredential,
    JiraConfig,
    JiraFlavor,
    LinksConfig,
    PagerDutyConfig,
    PrometheusConfig,
    SlackConfig,
)
from controller.ingest import promql
from controller.plans import spec

__all__ = [
    "SYNC_ACTIVITY_THREADS",
    "ActivitiesConfig",
    "AnsibleConfig",
    "CmdbConfig",
    "CommandsConfig",
    "HttpCredential",
    "JiraConfig",
    "JiraFlavor",
    "LinksConfig",
    "PagerDutyConfig",
    "PrometheusConfig",
    "SlackConfig",
    "build",
    "interceptor",
    "redactor",
]

SYNC_ACTIVITY_THREADS = 32
"""A sensible ``max_workers`` of the worker's activity thread pool: at least the number of
sync activities that may run at once (``max_concurrent_activities`` if that is lower)."""


def redactor(config: ActivitiesConfig) -> redaction.Redactor:
    """What masks the configured secrets (in all their forms) in captured output and logs."""
    return redaction.Redactor(config.secrets())


def interceptor(config: ActivitiesConfig) -> masking.Interceptor:
    """The worker interceptor masking every activity's result and failure."""
    return masking.Interceptor(
        masking.Boundary(redaction.Redactor(config.secrets(), minimum=masking.MINIMUM))
    )


def build(
    config: ActivitiesConfig, *, plans_in_force: Callable[[], Mapping[str, spec.Plan]] | None = None
) -> list[Callable[..., Any]]:
    """Every activity of ``activity_io.ALL``, with clients built from ``config``.

    Args:
        config: clients and folders.
        plans_in_force: the plans of the rule set ingest loaded, when the worker runs beside
            it; otherwise plans are read from ``config.remediations_dir`` at run time.
    """
    redactor = redaction.Redactor(config.secrets())
    cmdb_client = cmdb.Client(config.cmdb) if config.cmdb is not None else None
    hosts = inventory.Inventory(
        cmdb_client=cmdb_client, static=config.ansible.inventory, env=config.ansible.env
    )
    playbooks = ansible.PlaybookActivities(
        playbooks_dir=config.playbooks_dir,
        state_dir=config.state_dir,
        settings=config.ansible,
        hosts=hosts,
        redactor=redactor,
    )
    runner = commands.CommandRunner(
        settings=config.commands, state_dir=config.state_dir, redactor=redactor
    )
    requests = rest.Requests(credentials=config.credentials, redactor=redactor)
    timeout = config.http_timeout.total_seconds()
    async_http = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
    sync_http = httpx.Client(timeout=timeout, follow_redirects=False)
    prometheus = (
        promql.Client(
            config.prometheus.url,
            timeout=config.prometheus.timeout,
            headers=dict(config.prometheus.headers),
        )
        if config.prometheus is not None
        else None
    )
    tickets = jira.Client(config.jira) if config.jira is not None else None
    scale = scaling.ScaleActivities(
        playbooks=playbooks, runner=runner, requests=requests, client=sync_http
    )
    page = paging.PagingActivities(settings=config.pagerduty, links=config.links)
    ticket = ticketing.TicketingActivities(
        system=tickets,
        default_project=config.jira.project if config.jira is not None else "",
        links=config.links,
    )
    check = verify.VerifyActivities(prometheus=prometheus, requests=requests, client=async_http)
    chat = slack.SlackActivities(settings=config.slack, links=config.links)
    return [
        plans.PlanActivities(
            remediations_dir=config.remediations_dir, current=plans_in_force
        ).load_plan,
        episodes.start_episode,
        inventory.InventoryActivities(hosts=hosts).fetch_inventory,
        playbooks.run_playbook,
        scale.scale_read,
        scale.scale,
        check.query_metric,
        commands.CommandActivities(runner=runner).run_command,
        rest.HttpActivities(requests=requests, client=async_http).http_call,
        page.page_trigger,
        page.page_resolve,
        ticket.ticket_create,
        ticket.ticket_comment,
        ticket.ticket_resolve,
        check.verify_promql,
        check.verify_cel,
        chat.slack_post_approval,
        chat.slack_update_approval,
        chat.slack_notify,
    ]
