"""The ingest side of a running Homeostat, from settings: engine to dispatcher.

``Ingest`` owns the long-running parts (Kafka consumer thread, Prometheus poller, engine
ticker, rule-file watcher) and stops them in order.
"""

from __future__ import annotations

import asyncio
import functools
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
from controller.assembly import preflight, values
from controller.domain import durations, observations, transitions
from controller.ingest import assignment as assignment_module
from controller.ingest import (
    forwarding,
    kafka,
    pipeline,
    prometheus,
    seeding,
    supervision,
    webhooks,
)
from controller.observability import metrics as metrics_module
from controller.operations import open_episodes
from controller.plans import bundle
from controller.plans import spec as plans_spec
from controller.plans import watcher as watcher_module
from controller.rules import engine as engine_module
from controller.rules import model as rules_model

log = structlog.get_logger(__name__)

TICK_INTERVAL = timedelta(seconds=1)
_REBUILD_MARGIN = timedelta(minutes=1)


def utc_now() -> datetime:
    """The wall clock, timezone-aware UTC: the only clock ingest reads."""
    return datetime.now(UTC)


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
    seeder: seeding.Seeder | None = None
    """Seeds the engine with the open episodes of webhook rules (``webhooks.mode: direct``)."""
    rebuild_seeder: seeding.RebuildSeeder | None = None
    """Tells the engine the open episodes before Kafka partitions are rebuilt."""

    async def seed_problem(self) -> str | None:
        """Why events wait for the open episodes to be read (a readiness check)."""
        problems = [
            seeder.problem
            for seeder in (self.seeder, self.rebuild_seeder)
            if seeder is not None and seeder.problem is not None
        ]
        return "; ".join(problems) or None

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
        """Start the seeder, ticker, watcher, Prometheus poller and Kafka consumer."""
        if self.seeder is not None:
            self._tasks.append(asyncio.create_task(self.seeder.run(), name="episode seeder"))
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
        forwarded = self._forwarded_topic()
        if forwarded:
            await asyncio.to_thread(
                forwarding.ensure_topic,
                bootstrap_servers=self.settings.kafka.bootstrap_servers,
                topic=forwarded,
                partitions=self.settings.webhooks.topic_partitions,
                client_options=values.kafka_client_options(self.settings.kafka),
            )
        self._follow_topics()

    def _forwarded_topic(self) -> str | None:
        return self.settings.webhooks.topic if self.forwarder is not None else None

    def _follow_topics(self) -> None:
        """Read the topics the rules in force name: start the consumer, or resubscribe it."""
        forwarded = self._forwarded_topic()
        extra = [*self.settings.kafka.topics, *([forwarded] if forwarded else [])]
        topics = kafka_topics(self.engine.rule_set, extra)
        if self._kafka_source is not None:
            self._kafka_source.subscribe(topics)
            return
        sources = kafka_sources(self.settings)
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
                    client_options=values.kafka_client_options(self.settings.kafka),
                ),
                pipe=self.pipe,
                loop=asyncio.get_running_loop(),
                clock=self.clock,
                metrics=self.metrics,
                prepare=self.rebuild_seeder.expect if self.rebuild_seeder is not None else None,
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
            values.rule_sources(self.settings),
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
            self._follow_topics()
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
    loaded = values.load_rules(settings)
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
        on_seed=seeding.decided_reporter(metrics.seeded_episodes),
    )
    metrics.watch_engine(engine)
    seeder = None
    if settings.webhooks.mode is settings_module.WebhooksMode.DIRECT:
        # Webhook and GitLab rules have nothing to rebuild from: their open episodes are
        # read back from Temporal (in kafka mode, the forwarded topic is re-read instead).
        seeder = seeding.Seeder(
            read=functools.partial(open_episodes.read, client),
            engine=engine,
            clock=clock,
            counter=metrics.seeded_episodes,
        )
    rebuild_seeder = None
    polled = polled_rules(rule_set, settings.prometheus.evaluation_interval)
    if settings.kafka.bootstrap_servers or (settings.prometheus.url is not None and polled):
        # A rebuild re-reads only a window of the past: older open episodes come from Temporal.
        rebuild_seeder = seeding.RebuildSeeder(
            read=functools.partial(open_episodes.read, client),
            engine=engine,
            sources=kafka_sources(settings),
            counter=metrics.seeded_episodes,
        )
    dispatcher = dispatch.Dispatcher(
        values.temporal_sender(
            client, settings.temporal.task_queue, options=values.resource_options(settings)
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
        limits=values.admission_limits(settings),
        hold=seeder.hold if seeder is not None else None,
    )
    forwarder = webhook_forwarder(settings, engine)
    router = webhooks.build_router(
        config=values.webhook_config(settings),
        pipe=pipe,
        clock=clock,
        metrics=metrics,
        forward=forwarder.forward if forwarder is not None else None,
    )
    poller = None
    ownership = rule_group_assignment(settings)
    if settings.prometheus.url is not None and polled:
        poller = prometheus.PrometheusPoller(
            rules=polled,
            querier=values.querier(settings),
            engine=engine,
            pipe=pipe,
            clock=clock,
            metrics=metrics,
            ownership=ownership,
            forget=engine.forget,
            rebuild_lookback=settings.prometheus.rebuild_window,
            prepare=rebuild_seeder.take_over if rebuild_seeder is not None else None,
        )
    log.info("rules_loaded", revision=str(rule_set.revision), rules=len(rule_set.rules))
    preflight.warn_at_start(settings, loaded)
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
        seeder=seeder,
        rebuild_seeder=rebuild_seeder,
    )


def kafka_sources(settings: settings_module.Settings) -> frozenset[observations.SourceKind]:
    """The sources Kafka partitions carry: Kafka events, and webhooks when forwarded."""
    kafka = frozenset({observations.SourceKind.KAFKA})
    if settings.webhooks.mode is settings_module.WebhooksMode.KAFKA:
        return kafka | seeding.SOURCES  # the webhook sources, forwarded
    return kafka


def webhook_forwarder(
    settings: settings_module.Settings, engine: engine_module.Engine
) -> forwarding.Forwarder | None:
    """The Kafka producer of forwarded webhook events, in ``webhooks.mode: kafka``.

    Raises:
        errors.ConfigError: forwarding through Kafka without Kafka brokers.
    """
    if settings.webhooks.mode is not settings_module.WebhooksMode.KAFKA:
        return None
    if not settings.kafka.bootstrap_servers:
        raise errors.ConfigError("webhooks.mode: 'kafka' needs kafka.bootstrap_servers")
    return forwarding.Forwarder(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        topic=settings.webhooks.topic,
        key_of=engine.route_key,
        client_options=values.kafka_client_options(settings.kafka),
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
    if prom.coordination is not settings_module.Coordination.KAFKA:
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
            client_options=values.kafka_client_options(settings.kafka),
        )
    )
