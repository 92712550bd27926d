"""Settings of the process itself: Temporal, its role, metrics, logs, the operator API."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from pathlib import Path

import pydantic

from controller.settings import values


class TemporalSettings(values.Group):
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


class Role(StrEnum):
    """Which parts of Homeostat a process runs."""

    ALL = "all"
    INGEST = "ingest"
    WORKER = "worker"


class ServiceSettings(values.Group):
    """What this process runs; replicas of each role share the work (docs/operations.md)."""

    role: Role = pydantic.Field(
        default=Role.ALL,
        description="all: ingest and the worker; ingest: webhooks, Kafka, Prometheus polling and "
        "dispatch; worker: the Temporal worker (both serve /healthz, /readyz, /metrics)",
    )


class MetricsSettings(values.Group):
    """Metrics: Homeostat's on the HTTP API's /metrics, the Temporal SDK's on their own port."""

    sdk_address: str | None = pydantic.Field(
        default=None,
        description="host:port where the Temporal SDK serves its metrics (temporal_*) at "
        "/metrics; unset: not served",
    )
    visibility_interval: values.Duration = pydantic.Field(
        default=timedelta(seconds=30),
        description="how often resources by phase and open episodes are read from Temporal",
    )
    open_episodes: int = pydantic.Field(
        default=100,
        ge=0,
        description="most open episodes listed, with their workflow ids, for dashboard links",
    )


class LogFormat(StrEnum):
    """How log lines are rendered."""

    AUTO = "auto"
    JSON = "json"
    CONSOLE = "console"


class LoggingSettings(values.Group):
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


class ApiSettings(values.Group):
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
    timeout: values.Duration = pydantic.Field(
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
            if len(value) < values.MIN_TOKEN_LENGTH:
                raise ValueError(f"the token of {name!r} is shorter than {values.MIN_TOKEN_LENGTH}")
            if value in seen:
                raise ValueError(f"the token of {name!r} is also another name's token")
            seen.add(value)
        return tokens
