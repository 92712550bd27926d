"""Prometheus metrics of one Homeostat process, on an injected registry.

Label values have bounded cardinality: source kinds, outcomes, rule names at most;
never a resource name or an episode id.
"""

from __future__ import annotations

from dataclasses import dataclass

import prometheus_client

from controller import __version__


@dataclass(frozen=True, slots=True, kw_only=True)
class Metrics:
    """Every metric Homeostat exports, registered on one registry."""

    registry: prometheus_client.CollectorRegistry
    build_info: prometheus_client.Gauge
    http_requests: prometheus_client.Counter
    unauthenticated_requests: prometheus_client.Counter
    observations: prometheus_client.Counter
    transitions: prometheus_client.Counter
    dispatch_calls: prometheus_client.Counter
    dispatch_seconds: prometheus_client.Histogram
    dead_letters: prometheus_client.Counter
    source_errors: prometheus_client.Counter
    rules_loaded: prometheus_client.Gauge
    rule_reloads: prometheus_client.Counter


def create(registry: prometheus_client.CollectorRegistry | None = None) -> Metrics:
    """Create and register Homeostat's metrics on ``registry`` (a fresh one by default)."""
    reg = registry if registry is not None else prometheus_client.CollectorRegistry()
    metrics = Metrics(
        registry=reg,
        build_info=prometheus_client.Gauge(
            "homeostat_build_info", "Version of this Homeostat process.", ["version"], registry=reg
        ),
        http_requests=prometheus_client.Counter(
            "homeostat_http_requests",
            "HTTP requests by route and status class.",
            ["route", "status"],
            registry=reg,
        ),
        unauthenticated_requests=prometheus_client.Counter(
            "homeostat_unauthenticated_requests",
            "Webhook requests rejected by authentication.",
            ["route"],
            registry=reg,
        ),
        observations=prometheus_client.Counter(
            "homeostat_observations",
            "Observations handed to the rules engine.",
            ["source"],
            registry=reg,
        ),
        transitions=prometheus_client.Counter(
            "homeostat_transitions",
            "Transitions produced by the rules engine.",
            ["kind"],
            registry=reg,
        ),
        dispatch_calls=prometheus_client.Counter(
            "homeostat_dispatch_calls",
            "Signal-with-start calls by outcome.",
            ["outcome"],
            registry=reg,
        ),
        dispatch_seconds=prometheus_client.Histogram(
            "homeostat_dispatch_seconds", "Duration of one signal-with-start call.", registry=reg
        ),
        dead_letters=prometheus_client.Counter(
            "homeostat_dead_letters",
            "Messages sent to the dead-letter topic.",
            ["topic"],
            registry=reg,
        ),
        source_errors=prometheus_client.Counter(
            "homeostat_source_errors",
            "Failed reads from a source (query, poll, parse).",
            ["source"],
            registry=reg,
        ),
        rules_loaded=prometheus_client.Gauge(
            "homeostat_rules_loaded", "Rules in the active rule set.", registry=reg
        ),
        rule_reloads=prometheus_client.Counter(
            "homeostat_rule_reloads", "Rule-set reloads by outcome.", ["outcome"], registry=reg
        ),
    )
    metrics.build_info.labels(version=__version__).set(1)
    return metrics
