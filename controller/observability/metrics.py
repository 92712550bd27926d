"""Prometheus metrics of one Homeostat process, on an injected registry.

Label values have bounded cardinality: source kinds, outcomes, rule and group names at
most; never a resource name. The one exception is ``homeostat_open_episode_start_time_seconds``,
whose series name open episodes' workflow ids so a dashboard can link each to its history;
it holds at most a configured number of series. No counter exports a ``*_created`` series.

Ingest code increments its metrics directly. Workflow code cannot (sandbox, replays): it
records through Temporal's replay-safe ``workflow.metric_meter()``, which the worker's
runtime routes here by metric name (``observability.temporal_metrics``). Temporal's own SDK
metrics (``temporal_*``) are served apart, by the SDK's runtime.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import prometheus_client
from prometheus_client import core as prometheus_core
from prometheus_client import registry as prometheus_registry

from controller import __version__

STEP_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
"""Seconds: steps range from an HTTP call to a playbook over many hosts."""
EPISODE_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
"""Seconds: episodes range from a quick fix to a day-long escalation."""
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class RuleCounts(Protocol):
    """Live counts of one rule (``rules.engine.RuleCounts`` fits)."""

    @property
    def rule(self) -> str:
        """The rule's name."""

    @property
    def evaluations(self) -> int:
        """Events, alerts or query results evaluated against the rule since start."""

    @property
    def pending(self) -> int:
        """Conditions true but not yet held for the rule's ``for``."""

    @property
    def firing(self) -> int:
        """Conditions firing."""


class EngineView(Protocol):
    """What the engine collector reads (``rules.engine.Engine`` fits)."""

    def rule_counts(self) -> Sequence[RuleCounts]:
        """Every rule's live counts."""

    @property
    def stats(self) -> Mapping[str, int]:
        """Observations the engine ignored, by reason."""

    @property
    def ignored_by_stream(self) -> Mapping[tuple[str, str], int]:
        """The same, by (stream, reason); streams no rule names count as ``other``."""


@dataclass(slots=True, eq=False)
class _EngineCollector:
    """Reads the rules engine at scrape time: its counters are plain ints on the hot path."""

    engine: EngineView | None = None

    def collect(self) -> Iterator[prometheus_core.Metric]:
        evaluations = prometheus_core.CounterMetricFamily(
            "homeostat_rule_evaluations",
            "Evaluations of each rule: events and alerts it was matched against, query results.",
            labels=["rule"],
        )
        conditions = prometheus_core.GaugeMetricFamily(
            "homeostat_conditions",
            "Conditions of each rule that are pending (within `for`) or firing.",
            labels=["rule", "state"],
        )
        ignored = prometheus_core.CounterMetricFamily(
            "homeostat_observations_ignored",
            "Observations the rules engine ignored, by reason (late, duplicate, invalid_resource).",
            labels=["reason"],
        )
        ignored_events = prometheus_core.CounterMetricFamily(
            "homeostat_events_ignored",
            "Events and alerts that no rule matched (no_rule) or that a rule's expressions could "
            "not evaluate (missing_field, wrong_type, error), and the other drops, by stream "
            "(streams no rule names count as 'other') and reason.",
            labels=["stream", "reason"],
        )
        if self.engine is not None:
            for counts in self.engine.rule_counts():
                evaluations.add_metric([counts.rule], counts.evaluations)
                conditions.add_metric([counts.rule, "pending"], counts.pending)
                conditions.add_metric([counts.rule, "firing"], counts.firing)
            for reason, count in sorted(self.engine.stats.items()):
                ignored.add_metric([reason], count)
            for (stream, reason), count in sorted(self.engine.ignored_by_stream.items()):
                ignored_events.add_metric([stream, reason], count)
        yield from (evaluations, conditions, ignored, ignored_events)

    def describe(self) -> Iterable[prometheus_core.Metric]:
        return []


@dataclass(frozen=True, slots=True, kw_only=True)
class Metrics:
    """Every metric Homeostat exports, registered on one registry."""

    registry: prometheus_client.CollectorRegistry
    build_info: prometheus_client.Gauge
    http_requests: prometheus_client.Counter
    unauthenticated_requests: prometheus_client.Counter
    http_connections_closed: prometheus_client.Counter
    observations: prometheus_client.Counter
    transitions: prometheus_client.Counter
    dispatch_calls: prometheus_client.Counter
    dispatch_seconds: prometheus_client.Histogram
    dead_letters: prometheus_client.Counter
    source_errors: prometheus_client.Counter
    rules_loaded: prometheus_client.Gauge
    rule_reloads: prometheus_client.Counter
    observations_refused: prometheus_client.Counter
    # Added with issue 13: ingest.
    http_request_seconds: prometheus_client.Histogram
    rule_evaluation_errors: prometheus_client.Counter
    kafka_lag: prometheus_client.Gauge
    rule_group_evaluations: prometheus_client.Counter
    rule_group_owned: prometheus_client.Gauge
    # Added with issue 13: the worker, from its workflows (through ``workflow.metric_meter``).
    episodes_started: prometheus_client.Counter
    episodes_ended: prometheus_client.Counter
    episode_seconds: prometheus_client.Histogram
    steps: prometheus_client.Counter
    step_seconds: prometheus_client.Histogram
    suppressions: prometheus_client.Counter
    approvals_requested: prometheus_client.Counter
    approvals_decided: prometheus_client.Counter
    pages: prometheus_client.Counter
    tickets: prometheus_client.Counter
    playbook_hosts: prometheus_client.Counter
    # Added with issue 13: the worker, from Temporal's visibility.
    resources: prometheus_client.Gauge
    approvals_pending: prometheus_client.Gauge
    open_episodes: prometheus_client.Gauge
    operator_actions: prometheus_client.Counter
    # Added with issue 9: the rules engine seeded from Temporal at start.
    seeded_episodes: prometheus_client.Counter
    engine: _EngineCollector = field(default_factory=_EngineCollector)

    def watch_engine(self, engine: EngineView) -> None:
        """Export ``engine``'s rule evaluations, pending and firing conditions, ignored input."""
        self.engine.engine = engine

    def by_name(self) -> dict[str, prometheus_registry.Collector]:
        """The metrics workflows record through Temporal's metric meter, by their name."""
        found: dict[str, prometheus_registry.Collector] = {}
        for metric in (
            self.episodes_started,
            self.episodes_ended,
            self.episode_seconds,
            self.steps,
            self.step_seconds,
            self.suppressions,
            self.approvals_requested,
            self.approvals_decided,
            self.pages,
            self.tickets,
            self.playbook_hosts,
        ):
            found[metric._name] = metric  # noqa: SLF001 - prometheus_client keeps no public name
        return found


def _counter(
    reg: prometheus_client.CollectorRegistry, name: str, doc: str, labels: list[str]
) -> prometheus_client.Counter:
    return prometheus_client.Counter(name, doc, labels, registry=reg)


def create(registry: prometheus_client.CollectorRegistry | None = None) -> Metrics:
    """Create and register Homeostat's metrics on ``registry`` (a fresh one by default)."""
    # Counters and histograms would each also export a ``*_created`` series: noise that
    # doubles the series count and that no dashboard or alert reads.
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    reg = registry if registry is not None else prometheus_client.CollectorRegistry()
    metrics = Metrics(
        registry=reg,
        build_info=prometheus_client.Gauge(
            "homeostat_build_info", "Version of this Homeostat process.", ["version"], registry=reg
        ),
        http_requests=_counter(
            reg,
            "homeostat_http_requests",
            "HTTP requests by route and status class.",
            ["route", "status"],
        ),
        unauthenticated_requests=_counter(
            reg,
            "homeostat_unauthenticated_requests",
            "Webhook requests rejected by authentication.",
            ["route"],
        ),
        http_connections_closed=_counter(
            reg,
            "homeostat_http_connections_closed",
            "HTTP connections the server closed on its own, by reason: header_timeout, "
            "body_timeout, too_many_connections.",
            ["reason"],
        ),
        observations=_counter(
            reg, "homeostat_observations", "Observations handed to the rules engine.", ["source"]
        ),
        transitions=_counter(
            reg,
            "homeostat_transitions",
            "Transitions produced by the rules engine, by rule and kind (fired, resolved).",
            ["rule", "kind"],
        ),
        dispatch_calls=_counter(
            reg, "homeostat_dispatch_calls", "Signal-with-start calls by outcome.", ["outcome"]
        ),
        dispatch_seconds=prometheus_client.Histogram(
            "homeostat_dispatch_seconds", "Duration of one signal-with-start call.", registry=reg
        ),
        dead_letters=_counter(
            reg, "homeostat_dead_letters", "Messages sent to the dead-letter topic.", ["topic"]
        ),
        source_errors=_counter(
            reg,
            "homeostat_source_errors",
            "Failed reads from a source (query, poll, parse).",
            ["source"],
        ),
        rules_loaded=prometheus_client.Gauge(
            "homeostat_rules_loaded", "Rules in the active rule set.", registry=reg
        ),
        rule_reloads=_counter(
            reg, "homeostat_rule_reloads", "Rule-set reloads by outcome.", ["outcome"]
        ),
        http_request_seconds=prometheus_client.Histogram(
            "homeostat_http_request_duration_seconds",
            "Webhook request duration, by route and HTTP status code.",
            ["route", "code"],
            buckets=HTTP_BUCKETS,
            registry=reg,
        ),
        rule_evaluation_errors=_counter(
            reg,
            "homeostat_rule_evaluation_errors",
            "Evaluations of a Prometheus rule that failed (the query did not answer).",
            ["rule"],
        ),
        kafka_lag=prometheus_client.Gauge(
            "homeostat_kafka_consumer_lag",
            "Messages not read yet, per assigned topic partition (high watermark - position).",
            ["topic", "partition"],
            registry=reg,
        ),
        rule_group_evaluations=_counter(
            reg,
            "homeostat_rule_group_evaluations",
            "Evaluations of a Prometheus rule group by this process (one per evaluation time).",
            ["group"],
        ),
        rule_group_owned=prometheus_client.Gauge(
            "homeostat_rule_group_owned",
            "1 while this process evaluates the rule group, 0 while another replica does.",
            ["group"],
            registry=reg,
        ),
        episodes_started=_counter(
            reg,
            "homeostat_episodes_started",
            "Episodes a resource workflow opened, by rule.",
            ["rule"],
        ),
        episodes_ended=_counter(
            reg,
            "homeostat_episodes_ended",
            "Episodes closed, by rule and outcome (a remediation outcome, or why none ran).",
            ["rule", "outcome"],
        ),
        episode_seconds=prometheus_client.Histogram(
            "homeostat_episode_duration_seconds",
            "Time from an episode's start (its condition firing) to its close.",
            ["rule", "outcome"],
            buckets=EPISODE_BUCKETS,
            registry=reg,
        ),
        steps=_counter(
            reg,
            "homeostat_steps",
            "Remediation steps run, by step kind and outcome.",
            ["kind", "outcome"],
        ),
        step_seconds=prometheus_client.Histogram(
            "homeostat_step_duration_seconds",
            "Duration of one remediation step, by step kind and outcome.",
            ["kind", "outcome"],
            buckets=STEP_BUCKETS,
            registry=reg,
        ),
        suppressions=_counter(
            reg,
            "homeostat_suppressions",
            "Episodes not remediated, by reason (cooldown, budget, silence, pause, concurrency).",
            ["reason"],
        ),
        approvals_requested=_counter(
            reg, "homeostat_approvals_requested", "Approval steps that started waiting.", []
        ),
        approvals_decided=_counter(
            reg,
            "homeostat_approvals_decided",
            "Approval steps answered or expired, by decision and the channel it came through.",
            ["decision", "channel"],
        ),
        pages=_counter(
            reg,
            "homeostat_pages",
            "PagerDuty events sent, by action (trigger, resolve).",
            ["action"],
        ),
        tickets=_counter(
            reg,
            "homeostat_tickets",
            "Jira tickets acted on, by action (opened, updated, commented, resolved).",
            ["action"],
        ),
        playbook_hosts=_counter(
            reg,
            "homeostat_playbook_hosts",
            "Hosts a playbook step finished, by status (ok, changed, failed, unreachable).",
            ["status"],
        ),
        resources=prometheus_client.Gauge(
            "homeostat_resources",
            "Resource workflows running, by phase (from Temporal visibility).",
            ["phase"],
            registry=reg,
        ),
        approvals_pending=prometheus_client.Gauge(
            "homeostat_approvals_pending",
            "Resources whose remediation waits for an approval (from Temporal visibility).",
            registry=reg,
        ),
        open_episodes=prometheus_client.Gauge(
            "homeostat_open_episode_start_time_seconds",
            "Start time of each running remediation (the oldest ones, up to a limit), "
            "labelled with its workflow id for links to its history.",
            ["workflow_id", "rule", "severity"],
            registry=reg,
        ),
        observations_refused=_counter(
            reg,
            "homeostat_observations_refused",
            "Observations refused before the rules engine saw them (clock_skew, too_large), "
            "or that made it fail (error), by reason.",
            ["reason"],
        ),
        operator_actions=prometheus_client.Counter(
            "homeostat_operator_actions",
            "Operator requests (approve, deny, silence, pause, reset ...) by channel and "
            "outcome (ok, forbidden, refused, not_found, unauthenticated, bad_signature, "
            "stale, unlisted_user, malformed, error).",
            ["action", "channel", "outcome"],
            registry=reg,
        ),
        seeded_episodes=_counter(
            reg,
            "homeostat_seeded_episodes",
            "Open episodes read from Temporal when ingest started or before Kafka partitions "
            "or Prometheus rules were rebuilt, by outcome: seeded, replayed, unknown_rule, "
            "other_source, known, no_groups, unlisted (not seeded), error.",
            ["outcome"],
        ),
    )
    reg.register(metrics.engine)
    metrics.build_info.labels(version=__version__).set(1)
    return metrics
