"""The one settings object, read from ``homeostat.yaml`` and ``HOMEOSTAT_`` variables.

Only the composition roots (``cli``, ``service``, ``worker``) import this module; every
other layer receives the plain values it needs as arguments. Environment variables
override the file, and nest with a double underscore (``HOMEOSTAT_TEMPORAL__ADDRESS``).
"""

from __future__ import annotations

import difflib
import json
import os
import types
import typing
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import pydantic
import pydantic_settings
import yaml

from controller import errors
from controller.domain import durations


def _duration(value: Any) -> Any:
    return durations.coerce(value)


Duration = Annotated[timedelta, pydantic.BeforeValidator(_duration)]
"""A timedelta written as a Prometheus duration (``30s``, ``5m``); a bare number needs a unit."""

DEFAULT_CONFIG_FILE = Path("homeostat.yaml")
_ENV_PREFIX = "HOMEOSTAT_"


def _not_blank(value: pydantic.SecretStr) -> pydantic.SecretStr:
    if not value.get_secret_value().strip():
        raise ValueError(
            "must not be empty: an empty secret would authenticate anyone; "
            "unset it to refuse every request, or set a real secret"
        )
    return value


Secret = Annotated[pydantic.SecretStr, pydantic.AfterValidator(_not_blank)]
"""A secret that authenticates inbound requests: never empty or blank."""


def reveal(secret: pydantic.SecretStr | None) -> str | None:
    """The text of ``secret``, for the client that sends it; ``None`` when it is unset.

    Composition roots call this where they hand a secret to the code that uses it; the
    settings object itself never shows one (``config show``, logs, reprs).
    """
    return secret.get_secret_value() if secret is not None else None

MEBIBYTE = 1024 * 1024


class _Group(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class TemporalSettings(_Group):
    """Where Temporal is, or how to run the embedded dev server."""

    address: str | None = pydantic.Field(
        default=None,
        description="host:port of an existing Temporal frontend; unset runs an embedded dev server",
    )
    namespace: str = pydantic.Field(default="default", description="Temporal namespace")
    task_queue: str = pydantic.Field(default="homeostat", description="task queue of the worker")
    api_key: pydantic.SecretStr | None = pydantic.Field(
        default=None, description="API key for Temporal Cloud (implies TLS)"
    )
    state_dir: Path = pydantic.Field(
        default=Path(".homeostat"), description="where the embedded server keeps its SQLite file"
    )
    embedded_host: str = pydantic.Field(
        default="127.0.0.1", description="address the embedded server binds"
    )
    embedded_port: int = pydantic.Field(
        default=7233, ge=1, le=65535, description="gRPC port of the embedded server"
    )
    ui_port: int = pydantic.Field(
        default=8233, ge=1, le=65535, description="Web UI port of the embedded server"
    )
    ui: bool = pydantic.Field(default=True, description="serve the Temporal Web UI when embedded")
    web_ui_url: str | None = pydantic.Field(
        default=None,
        description="Temporal Web UI URL for links in pages and tickets; default: the embedded UI",
    )

    @property
    def client_address(self) -> str:
        """Where clients connect: ``address``, or the embedded server's frontend."""
        return self.address or f"{self.embedded_host}:{self.embedded_port}"

    @property
    def effective_web_ui_url(self) -> str | None:
        """Where links to workflows point: ``web_ui_url``, else the embedded server's UI."""
        if self.web_ui_url:
            return self.web_ui_url
        if self.address is None and self.ui:
            return f"http://{self.embedded_host}:{self.ui_port}"
        return None

    max_cached_workflows: int = pydantic.Field(
        default=2000, ge=0, description="workflows a worker keeps in memory (size to active ones)"
    )
    tls: bool = pydantic.Field(
        default=False, description="connect with TLS (implied by an API key or a TLS file)"
    )
    tls_ca_file: Path | None = pydantic.Field(
        default=None, description="CA bundle to verify the Temporal frontend with"
    )
    tls_cert_file: Path | None = pydantic.Field(
        default=None, description="client certificate for mutual TLS"
    )
    tls_key_file: Path | None = pydantic.Field(
        default=None, description="client private key for mutual TLS"
    )
    tls_server_name: str | None = pydantic.Field(
        default=None, description="server name to verify instead of the address's host"
    )


class HttpSettings(_Group):
    """The HTTP API: webhooks, health, metrics."""

    host: str = pydantic.Field(default="127.0.0.1", description="address to bind")
    port: int = pydantic.Field(default=8080, ge=0, le=65535, description="port to bind")
    public_url: str | None = pydantic.Field(
        default=None, description="URL under which users reach the API (printed at start)"
    )
    header_timeout: Duration = pydantic.Field(
        default=timedelta(seconds=10),
        description="longest wait for a request's headers (a new connection's too), then close",
    )
    body_timeout: Duration = pydantic.Field(
        default=timedelta(seconds=30),
        description="longest a request body may take to arrive; then 408 and the connection closes",
    )
    keep_alive_timeout: Duration = pydantic.Field(
        default=timedelta(seconds=5), description="how long an idle kept-alive connection is kept"
    )
    max_connections: int = pydantic.Field(
        default=512, ge=1, description="connections held at once; a further one is closed at once"
    )
    max_body_memory: pydantic.ByteSize = pydantic.Field(
        default=pydantic.ByteSize(64 * MEBIBYTE),
        gt=0,
        description="request bodies held in memory at once, all together; beyond, 503",
    )
    signature_tolerance: Duration = pydantic.Field(
        default=timedelta(minutes=5),
        description="how far a signed request's X-Homeostat-Timestamp may be from the clock",
    )


class KafkaSettings(_Group):
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
    session_timeout: Duration = pydantic.Field(
        default=timedelta(seconds=10),
        description="consumer-group session timeout: how long a killed consumer's partitions "
        "wait before another member (or its restart) takes them; heartbeats every third of it",
    )
    max_poll_interval: Duration = pydantic.Field(
        default=timedelta(minutes=5), description="longest time between two polls"
    )
    rebuild_window: Duration | None = pydantic.Field(
        default=None,
        description="how far back to re-read on partition assignment; default: longest rule window",
    )
    security_protocol: str = pydantic.Field(
        default="PLAINTEXT",
        pattern="^(PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL)$",
        description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
    )
    sasl_mechanism: str | None = pydantic.Field(
        default=None,
        pattern="^(PLAIN|SCRAM-SHA-256|SCRAM-SHA-512)$",
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


class PrometheusSettings(_Group):
    """The Prometheus server that Prometheus-family rules query."""

    url: str | None = pydantic.Field(
        default=None, description="base URL; unset disables Prometheus polling"
    )
    evaluation_interval: Duration = pydantic.Field(
        default=timedelta(seconds=60), description="default rule-group evaluation interval"
    )
    query_timeout: Duration = pydantic.Field(
        default=timedelta(seconds=10), description="timeout of one query"
    )
    rebuild_window: Duration = pydantic.Field(
        default=timedelta(minutes=10),
        description="how far back a rule's past is re-read at start or take-over (at least its "
        "for + keep_firing_for): a condition firing for longer gets a new episode id",
    )
    coordination: str = pydantic.Field(
        default="none",
        pattern="^(none|kafka)$",
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
    assignment_session_timeout: Duration = pydantic.Field(
        default=timedelta(seconds=10),
        description="coordination kafka: how soon a dead replica's groups move to another",
    )


class AlertmanagerSettings(_Group):
    """Authentication and limits of the Alertmanager webhook."""

    bearer_token: Secret | None = pydantic.Field(
        default=None, description="token expected in 'Authorization: Bearer ...'"
    )
    hmac_secret: Secret | None = pydantic.Field(
        default=None, description="secret of the HMAC-SHA256 request signature (docs/security.md)"
    )
    max_body_size: pydantic.ByteSize = pydantic.Field(
        default=pydantic.ByteSize(4 * MEBIBYTE),
        gt=0,
        description="largest notification accepted (413 beyond; 4MiB, 512KiB ...)",
    )


class WebhooksSettings(_Group):
    """Authentication and limits of the generic event and GitLab webhooks."""

    bearer_token: Secret | None = pydantic.Field(
        default=None, description="token expected by /v1/events in 'Authorization: Bearer ...'"
    )
    hmac_secret: Secret | None = pydantic.Field(
        default=None, description="secret of the HMAC-SHA256 request signature of /v1/events"
    )
    gitlab_token: Secret | None = pydantic.Field(
        default=None, description="secret token GitLab sends in X-Gitlab-Token to /v1/gitlab"
    )
    max_body_size: pydantic.ByteSize = pydantic.Field(
        default=pydantic.ByteSize(4 * MEBIBYTE),
        gt=0,
        description="largest /v1/events request body (413 beyond)",
    )
    max_events: int = pydantic.Field(
        default=1000, ge=1, description="events in one /v1/events request (413 beyond)"
    )
    gitlab_max_body_size: pydantic.ByteSize = pydantic.Field(
        default=pydantic.ByteSize(4 * MEBIBYTE),
        gt=0,
        description="largest /v1/gitlab request body (413 beyond)",
    )
    mode: str = pydantic.Field(
        default="direct",
        pattern="^(direct|kafka)$",
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


class DispatchSettings(_Group):
    """The hand-off of transitions to Temporal."""

    max_in_flight: int = pydantic.Field(
        default=32, ge=1, description="signal-with-start calls running at once"
    )
    max_pending: int = pydantic.Field(
        default=10_000, ge=1, description="transitions queued before sources are held back"
    )
    webhook_deadline: Duration = pydantic.Field(
        default=timedelta(seconds=10),
        description="how long a webhook waits for Temporal before answering 503",
    )
    stall_after: Duration = pydantic.Field(
        default=timedelta(minutes=1),
        description="/readyz says not ready while a transition has waited longer than this "
        "for Temporal",
    )


class IngestSettings(_Group):
    """What may enter the rules engine, from every source."""

    max_clock_skew: Duration = pydantic.Field(
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


class RulesSettings(_Group):
    """Where rule files, remediation plans and playbooks live."""

    rules_dir: Path = pydantic.Field(default=Path("rules"), description="rule files (YAML)")
    remediations_dir: Path = pydantic.Field(
        default=Path("remediations"), description="remediation plans (YAML)"
    )
    playbooks_dir: Path = pydantic.Field(
        default=Path("playbooks"), description="Ansible playbooks the plans run"
    )
    reload_interval: Duration = pydantic.Field(
        default=timedelta(seconds=5),
        description="how often the files are checked for changes (hot reload)",
    )
    retry_interval: Duration = pydantic.Field(
        default=timedelta(minutes=1),
        description="how often a rule set that failed to load is tried again without a change",
    )


class PagingSettings(_Group):
    """PagerDuty Events API v2."""

    routing_key: pydantic.SecretStr | None = pydantic.Field(
        default=None, description="integration (routing) key; unset disables paging"
    )
    events_url: str = pydantic.Field(
        default="https://events.pagerduty.com", description="Events API base URL"
    )
    routing_keys: dict[str, pydantic.SecretStr] = pydantic.Field(
        default_factory=dict, description="further routing keys by the name a page step uses"
    )
    ca_file: Path | None = pydantic.Field(
        default=None, description="CA bundle to verify PagerDuty with instead of the system's"
    )


class TicketingSettings(_Group):
    """Jira, Cloud or Data Center."""

    url: str | None = pydantic.Field(default=None, description="Jira base URL; unset disables")
    user: str | None = pydantic.Field(default=None, description="user (Cloud: e-mail)")
    token: pydantic.SecretStr | None = pydantic.Field(default=None, description="API token")
    project: str = pydantic.Field(default="OPS", description="project key for new tickets")
    flavor: str = pydantic.Field(
        default="cloud",
        pattern="^(cloud|datacenter)$",
        description="cloud (REST v3, ADF) or datacenter (REST v2)",
    )
    ca_file: Path | None = pydantic.Field(
        default=None, description="CA bundle to verify Jira with instead of the system's"
    )


class CmdbSettings(_Group):
    """The CMDB REST API used as a dynamic Ansible inventory."""

    url: str | None = pydantic.Field(default=None, description="base URL; unset disables")
    token: pydantic.SecretStr | None = pydantic.Field(default=None, description="API token")
    scheme: str = pydantic.Field(default="Token", description="Authorization scheme")
    page_size: int = pydantic.Field(default=500, ge=1, description="hosts per page")
    cache_ttl: Duration = pydantic.Field(
        default=timedelta(minutes=1), description="how long a fetched inventory is reused"
    )
    max_stale: Duration = pydantic.Field(
        default=timedelta(minutes=30), description="how long a stale inventory serves an outage"
    )


class AnsibleSettings(_Group):
    """How playbooks run."""

    inventory: Path | None = pydantic.Field(
        default=None, description="static inventory file or folder every run uses"
    )
    batch_size: int = pydantic.Field(
        default=100, ge=1, description="hosts per ansible-runner invocation (a resume point)"
    )
    forks: int = pydantic.Field(default=25, ge=1, description="parallel hosts per invocation")
    parallel_runs: int = pydantic.Field(
        default=2, ge=1, description="invocations of one playbook step at once"
    )
    python_interpreter: str = pydantic.Field(
        default="", description="ansible_python_interpreter of every host; empty: discover"
    )


class CredentialSettings(_Group):
    """One named credential that http steps and HTTP actuators refer to."""

    bearer_token: pydantic.SecretStr | None = None
    username: str = ""
    password: pydantic.SecretStr | None = None
    headers: dict[str, pydantic.SecretStr] = pydantic.Field(default_factory=dict)
    params: dict[str, pydantic.SecretStr] = pydantic.Field(default_factory=dict)
    """Query parameters, for APIs that take a key in the URL (``api_key``)."""


class ActivitiesSettings(_Group):
    """Where remediation steps keep their files, and how many run at once."""

    state_dir: Path = pydantic.Field(
        default=Path(".homeostat/runs"), description="playbook and command run directories"
    )
    threads: int = pydantic.Field(
        default=32, ge=1, description="worker threads for blocking activities (playbooks ...)"
    )
    http_timeout: Duration = pydantic.Field(
        default=timedelta(seconds=30), description="timeout of one request of an http step"
    )
    load_plan_timeout: Duration = pydantic.Field(
        default=timedelta(seconds=30),
        description="time one attempt of loading an episode's plan may take (resource "
        "workflows started after a change use it)",
    )
    on_resolve_timeout: Duration = pydantic.Field(
        default=timedelta(minutes=1),
        description="time one attempt of resolving a page or ticket of a resolved episode may "
        "take (resource workflows started after a change use it)",
    )
    command_env: list[str] = pydantic.Field(
        default_factory=list, description="environment variables commands inherit besides PATH"
    )
    command_secret_env: dict[str, pydantic.SecretStr] = pydantic.Field(
        default_factory=dict, description="variables set for every command, masked in output"
    )
    credentials: dict[str, CredentialSettings] = pydantic.Field(
        default_factory=dict, description="named credentials for http steps"
    )


class Role(StrEnum):
    """Which parts of Homeostat a process runs."""

    ALL = "all"
    INGEST = "ingest"
    WORKER = "worker"


class ServiceSettings(_Group):
    """What this process runs; replicas of each role share the work (docs/operations.md)."""

    role: Role = pydantic.Field(
        default=Role.ALL,
        description="all: ingest and the worker; ingest: webhooks, Kafka, Prometheus polling and "
        "dispatch; worker: the Temporal worker (both serve /healthz, /readyz, /metrics)",
    )


class MetricsSettings(_Group):
    """Metrics: Homeostat's on the HTTP API's /metrics, the Temporal SDK's on their own port."""

    sdk_address: str | None = pydantic.Field(
        default=None,
        description="host:port where the Temporal SDK serves its metrics (temporal_*) at "
        "/metrics; unset: not served",
    )
    visibility_interval: Duration = pydantic.Field(
        default=timedelta(seconds=30),
        description="how often resources by phase and open episodes are read from Temporal",
    )
    open_episodes: int = pydantic.Field(
        default=100,
        ge=0,
        description="most open episodes listed, with their workflow ids, for dashboard links",
    )


class ApiSettings(_Group):
    """The operator API (/v1 resources, episodes, alerts, rules): named tokens, approver groups."""

    tokens: dict[str, pydantic.SecretStr] = pydantic.Field(
        default_factory=dict,
        description="operator tokens by the name they authenticate (a person or team); "
        "empty: the operator API refuses every request",
    )
    groups: dict[str, list[str]] = pydantic.Field(
        default_factory=dict,
        description="approver groups a plan's `approvers:` may name: members are token names, "
        "slack:USER_ID and OS users of the CLI",
    )
    timeout: Duration = pydantic.Field(
        default=timedelta(seconds=15),
        gt=timedelta(0),
        description="how long an operator request waits for the resource workflow (a worker "
        "must run it) before answering 503",
    )

    @pydantic.field_validator("tokens")
    @classmethod
    def _usable_tokens(cls, tokens: dict[str, pydantic.SecretStr]) -> dict[str, pydantic.SecretStr]:
        seen: set[str] = set()
        for name, token in tokens.items():
            value = token.get_secret_value()
            if not name.strip():
                raise ValueError("a token needs a name (the person or team it stands for)")
            if not value.strip() or value != value.strip() or any(c.isspace() for c in value):
                raise ValueError(f"the token of {name!r} is empty or contains whitespace")
            if len(value) < MIN_TOKEN_LENGTH:
                raise ValueError(f"the token of {name!r} is shorter than {MIN_TOKEN_LENGTH}")
            if value in seen:
                raise ValueError(f"the token of {name!r} is also another name's token")
            seen.add(value)
        return tokens


class SlackSettings(_Group):
    """Slack approvals: messages with Approve/Deny buttons, and the clicks coming back."""

    bot_token: pydantic.SecretStr | None = pydantic.Field(
        default=None, description="bot token (xoxb-...) with chat:write; unset disables messages"
    )
    signing_secret: pydantic.SecretStr | None = pydantic.Field(
        default=None,
        description="the app's signing secret; unset refuses every click (/v1/slack/interactions)",
    )
    approvers: list[str] = pydantic.Field(
        default_factory=list,
        description="Slack user ids (U...) or approver groups whose members may click "
        "Approve/Deny; empty refuses every click",
    )
    api_url: str = pydantic.Field(default="https://slack.com/api/", description="Web API base URL")
    ca_file: Path | None = pydantic.Field(
        default=None, description="CA bundle to verify Slack with instead of the system's"
    )

    @pydantic.field_validator("bot_token", "signing_secret")
    @classmethod
    def _not_empty(cls, value: pydantic.SecretStr | None) -> pydantic.SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            raise ValueError("empty: leave it unset, or set the real value")
        return value


MIN_TOKEN_LENGTH = 16
"""Operator tokens shorter than this are refused: they could be guessed."""


class LogFormat(StrEnum):
    """How log lines are rendered."""

    AUTO = "auto"
    JSON = "json"
    CONSOLE = "console"


class LoggingSettings(_Group):
    """Log level and rendering."""

    level: str = pydantic.Field(default="info", description="minimum level")
    format: LogFormat = pydantic.Field(
        default=LogFormat.AUTO, description="auto: console on a TTY, JSON otherwise"
    )

    @pydantic.field_validator("level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.lower() not in {"debug", "info", "warning", "error", "critical"}:
            raise ValueError("must be one of debug, info, warning, error, critical")
        return value.lower()


class Settings(pydantic_settings.BaseSettings):
    """Every setting of Homeostat, grouped by the component it configures."""

    model_config = pydantic_settings.SettingsConfigDict(
        env_prefix="HOMEOSTAT_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    temporal: TemporalSettings = TemporalSettings()
    http: HttpSettings = HttpSettings()
    kafka: KafkaSettings = KafkaSettings()
    prometheus: PrometheusSettings = PrometheusSettings()
    alertmanager: AlertmanagerSettings = AlertmanagerSettings()
    webhooks: WebhooksSettings = WebhooksSettings()
    dispatch: DispatchSettings = DispatchSettings()
    ingest: IngestSettings = IngestSettings()
    rules: RulesSettings = RulesSettings()
    paging: PagingSettings = PagingSettings()
    ticketing: TicketingSettings = TicketingSettings()
    cmdb: CmdbSettings = CmdbSettings()
    ansible: AnsibleSettings = AnsibleSettings()
    activities: ActivitiesSettings = ActivitiesSettings()
    logging: LoggingSettings = LoggingSettings()
    metrics: MetricsSettings = MetricsSettings()
    service: ServiceSettings = ServiceSettings()

    api: ApiSettings = ApiSettings()
    slack: SlackSettings = SlackSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[pydantic_settings.BaseSettings],
        init_settings: pydantic_settings.PydanticBaseSettingsSource,
        env_settings: pydantic_settings.PydanticBaseSettingsSource,
        dotenv_settings: pydantic_settings.PydanticBaseSettingsSource,
        file_secret_settings: pydantic_settings.PydanticBaseSettingsSource,
    ) -> tuple[pydantic_settings.PydanticBaseSettingsSource, ...]:
        """Let the environment override the file (the file arrives as init values)."""
        del settings_cls, dotenv_settings, file_secret_settings
        return (env_settings, init_settings)


def load(path: Path | None) -> Settings:
    """Read the settings from ``path`` (or ./homeostat.yaml if present) and the environment.

    Raises:
        errors.ConfigError: the file cannot be read, or a value is invalid; the message
            names the key (``temporal.embedded_port``) and the problem.
    """
    file_values: dict[str, Any] = {}
    source = "environment"
    if path is None and DEFAULT_CONFIG_FILE.exists():
        path = DEFAULT_CONFIG_FILE
    if path is not None:
        source = str(path)
        file_values = _read_yaml(path)
    typos = unknown_variables(os.environ)
    if typos:
        raise errors.ConfigError(
            "invalid configuration (from HOMEOSTAT_* variables):\n"
            + "\n".join(f"  {typo}" for typo in typos)
        )
    try:
        return Settings(**file_values)
    except pydantic.ValidationError as exc:
        raise errors.ConfigError(_describe(exc, source)) from None
    except pydantic_settings.SettingsError as exc:
        raise errors.ConfigError(_describe_environment(exc)) from None


def _describe_environment(exc: pydantic_settings.SettingsError) -> str:
    """Name the ``HOMEOSTAT_*`` variables whose JSON (lists, mappings, groups) is broken."""
    lines = ["invalid configuration (from HOMEOSTAT_* variables):"]
    for name, value in sorted(os.environ.items()):
        if not name.upper().startswith(_ENV_PREFIX) or not _structured(name):
            continue
        try:
            json.loads(value)
        except ValueError as error:
            lines.append(
                f"  {name}: not valid JSON ({error}); lists and mappings are written as JSON, "
                'e.g. ["a:9092", "b:9092"]'
            )
    if len(lines) == 1:
        lines.append(f"  {exc}")
    return "\n".join(lines)


def _structured(variable: str) -> bool:
    """Whether the setting a variable names holds a list, a mapping or a group (JSON)."""
    path = variable[len(_ENV_PREFIX) :].lower().split("__")
    model: Any = Settings
    annotation: Any = None
    for part in path:
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return annotation is not None and _is_structured(annotation)
        annotation = fields[part].annotation
        model = _unwrap(annotation)
    return _is_structured(annotation)


def _unwrap(annotation: Any) -> Any:
    """``X`` of ``X | None`` (and of ``Annotated[X, ...]``)."""
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        present = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(present) == 1:
            return _unwrap(present[0])
    return annotation


def _is_structured(annotation: Any) -> bool:
    bare = _unwrap(annotation)
    origin = typing.get_origin(bare) or bare
    return origin in {list, dict, set, tuple} or (
        isinstance(origin, type) and issubclass(origin, pydantic.BaseModel)
    )


_NOT_SETTINGS = frozenset({"HOMEOSTAT_API_URL", "HOMEOSTAT_API_TOKEN", "HOMEOSTAT_VARS"})
"""``HOMEOSTAT_*`` variables that are not settings: the CLI's operator-API options, and the
JSON of variables a command step gets (with ``HOMEOSTAT_VAR_<NAME>`` each)."""
_NOT_SETTINGS_PREFIX = "HOMEOSTAT_VAR_"


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """Every ``HOMEOSTAT_*`` variable that names no setting, with the closest one that does.

    pydantic-settings ignores a variable that matches no field, so a typo
    (``HOMEOSTAT_WEBHOOK__BEARER_TOKEN``, ``HOMEOSTAT_HTTP_PORT``) would silently leave a
    setting at its default; here it is an error. Names are matched as pydantic-settings
    matches them: case-insensitively, nesting on ``__``, any key inside a mapping.
    """
    found: list[str] = []
    for name in sorted(environ):
        upper = name.upper()
        if (
            not upper.startswith(_ENV_PREFIX)
            or upper in _NOT_SETTINGS
            or upper.startswith(_NOT_SETTINGS_PREFIX)
        ):
            continue
        path = upper[len(_ENV_PREFIX) :].lower().split("__")
        if _names_a_setting(Settings, path):
            continue
        candidates = [
            _ENV_PREFIX + "__".join(parts).upper() for parts in _paths(Settings, [], path)
        ]
        closest = difflib.get_close_matches(upper, candidates, n=1, cutoff=0.6)
        hint = f" (did you mean {closest[0]}?)" if closest else ""
        found.append(f"{name}: unknown setting{hint}")
    return found


def _model(annotation: Any) -> type[pydantic.BaseModel] | None:
    bare = _unwrap(annotation)
    return bare if isinstance(bare, type) and issubclass(bare, pydantic.BaseModel) else None


def _names_a_setting(model: type[pydantic.BaseModel], path: list[str]) -> bool:
    """Whether ``path`` (lower-case parts) names a field of ``model``, or a key of a mapping."""
    field = model.model_fields.get(path[0])
    if field is None:
        return False
    rest = path[1:]
    if not rest:
        return True
    nested = _model(field.annotation)
    if nested is not None:
        return _names_a_setting(nested, rest)
    bare = _unwrap(field.annotation)
    if typing.get_origin(bare) is not dict or not rest[0]:
        return False
    if len(rest) == 1:
        return True
    values = _model(typing.get_args(bare)[1])
    return values is not None and _names_a_setting(values, rest[1:])


def _paths(
    model: type[pydantic.BaseModel], prefix: list[str], wanted: list[str]
) -> list[list[str]]:
    """Every variable path under ``model``; a mapping's key is the one ``wanted`` gives."""
    found: list[list[str]] = []
    for name, field in model.model_fields.items():
        parts = [*prefix, name]
        found.append(parts)
        nested = _model(field.annotation)
        if nested is not None:
            found += _paths(nested, parts, wanted)
            continue
        bare = _unwrap(field.annotation)
        values = _model(typing.get_args(bare)[1]) if typing.get_origin(bare) is dict else None
        if values is not None:
            key = wanted[len(parts)] if len(wanted) > len(parts) else "name"
            found += _paths(values, [*parts, key], wanted)
    return found


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise errors.ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        raise errors.ConfigError(f"{where}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise errors.ConfigError(f"{path}: the top level must be a mapping of setting groups")
    return data


def _describe(exc: pydantic.ValidationError, source: str) -> str:
    lines = [f"invalid configuration (from {source} and HOMEOSTAT_* variables):"]
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        problem = "unknown setting" if error["type"] == "extra_forbidden" else error["msg"]
        lines.append(f"  {key}: {problem}")
    return "\n".join(lines)


def reference() -> str:
    """Every setting as a Markdown table per group: key, environment variable, default, meaning."""
    lines: list[str] = []
    for group_name, group_field in Settings.model_fields.items():
        group_type = group_field.annotation
        if not isinstance(group_type, type) or not issubclass(group_type, pydantic.BaseModel):
            continue
        lines += [f"## `{group_name}`", "", (group_type.__doc__ or "").strip(), ""]
        lines += ["| key | environment variable | default | meaning |", "| --- | --- | --- | --- |"]
        defaults = group_type()
        for name, field in group_type.model_fields.items():
            default = getattr(defaults, name)
            shown = _show_default(default)
            env = f"HOMEOSTAT_{group_name.upper()}__{name.upper()}"
            lines.append(
                f"| `{group_name}.{name}` | `{env}` | {shown} | {field.description or ''} |"
            )
        lines.append("")
    return "\n".join(lines)


def _show_default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, timedelta):
        return f"`{durations.format_duration(value)}`"
    if isinstance(value, StrEnum):
        return f"`{value.value}`"
    if isinstance(value, pydantic.ByteSize):
        return f"`{value.human_readable(decimal=False, separator=' ')}`"
    if isinstance(value, list) and not value:
        return "`[]`"
    return f"`{value}`"
