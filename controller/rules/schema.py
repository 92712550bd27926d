"""The rule-file format, as pydantic models: the edge where YAML becomes typed values.

``extra="forbid"`` everywhere, so a typo is an error with its position. The committed JSON
Schema (``schema.json`` beside this module, for editors and CI) is generated from these
models by ``json_schema()``; a test fails when the two drift apart. Checks that involve
several keys (which keys each source allows) live in ``loader``, where positions are known.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import pydantic

from controller.domain import durations, transitions

SCHEMA_PATH = Path(__file__).with_name("schema.json")
"""Where the committed JSON Schema lives."""

_DURATION_PATTERN = r"^(0|(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?)$"


def _zero(value: object) -> object:
    """YAML reads ``for: 0`` as a number; zero needs no unit, any other number does."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        durations.coerce(value)  # the one grammar: refuses any number but 0
        return "0"
    return value


def _check_duration(text: str) -> str:
    durations.parse_duration(text)
    return text


Duration = Annotated[
    str,
    pydantic.BeforeValidator(_zero),
    pydantic.AfterValidator(_check_duration),
    pydantic.WithJsonSchema(
        {"type": "string", "pattern": _DURATION_PATTERN, "examples": ["30s", "5m", "1h30m"]}
    ),
]
RuleName = Annotated[str, pydantic.Field(pattern=r"^[A-Za-z][A-Za-z0-9_.:-]{0,127}$")]
LabelName = Annotated[str, pydantic.Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class Source(StrEnum):
    """Where a rule's observations come from (``domain.observations.SourceKind`` values)."""

    PROMETHEUS = "prometheus"
    ALERTMANAGER = "alertmanager"
    KAFKA = "kafka"
    WEBHOOK = "webhook"
    GITLAB = "gitlab"


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


class Condition(_Strict):
    """One condition of an ``all``/``any`` correlation."""

    match: str = pydantic.Field(description="CEL over the event (labels, body, stream).")


class Count(_Strict):
    """True while at least ``threshold`` qualifying events fell within ``within``."""

    threshold: int = pydantic.Field(ge=1)
    within: Duration


class RuleSpec(_Strict):
    """One rule: a Prometheus-style alerting rule, an event rule or an Alertmanager rule."""

    name: RuleName = pydantic.Field(description="Unique in the rule set; the alertname.")
    source: Source = Source.PROMETHEUS
    expr: str | None = pydantic.Field(
        default=None, description="PromQL; every series returned fires."
    )
    stream: str | None = pydantic.Field(
        default=None, description="Only this Kafka topic or webhook path."
    )
    match: str | None = pydantic.Field(
        default=None, description="CEL: which observations this rule reads."
    )
    when: str | None = pydantic.Field(
        default=None, description="CEL: the condition, per matching event."
    )
    all: list[Condition] | None = None
    any: list[Condition] | None = None
    within: Duration | None = pydantic.Field(default=None, description="Window of all/any.")
    count: Count | None = None
    for_: Duration = pydantic.Field(default="0", alias="for")
    keep_firing_for: Duration = "0"
    stale_after: Duration | None = pydantic.Field(
        default=None,
        description="Event rules: no qualifying event for longer counts as false (default 5m).",
    )
    resource: str = pydantic.Field(description="Template, e.g. service/{{ labels.service }}.")
    remediation: str | None = pydantic.Field(
        default=None, description="A plan name in remediations/."
    )
    severity: transitions.Severity = transitions.Severity.WARNING
    cooldown: Duration = "0"
    enabled: bool = True
    group_by: list[LabelName] = pydantic.Field(default_factory=list)
    labels: dict[LabelName, str] = pydantic.Field(default_factory=dict)
    annotations: dict[LabelName, str] = pydantic.Field(default_factory=dict)


class GroupSpec(_Strict):
    """A named list of rules; ``interval`` is how often Prometheus rules are evaluated."""

    name: str = pydantic.Field(min_length=1)
    interval: Duration | None = None
    rules: list[RuleSpec]


class SilenceSpec(_Strict):
    """Transitions whose labels match are not sent between ``starts_at`` and ``ends_at``."""

    name: str = pydantic.Field(min_length=1)
    match: str = pydantic.Field(description="CEL over labels, rule and resource.")
    starts_at: datetime
    ends_at: datetime
    comment: str = ""


class RuleFileSpec(_Strict):
    """One rule file."""

    groups: list[GroupSpec] = pydantic.Field(default_factory=list)
    silences: list[SilenceSpec] = pydantic.Field(default_factory=list)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a rule file, as committed in ``schema.json``."""
    schema = RuleFileSpec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://homeostat.dev/schemas/rule-file.json"
    return schema


def json_schema_text() -> str:
    """``json_schema()`` rendered exactly as the committed file is."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
