"""The one settings object, read from ``homeostat.yaml`` and ``HOMEOSTAT_`` variables.

Only the composition roots (``cli``, ``service``, ``worker``) import this package; every
other layer receives the plain values it needs as arguments. Environment variables
override the file, and nest with a double underscore (``HOMEOSTAT_TEMPORAL__ADDRESS``).

The groups live by what they configure: ``intake`` (HTTP, webhooks, Kafka, Prometheus,
the engine's limits, dispatch, rule files), ``actions`` (paging, ticketing, the CMDB,
Ansible, commands, Slack) and ``process`` (Temporal, role, metrics, logs, operator API);
``values`` holds the kinds of values they share (durations, secrets) and ``environment``
the checks of ``HOMEOSTAT_*`` variables. Every name is re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

import pydantic
import pydantic_settings
import yaml

from controller import errors
from controller.domain import durations
from controller.settings import actions, environment, intake, process, values

DEFAULT_CONFIG_FILE = Path("homeostat.yaml")

Duration = values.Duration
Secret = values.Secret
reveal = values.reveal
MEBIBYTE = values.MEBIBYTE
MIN_TOKEN_LENGTH = values.MIN_TOKEN_LENGTH

TemporalSettings = process.TemporalSettings
Role = process.Role
ServiceSettings = process.ServiceSettings
MetricsSettings = process.MetricsSettings
LogFormat = process.LogFormat
LoggingSettings = process.LoggingSettings
ApiSettings = process.ApiSettings

WebhooksMode = intake.WebhooksMode
Coordination = intake.Coordination
KafkaSecurity = intake.KafkaSecurity
SaslMechanism = intake.SaslMechanism
HttpSettings = intake.HttpSettings
AlertmanagerSettings = intake.AlertmanagerSettings
WebhooksSettings = intake.WebhooksSettings
KafkaSettings = intake.KafkaSettings
PrometheusSettings = intake.PrometheusSettings
IngestSettings = intake.IngestSettings
DispatchSettings = intake.DispatchSettings
RulesSettings = intake.RulesSettings

PagingSettings = actions.PagingSettings
TicketingSettings = actions.TicketingSettings
CmdbSettings = actions.CmdbSettings
AnsibleSettings = actions.AnsibleSettings
CredentialSettings = actions.CredentialSettings
ActivitiesSettings = actions.ActivitiesSettings
SlackSettings = actions.SlackSettings


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
        raise errors.ConfigError(
            environment.describe_error(exc, os.environ, model=Settings)
        ) from None


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """Every ``HOMEOSTAT_*`` variable that names no setting, with the closest one that does."""
    return environment.unknown_variables(environ, model=Settings)


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
