"""Settings of what comes in: HTTP, webhooks, Kafka, Prometheus, the engine's limits, dispatch."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from pathlib import Path

import pydantic

from controller.settings import values


class WebhooksMode(StrEnum):
    """Where generic and GitLab webhook events are evaluated."""

    DIRECT = "direct"
    KAFKA = "kafka"


class Coordination(StrEnum):
    """How ingest replicas share the Prometheus rule groups."""

    NONE = "none"
    KAFKA = "kafka"


class KafkaSecurity(StrEnum):
    """Kafka's ``security.protocol``."""

    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class SaslMechanism(StrEnum):
    """Kafka's ``sasl.mechanism``."""

    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


class HttpSettings(values.Group):
    """The HTTP API: webhooks, health, metrics."""

    host: str = pydantic.Field(default="127.0.0.1", description="address to bind")
    port: int = pydantic.Field(default=8080, ge=0, le=65535, description="port to bind")
    public_url: str | None = pydantic.Field(
        default=None, description="URL under which users reach the API (printed at start)"
    )
    header_timeout: values.Duration = pydantic.Field(
        default=timedelta(seconds=10),
        description="longest wait for a request's headers (a new connection's too), then close",
    )
    body_timeout: values.Duration = pydantic.Field(
        default=timedelta(seconds=30),
        description="longest a request body may take to arrive; then 408 and the connection closes",
    )
    keep_alive_timeout: values.Duration = pydantic.Field(
        default=timedelta(seconds=5), description="how long an idle kept-alive connection is kept"
    )
    max_connections: int = pydantic.Field(
        default=512, ge=1, description="connections held at once; a further one is closed at once"
    )
    max_body_memory: pydantic.ByteSize = pydantic.Field(
        default=pydantic.ByteSize(64 * values.MEBIBYTE),
        gt=0,
        description="request bodies held in memory at once, all together; beyond, 503",
    )
    signature_tolerance: values.Duration = pydantic.Field(
        default=timedelta(minutes=5),
        description="how far a signed request's X-Homeostat-Timestamp may be from the clock",
    )


class AlertmanagerSettings(values.Group):
    """Authentication and limits of the Alertmanager webhook."""

    bearer_token: values.Secret | None = pydantic.Field(
        default=None, description="token expected in 'Authorization: Bearer ...'"
    )
    hmac_secret: values.Secret | None = pydantic.Field(
        default=None, description="secret of the HMAC-SHA256 request signature (docs/security.md)"
    )
    max_body_size: pydantic.ByteSize = pydantic.Field(
        default=pydantic.ByteSize(4 * values.MEBIBYTE),
        gt=0,
        description="largest notification accepted (413 beyond; 4MiB, 512KiB ...)",
    )


class WebhooksSettings(values.Group):
    """Authentication and limits of the generic event and GitLab webhooks."""

    bearer_token: values.Secret | None = pydantic.Field(
        default=None, description="token expected by /v1/events in 'Authorization: Bearer ...'"
    )
    hmac_secret: values.Secret | None = pydantic.Field(
        default=None, description="secret of the HMAC-SHA256 request signature of /v1/events"
    )
    gitlab_token: values.Secret | None = pydantic.Field(
        default=None, description="secret token GitLab sends in X-Gitlab-Token to /v1/gitlab"
    )
    max_body_size: pydantic.ByteSize = pydantic.Field(
        default=pydantic.ByteSize(4 * values.MEBIBYTE),
        gt=0,
        description="largest /v1/events request body (413 beyond)",
    )
    max_events: int = pydantic.Field(
        default=1000, ge=1, description="events in one /v1/events request (413 beyond)"
    )
    gitlab_max_body_size: pydantic.ByteSize = pydantic.Field(
        default=pydantic.ByteSize(4 * values.MEBIBYTE),
        gt=0,
        description="largest /v1/gitlab request body (413 beyond)",
    )
    mode: WebhooksMode = pydantic.Field(
        default=WebhooksMode.DIRECT,
        description="direct: this process evaluates the events it receives; kafka (several "
        "ingest replicas): /v1/events and /v1/gitlab events go through `topic`, keyed by "
        "resource, to the replica that owns that resource",
    )
    topic: str = pydantic.Field(
        default="homeostat.webhook-events",
        description="mode kafka: the topic webhook events are forwarded through",
    )
    topic_partitions: int = pydantic.Field(
        default=16, ge=1, description="mode kafka: partitions of the topic when it is created"
    )


class KafkaSettings(values.Group):
    """The Kafka event stream."""

    bootstrap_servers: list[str] = pydantic.Field(
        default_factory=list, description="brokers; empty disables Kafka ingest"
    )
    group_id: str = pydantic.Field(default="homeostat", description="consumer group")
    dead_letter_topic: str = pydantic.Field(
        default="homeostat.dead-letter", description="where unparseable messages go"
    )
    topics: list[str] = pydantic.Field(
        default_factory=list,
        description="topics to read besides those the rules name (their `stream`)",
    )
    timestamp_field: str = pydantic.Field(
        default="timestamp", description="plain JSON messages: the field holding event time"
    )
    session_timeout: values.Duration = pydantic.Field(
        default=timedelta(seconds=10),
        description="consumer-group session timeout: how long a killed consumer's partitions "
        "wait before another member (or its restart) takes them; heartbeats every third of it",
    )
    max_poll_interval: values.Duration = pydantic.Field(
        default=timedelta(minutes=5), description="longest time between two polls"
    )
    rebuild_window: values.Duration | None = pydantic.Field(
        default=None,
        description="how far back to re-read on partition assignment; default: longest rule window",
    )
    security_protocol: KafkaSecurity = pydantic.Field(
        default=KafkaSecurity.PLAINTEXT,
        description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
    )
    sasl_mechanism: SaslMechanism | None = pydantic.Field(
        default=None,
        description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; unset: no SASL",
    )
    sasl_username: str | None = pydantic.Field(default=None, description="SASL user name")
    sasl_password: pydantic.SecretStr | None = pydantic.Field(
        default=None, description="SASL password"
    )
    ssl_cafile: Path | None = pydantic.Field(
        default=None, description="CA bundle to verify the brokers with"
    )
    ssl_certfile: Path | None = pydantic.Field(
        default=None, description="client certificate (mutual TLS)"
    )
    ssl_keyfile: Path | None = pydantic.Field(default=None, description="client key (mutual TLS)")


class PrometheusSettings(values.Group):
    """The Prometheus server that Prometheus-family rules query."""

    url: str | None = pydantic.Field(
        default=None, description="base URL; unset disables Prometheus polling"
    )
    evaluation_interval: values.Duration = pydantic.Field(
        default=timedelta(seconds=60), description="default rule-group evaluation interval"
    )
    query_timeout: values.Duration = pydantic.Field(
        default=timedelta(seconds=10), description="timeout of one query"
    )
    rebuild_window: values.Duration = pydantic.Field(
        default=timedelta(minutes=10),
        description="how far back a rule's past is re-read at start or take-over (at least its "
        "for + keep_firing_for): a condition firing for longer gets a new episode id",
    )
    coordination: Coordination = pydantic.Field(
        default=Coordination.NONE,
        description="none: this process evaluates every rule group; kafka: each group is "
        "evaluated by one ingest replica, assigned through a Kafka consumer group",
    )
    assignment_topic: str = pydantic.Field(
        default="homeostat.rule-groups",
        description="coordination kafka: the topic whose partitions stand for rule groups",
    )
    assignment_group: str = pydantic.Field(
        default="homeostat-rule-groups",
        description="coordination kafka: the consumer group the replicas join",
    )
    assignment_partitions: int = pydantic.Field(
        default=16, ge=1, description="coordination kafka: partitions of a new assignment topic"
    )
    assignment_replication_factor: int = pydantic.Field(
        default=1, ge=1, description="coordination kafka: replication factor of a new topic"
    )
    assignment_session_timeout: values.Duration = pydantic.Field(
        default=timedelta(seconds=10),
        description="coordination kafka: how soon a dead replica's groups move to another",
    )


class IngestSettings(values.Group):
    """What may enter the rules engine, from every source."""

    max_clock_skew: values.Duration = pydantic.Field(
        default=timedelta(minutes=1),
        description="how far an event's time may be ahead of its receive time; "
        "beyond it a webhook answers 400 and a Kafka message is dead-lettered",
    )
    max_value_length: int = pydantic.Field(
        default=2048,
        ge=64,
        description="characters of one label or annotation value a transition carries; "
        "a longer one is cut, with a marker saying how much",
    )
    max_labels: int = pydantic.Field(
        default=64,
        ge=4,
        description="labels one transition carries; the rest are left out and counted in "
        "the label homeostat_dropped_labels",
    )


class DispatchSettings(values.Group):
    """The hand-off of transitions to Temporal."""

    max_in_flight: int = pydantic.Field(
        default=32, ge=1, description="signal-with-start calls running at once"
    )
    max_pending: int = pydantic.Field(
        default=10_000, ge=1, description="transitions queued before sources are held back"
    )
    webhook_deadline: values.Duration = pydantic.Field(
        default=timedelta(seconds=10),
        description="how long a webhook waits for Temporal before answering 503",
    )
    stall_after: values.Duration = pydantic.Field(
        default=timedelta(minutes=1),
        description="/readyz says not ready while a transition has waited longer than this "
        "for Temporal",
    )


class RulesSettings(values.Group):
    """Where rule files, remediation plans and playbooks live."""

    rules_dir: Path = pydantic.Field(default=Path("rules"), description="rule files (YAML)")
    remediations_dir: Path = pydantic.Field(
        default=Path("remediations"), description="remediation plans (YAML)"
    )
    playbooks_dir: Path = pydantic.Field(
        default=Path("playbooks"), description="Ansible playbooks the plans run"
    )
    reload_interval: values.Duration = pydantic.Field(
        default=timedelta(seconds=5),
        description="how often the files are checked for changes (hot reload)",
    )
    retry_interval: values.Duration = pydantic.Field(
        default=timedelta(minutes=1),
        description="how often a rule set that failed to load is tried again without a change",
    )
