"""Build the ingest side of a running Homeostat from settings: engine to dispatcher.

A composition root beside ``service``: it reads settings and turns them into the plain
values each layer takes. ``Ingest`` owns the long-running parts (Kafka consumer thread,
Prometheus poller, engine ticker, rule-file watcher) and stops them in order.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import fastapi
import structlog
from temporalio import client as temporal_client

from controller import dispatch, errors
from controller import settings as settings_module
from controller.api import auth as api_auth
from controller.api import live_rules as live_rules_api
from controller.api import operator as operator_api
from controller.api import reads as reads_api
from controller.api import slack as slack_api
from controller.domain import durations, observations, resources, transitions
from controller.ingest import (
    admission,
    auth,
    forwarding,
    kafka,
    pipeline,
    prometheus,
    promql,
    supervision,
    webhooks,
)
from controller.ingest import assignment as assignment_module
from controller.observability import metrics as metrics_module
from controller.operations import identity, links, steering
from controller.plans import bundle
from controller.plans import needs as plan_needs
from controller.plans import spec as plans_spec
from controller.plans import watcher as watcher_module
from controller.rules import engine as engine_module
from controller.rules import model as rules_model
from controller.workflows import resource_io

log = structlog.get_logger(__name__)

TICK_INTERVAL = timedelta(seconds=1)
_REBUILD_MARGIN = timedelta(minutes=1)


def utc_now() -> datetime:
    """The wall clock, timezone-aware UTC: the only clock ingest reads."""
    return datetime.now(UTC)


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


def kafka_topics(rule_set: rules_model.RuleSet, extra: Sequence[str]) -> tuple[str, ...]:
    """Topics the Kafka rules read (their ``stream``), plus configured extras."""
    named = {
        rule.stream
        for rule in rule_set.rules.values()
        if rule.source is observations.SourceKind.KAFKA and rule.stream
    }
    return tuple(sorted(named | set(extra)))


def rebuild_window(
    rule_set: rules_model.RuleSet,
    sources: frozenset[observations.SourceKind] = frozenset({observations.SourceKind.KAFKA}),
) -> timedelta:
    """The longest span of the past any rule read from Kafka depends on, plus a margin."""
    spans = [timedelta(0)]
    for rule in rule_set.rules.values():
        if rule.source not in sources:
            continue
        spans += [rule.stale_after, rule.hold + rule.keep_firing_for, rule.cooldown]
        if rule.correlation is not None:
            spans.append(rule.correlation.within + rule.hold)
        if rule.count is not None:
            spans.append(rule.count.within + rule.hold)
    return max(spans) + _REBUILD_MARGIN


def polled_rules(
    rule_set: rules_model.RuleSet, default_interval: timedelta
) -> list[prometheus.PolledRule]:
    """The Prometheus-family rules, with their group's interval."""
    found = []
    for group in rule_set.groups:
        interval = group.interval or default_interval
        found += [
            prometheus.PolledRule(
                name=rule.name,
                expr=rule.expr,
                interval=interval,
                lookback=rule.hold + rule.keep_firing_for,
                group=group.name,
            )
            for rule in group.rules
            if rule.family is rules_model.Family.PROMETHEUS and rule.expr
        ]
    return found


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
    options: dict[str, Any] = {"security_protocol": kafka_settings.security_protocol}
    if kafka_settings.sasl_mechanism:
        options["sasl_mechanism"] = kafka_settings.sasl_mechanism
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


@dataclass
class Ingest:
    """Everything between the sources and Temporal, and the tasks that keep it running."""

    settings: settings_module.Settings
    rules: bundle.Bundle
    """The rule set in force: rules, plans and playbooks, one revision."""
    engine: engine_module.Engine
    dispatcher: dispatch.Dispatcher
    pipe: pipeline.Pipeline
    router: fastapi.APIRouter
    metrics: metrics_module.Metrics
    clock: Callable[[], datetime] = utc_now
    poller: prometheus.PrometheusPoller | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _kafka: tuple[threading.Thread, threading.Event] | None = None
    _kafka_source: kafka.KafkaSource | None = None
    assignment: assignment_module.KafkaAssignment | None = None
    forwarder: forwarding.Forwarder | None = None
    _assignment_thread: tuple[threading.Thread, threading.Event] | None = None
    rules_problem: str | None = None
    """Why the rule set on disk is not the one in force (``None`` when it is): /readyz."""

    async def dispatch_problem(self) -> str | None:
        """Why hand-offs to Temporal stall (a readiness check); ``None`` while they flow."""
        waited = self.dispatcher.oldest_pending()
        limit = self.settings.dispatch.stall_after
        if waited is None or waited <= limit:
            return None
        return (
            f"the oldest of {self.dispatcher.pending} pending transition(s) has waited "
            f"{durations.format_duration(waited)} for Temporal, more than dispatch.stall_after "
            f"({durations.format_duration(limit)})"
        )

    async def start(self) -> None:
        """Start the ticker, the watcher, the Prometheus poller and the Kafka consumer."""
        if self.assignment is not None:
            self._assignment_thread = assignment_module.start_thread(self.assignment)
        self._tasks.append(asyncio.create_task(self._tick(), name="engine ticker"))
        self._tasks.append(
            asyncio.create_task(
                supervision.supervise(
                    self._watch,
                    on_crash=self._watcher_crashed,
                    pause=self.settings.rules.reload_interval,
                ),
                name="rules watcher",
            )
        )
        if self.poller is not None:
            self._tasks.append(asyncio.create_task(self.poller.run(), name="prometheus poller"))
        forwarded = self.settings.webhooks.topic if self.forwarder is not None else None
        extra = [*self.settings.kafka.topics, *([forwarded] if forwarded else [])]
        topics = kafka_topics(self.engine.rule_set, extra)
        sources = frozenset({observations.SourceKind.KAFKA})
        if forwarded:
            sources |= {observations.SourceKind.WEBHOOK, observations.SourceKind.GITLAB}
            await asyncio.to_thread(
                forwarding.ensure_topic,
                bootstrap_servers=self.settings.kafka.bootstrap_servers,
                topic=forwarded,
                partitions=self.settings.webhooks.topic_partitions,
                client_options=kafka_client_options(self.settings.kafka),
            )
        if self.settings.kafka.bootstrap_servers and topics:
            source = kafka.KafkaSource(
                config=kafka.KafkaConfig(
                    bootstrap_servers=tuple(self.settings.kafka.bootstrap_servers),
                    topics=topics,
                    group_id=self.settings.kafka.group_id,
                    dead_letter_topic=self.settings.kafka.dead_letter_topic,
                    timestamp_field=self.settings.kafka.timestamp_field,
                    session_timeout=self.settings.kafka.session_timeout,
                    max_poll_interval=self.settings.kafka.max_poll_interval,
                    heartbeat_interval=self.settings.kafka.session_timeout / 3,
                    rebuild_window=self.settings.kafka.rebuild_window
                    or rebuild_window(self.engine.rule_set, sources),
                    forwarded_topic=forwarded,
                    limits=self.pipe.limits,
                    client_options=kafka_client_options(self.settings.kafka),
                ),
                pipe=self.pipe,
                loop=asyncio.get_running_loop(),
                clock=self.clock,
                metrics=self.metrics,
            )
            self._kafka_source = source
            self._kafka = kafka.start_thread(source)
            log.info("kafka_started", topics=list(topics))

    async def stop(self) -> None:
        """Stop consuming first, then the loops, then drain the dispatcher."""
        if self._kafka is not None:
            thread, stop = self._kafka
            stop.set()
            await asyncio.to_thread(thread.join, 30)
        for task in self._tasks:
            task.cancel()
        outcomes = await asyncio.gather(*self._tasks, return_exceptions=True)
        for task, outcome in zip(self._tasks, outcomes, strict=True):
            if isinstance(outcome, BaseException) and not isinstance(
                outcome, asyncio.CancelledError
            ):
                log.error("task_failed", task=task.get_name(), error=repr(outcome))
        if self._assignment_thread is not None:
            thread, stop = self._assignment_thread
            stop.set()  # leaving the consumer group hands the rule groups over at once
            await asyncio.to_thread(thread.join, 30)
        if self.forwarder is not None:
            await asyncio.to_thread(self.forwarder.close)
        await self.dispatcher.close()

    def tick_time(self) -> datetime | None:
        """How far event time may advance: the wall clock, held back by a Kafka backlog.

        Deadlines of event rules (``for``, staleness) are in event time; ticking with the
        wall clock while the consumer still reads old events would fire conditions the
        unread events contradict. ``None`` while Kafka has not been assigned yet.
        """
        now = self.clock()
        if self._kafka_source is None:
            return now
        watermark = self._kafka_source.watermark
        return None if watermark is None else min(now, watermark)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(TICK_INTERVAL.total_seconds())
            now = self.tick_time()
            if now is None:
                continue
            try:
                await self.pipe.tick(now)
            except dispatch.DispatchError as exc:
                log.exception("tick_dispatch_failed", error=str(exc))

    def _watcher_crashed(self, exc: BaseException) -> None:
        self.metrics.rule_reloads.labels(outcome="crash").inc()
        self.rules_problem = (
            f"the rules watcher failed ({type(exc).__name__}: {exc}); it retries every "
            f"{durations.format_duration(self.settings.rules.reload_interval)}"
        )
        log.error("rules_watcher_failed", error=repr(exc), exc_info=exc)

    def plans(self) -> Mapping[str, plans_spec.Plan]:
        """The plans of the set in force: what the worker runs, never a newer broken file."""
        return self.rules.plans

    async def _watch(self) -> None:
        watcher = watcher_module.Watcher(
            rule_sources(self.settings),
            current=self.rules,
            retry_after=self.settings.rules.retry_interval,
        )

        def reloaded(loaded: bundle.Bundle) -> None:
            rule_set = loaded.rule_set
            self.rules = loaded
            found = self.engine.replace_rules(rule_set)
            if self.poller is not None:
                self.poller.replace_rules(
                    polled_rules(rule_set, self.settings.prometheus.evaluation_interval)
                )
            self.metrics.rules_loaded.set(len(rule_set.rules))
            self.metrics.rule_reloads.labels(outcome="ok").inc()
            self.rules_problem = None
            log.info("rules_reloaded", revision=str(rule_set.revision), rules=len(rule_set.rules))
            if found:
                task = asyncio.create_task(self.pipe.send(found))
                self._tasks.append(task)

        def broken(problems: tuple[errors.RuleFileError, ...]) -> None:
            self.metrics.rule_reloads.labels(outcome="error").inc()
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            self.rules_problem = (
                f"the last reload failed: {problems[0]}{more}; "
                f"the rules of {self.engine.rule_set.revision} stay in force"
            )
            for problem in problems:
                log.error("rules_reload_failed", problem=str(problem))

        await watcher.run(
            interval=self.settings.rules.reload_interval,
            on_reload=reloaded,
            on_problems=broken,
            on_crash=self._watcher_crashed,
        )


def build_ingest(
    settings: settings_module.Settings,
    client: temporal_client.Client,
    metrics: metrics_module.Metrics,
    *,
    clock: Callable[[], datetime] = utc_now,
) -> Ingest:
    """Assemble engine, dispatcher, pipeline, webhooks and the Prometheus poller."""
    loaded = load_rules(settings)
    rule_set = loaded.rule_set
    metrics.rules_loaded.set(len(rule_set.rules))
    engine = engine_module.Engine(
        rule_set,
        clock=clock,
        on_drop=pipeline.drop_reporter(),
        bounds=transitions.Bounds(
            max_value_length=settings.ingest.max_value_length,
            max_labels=settings.ingest.max_labels,
        ),
    )
    metrics.watch_engine(engine)
    dispatcher = dispatch.Dispatcher(
        temporal_sender(
            client, settings.temporal.task_queue, options=resource_options(settings)
        ),
        metrics=metrics,
        max_in_flight=settings.dispatch.max_in_flight,
        max_pending=settings.dispatch.max_pending,
    )
    pipe = pipeline.Pipeline(
        engine=engine,
        dispatcher=dispatcher,
        metrics=metrics,
        clock=clock,
        limits=admission_limits(settings),
    )
    forwarder = webhook_forwarder(settings, engine)
    router = webhooks.build_router(
        config=webhook_config(settings),
        pipe=pipe,
        clock=clock,
        metrics=metrics,
        forward=forwarder.forward if forwarder is not None else None,
    )
    poller = None
    ownership = rule_group_assignment(settings)
    polled = polled_rules(rule_set, settings.prometheus.evaluation_interval)
    if settings.prometheus.url is not None and polled:
        poller = prometheus.PrometheusPoller(
            rules=polled,
            querier=_querier(settings),
            engine=engine,
            pipe=pipe,
            clock=clock,
            metrics=metrics,
            ownership=ownership,
            forget=engine.forget,
            rebuild_lookback=settings.prometheus.rebuild_window,
        )
    log.info("rules_loaded", revision=str(rule_set.revision), rules=len(rule_set.rules))
    warn_at_start(settings, loaded)
    return Ingest(
        settings=settings,
        rules=loaded,
        engine=engine,
        dispatcher=dispatcher,
        pipe=pipe,
        router=router,
        metrics=metrics,
        clock=clock,
        poller=poller,
        assignment=ownership if poller is not None else None,
        forwarder=forwarder,
    )


def webhook_forwarder(
    settings: settings_module.Settings, engine: engine_module.Engine
) -> forwarding.Forwarder | None:
    """The Kafka producer of forwarded webhook events, in ``webhooks.mode: kafka``.

    Raises:
        errors.ConfigError: forwarding through Kafka without Kafka brokers.
    """
    if settings.webhooks.mode != "kafka":
        return None
    if not settings.kafka.bootstrap_servers:
        raise errors.ConfigError("webhooks.mode: 'kafka' needs kafka.bootstrap_servers")
    return forwarding.Forwarder(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        topic=settings.webhooks.topic,
        key_of=engine.route_key,
        client_options=kafka_client_options(settings.kafka),
        timeout=settings.dispatch.webhook_deadline,
    )


def rule_group_assignment(
    settings: settings_module.Settings,
) -> assignment_module.KafkaAssignment | None:
    """The Kafka consumer group that assigns rule groups to replicas, when configured.

    Raises:
        errors.ConfigError: coordination through Kafka without Kafka brokers.
    """
    prom = settings.prometheus
    if prom.coordination != "kafka":
        return None
    if not settings.kafka.bootstrap_servers:
        raise errors.ConfigError("prometheus.coordination: 'kafka' needs kafka.bootstrap_servers")
    return assignment_module.KafkaAssignment(
        assignment_module.AssignmentConfig(
            bootstrap_servers=tuple(settings.kafka.bootstrap_servers),
            topic=prom.assignment_topic,
            group_id=prom.assignment_group,
            partitions=prom.assignment_partitions,
            replication_factor=prom.assignment_replication_factor,
            session_timeout=prom.assignment_session_timeout,
            client_options=kafka_client_options(settings.kafka),
        )
    )


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
    credentials = {
        observations.SourceKind.WEBHOOK: webhook_config(settings).events.configured,
        observations.SourceKind.GITLAB: settings.webhooks.gitlab_token is not None,
        observations.SourceKind.ALERTMANAGER: webhook_config(settings).alertmanager.configured,
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


def _querier(settings: settings_module.Settings) -> prometheus.Querier:
    url = settings.prometheus.url
    if url is None:
        raise errors.ConfigError("prometheus.url: needed by the Prometheus rules")
    return promql.Client(url, timeout=settings.prometheus.query_timeout)


def operator_routers(
    settings: settings_module.Settings,
    client: temporal_client.Client,
    metrics: metrics_module.Metrics,
    ingest: Ingest | None = None,
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
