"""Temporal's runtime telemetry: the SDK's metrics on their own endpoint, workflows' on ours.

Workflow code cannot touch ``prometheus_client``: it runs in a sandbox and is replayed.
It records through ``workflow.metric_meter()``, Temporal's replay-safe meter, which skips
recording while a workflow replays history. That meter wraps the worker runtime's
``metric_meter``; the runtime built here hands out ``PrometheusMeter``, which records into
Homeostat's own registry (``/metrics``) by metric name. So every ``homeostat_*`` metric, from
ingest or from a workflow, is on Homeostat's ``/metrics``, and the SDK's own metrics
(``temporal_*``: task latencies, slots, polls, sticky cache) are on the endpoint the SDK
serves at ``temporal.sdk_metrics_address``, with Prometheus conventions (``_total``,
``_seconds``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Self

import structlog
from prometheus_client import registry as prometheus_registry
from temporalio import common, runtime

log = structlog.get_logger(__name__)

Attributes = Mapping[str, str | int | float | bool]


class _Instrument:
    """One named metric with the attributes bound so far; records into ``target``."""

    def __init__(
        self,
        name: str,
        description: str | None,
        unit: str | None,
        target: Any,
        attributes: Attributes,
    ) -> None:
        self._name = name
        self._description = description
        self._unit = unit
        self._target = target
        self._attributes = attributes

    @property
    def name(self) -> str:
        """The metric's name."""
        return self._name

    @property
    def description(self) -> str | None:
        """The metric's description."""
        return self._description

    @property
    def unit(self) -> str | None:
        """The metric's unit."""
        return self._unit

    def with_additional_attributes(self, additional_attributes: Attributes) -> Self:
        """The same metric with more attributes bound."""
        return type(self)(
            self._name,
            self._description,
            self._unit,
            self._target,
            {**self._attributes, **additional_attributes},
        )

    def _child(self, extra: Attributes | None) -> Any:
        """The labelled child of the target, for the bound and ``extra`` attributes.

        Attributes the metric has no label for (the namespace, task queue and workflow type
        Temporal adds) are left out; a label no attribute names is empty.
        """
        if self._target is None:
            return None
        names = self._target._labelnames  # noqa: SLF001 - prometheus_client keeps no public list
        if not names:
            return self._target
        merged = {**self._attributes, **(extra or {})}
        return self._target.labels(*(str(merged.get(label, "")) for label in names))


class _Counter(_Instrument, common.MetricCounter):
    def add(self, value: int, additional_attributes: Attributes | None = None) -> None:
        if value < 0:
            raise ValueError("a counter only goes up")
        child = self._child(additional_attributes)
        if child is not None:
            child.inc(value)


class _Histogram(_Instrument, common.MetricHistogram):
    def record(self, value: int, additional_attributes: Attributes | None = None) -> None:
        child = self._child(additional_attributes)
        if child is not None:
            child.observe(value)


class _HistogramFloat(_Instrument, common.MetricHistogramFloat):
    def record(self, value: float, additional_attributes: Attributes | None = None) -> None:
        child = self._child(additional_attributes)
        if child is not None:
            child.observe(value)


class _HistogramTimedelta(_Instrument, common.MetricHistogramTimedelta):
    def record(self, value: timedelta, additional_attributes: Attributes | None = None) -> None:
        child = self._child(additional_attributes)
        if child is not None:
            child.observe(value.total_seconds())


class _Gauge(_Instrument, common.MetricGauge):
    def set(self, value: int, additional_attributes: Attributes | None = None) -> None:
        child = self._child(additional_attributes)
        if child is not None:
            child.set(value)


class _GaugeFloat(_Instrument, common.MetricGaugeFloat):
    def set(self, value: float, additional_attributes: Attributes | None = None) -> None:
        child = self._child(additional_attributes)
        if child is not None:
            child.set(value)


class PrometheusMeter(common.MetricMeter):
    """A Temporal metric meter that records into Homeostat's registry, by metric name.

    Only metrics declared in ``observability.metrics`` exist; a name not among them is
    logged once and recorded nowhere (a programming error, caught by the tests).
    """

    def __init__(
        self,
        known: Mapping[str, prometheus_registry.Collector],
        attributes: Attributes | None = None,
    ) -> None:
        """Record into ``known`` metrics, keyed by their name (without ``_total``)."""
        self._known = known
        self._attributes: Attributes = dict(attributes or {})
        self._unknown: set[str] = set()

    def _target(self, name: str) -> Any:
        target = self._known.get(name)
        if target is None and name not in self._unknown:
            self._unknown.add(name)
            log.warning("unknown_workflow_metric", metric=name)
        return target

    def create_counter(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> common.MetricCounter:
        """A counter recording into the registry's metric ``name``."""
        return _Counter(name, description, unit, self._target(name), self._attributes)

    def create_histogram(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> common.MetricHistogram:
        """An integer histogram recording into the registry's metric ``name``."""
        return _Histogram(name, description, unit, self._target(name), self._attributes)

    def create_histogram_float(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> common.MetricHistogramFloat:
        """A float histogram recording into the registry's metric ``name``."""
        return _HistogramFloat(name, description, unit, self._target(name), self._attributes)

    def create_histogram_timedelta(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> common.MetricHistogramTimedelta:
        """A duration histogram recording seconds into the registry's metric ``name``."""
        return _HistogramTimedelta(name, description, unit, self._target(name), self._attributes)

    def create_gauge(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> common.MetricGauge:
        """An integer gauge setting the registry's metric ``name``."""
        return _Gauge(name, description, unit, self._target(name), self._attributes)

    def create_gauge_float(
        self, name: str, description: str | None = None, unit: str | None = None
    ) -> common.MetricGaugeFloat:
        """A float gauge setting the registry's metric ``name``."""
        return _GaugeFloat(name, description, unit, self._target(name), self._attributes)

    def with_additional_attributes(self, additional_attributes: Attributes) -> common.MetricMeter:
        """The same meter with more attributes bound."""
        meter = PrometheusMeter(self._known, {**self._attributes, **additional_attributes})
        meter._unknown = self._unknown
        return meter


class HomeostatRuntime(runtime.Runtime):
    """A Temporal runtime whose metric meter (for workflows and activities) is ours.

    The SDK's own metrics do not go through this meter: the Rust core records them and
    serves them on the Prometheus endpoint of ``telemetry``.
    """

    def __init__(self, *, telemetry: runtime.TelemetryConfig, meter: common.MetricMeter) -> None:
        """Start the runtime with ``telemetry``; workflows record into ``meter``."""
        super().__init__(telemetry=telemetry)
        self._homeostat_meter = meter

    @property
    def metric_meter(self) -> common.MetricMeter:
        """The meter workers hand to workflows and activities."""
        return self._homeostat_meter


def build_runtime(
    known: Mapping[str, prometheus_registry.Collector], *, sdk_metrics_address: str | None
) -> HomeostatRuntime:
    """A runtime serving the SDK's metrics at ``sdk_metrics_address`` (``host:port``), if set.

    Counters end in ``_total`` and durations are seconds ending in ``_seconds``, as
    Prometheus conventions ask.
    """
    metrics = (
        runtime.PrometheusConfig(
            bind_address=sdk_metrics_address,
            counters_total_suffix=True,
            unit_suffix=True,
            durations_as_seconds=True,
        )
        if sdk_metrics_address
        else None
    )
    return HomeostatRuntime(
        telemetry=runtime.TelemetryConfig(metrics=metrics), meter=PrometheusMeter(known)
    )
