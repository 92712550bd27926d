"""What start-up warns about: settings that would leave something quietly doing nothing.

No rule loaded; a webhook that rules read but that refuses every request; a plan that
needs paging, ticketing, Slack, an inventory or Prometheus where the settings provide none
(also listed by ``homeostat rules lint --config``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import structlog

from controller import settings as settings_module
from controller.assembly import values
from controller.domain import observations
from controller.plans import bundle
from controller.plans import needs as plan_needs
from controller.plans import spec as plans_spec

log = structlog.get_logger(__name__)

_ENDPOINTS = {
    observations.SourceKind.WEBHOOK: (
        "/v1/events",
        "webhooks.bearer_token or webhooks.hmac_secret",
    ),
    observations.SourceKind.GITLAB: ("/v1/gitlab", "webhooks.gitlab_token"),
    observations.SourceKind.ALERTMANAGER: (
        "/v1/alertmanager",
        "alertmanager.bearer_token or alertmanager.hmac_secret",
    ),
}


def warn_at_start(settings: settings_module.Settings, loaded: bundle.Bundle) -> None:
    """Warn at start about what would quietly do nothing.

    No rule loaded; a webhook that rules read but that refuses every request (no
    credentials); a plan that pages or opens tickets where paging or ticketing is not set up.
    """
    rule_set = loaded.rule_set
    if not rule_set.rules:
        log.warning(
            "no_rules_loaded",
            rules_dir=str(settings.rules.rules_dir),
            hint="nothing will fire; put rule files there or set rules.rules_dir",
        )
    endpoints = values.webhook_config(settings)
    credentials = {
        observations.SourceKind.WEBHOOK: endpoints.events.configured,
        observations.SourceKind.GITLAB: endpoints.gitlab_token is not None,
        observations.SourceKind.ALERTMANAGER: endpoints.alertmanager.configured,
    }
    for source, (endpoint, setting) in _ENDPOINTS.items():
        readers = sorted(name for name, rule in rule_set.rules.items() if rule.source is source)
        if readers and not credentials[source]:
            log.warning(
                "webhook_refuses_everything",
                endpoint=endpoint,
                rules=readers,
                hint=f"no credentials are configured: set {setting}",
            )
    for unmet in unmet_needs(settings, loaded.plans):
        log.warning(
            "plan_needs_unconfigured",
            plan=unmet.plan,
            need=unmet.need.value,
            steps=list(unmet.steps),
            hint=f"those steps will fail: set {unmet.setting}",
        )


_NEED_SETTINGS: dict[plan_needs.Need, str] = {
    plan_needs.Need.INVENTORY: "ansible.inventory or cmdb.url",
    plan_needs.Need.PAGING: "paging.routing_key",
    plan_needs.Need.TICKETING: "ticketing.url",
    plan_needs.Need.SLACK: "slack.bot_token",
    plan_needs.Need.PROMETHEUS: "prometheus.url",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class UnmetNeed:
    """A plan needs what the settings do not provide.

    Attributes:
        plan: the plan's name.
        need: what it needs.
        steps: the steps (and ladder rungs) that need it.
        setting: the setting that would provide it.
    """

    plan: str
    need: plan_needs.Need
    steps: tuple[str, ...]
    setting: str


def provided(settings: settings_module.Settings) -> set[plan_needs.Need]:
    """The needs the settings provide."""
    given = {
        plan_needs.Need.INVENTORY: settings.ansible.inventory is not None
        or settings.cmdb.url is not None,
        plan_needs.Need.PAGING: settings.paging.routing_key is not None
        or bool(settings.paging.routing_keys),
        plan_needs.Need.TICKETING: settings.ticketing.url is not None,
        plan_needs.Need.SLACK: settings.slack.bot_token is not None,
        plan_needs.Need.PROMETHEUS: settings.prometheus.url is not None,
    }
    return {need for need, ok in given.items() if ok}


def unmet_needs(
    settings: settings_module.Settings, plans: Mapping[str, plans_spec.Plan]
) -> list[UnmetNeed]:
    """What each plan needs and the settings do not provide, by plan name then need."""
    have = provided(settings)
    return [
        UnmetNeed(plan=name, need=need, steps=steps, setting=_NEED_SETTINGS[need])
        for name, plan in sorted(plans.items())
        for need, steps in sorted(plan_needs.of(plan).items())
        if need not in have
    ]
