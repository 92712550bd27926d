"""The remediation-plan file format, as pydantic models (``extra="forbid"``: a typo is an error).

A plan file ``remediations/NAME.yaml``::

    description: Restart the web service when it stops answering
    cooldown: 5m
    budget: {runs: 3, per: 1h}
    concurrency: queue            # queue | merge | skip
    steps:
      - id: restart
        playbook: {path: restart_service.yml, vars: {service: "{{ labels.service }}"}}
      - verify: {promql: 'up{instance="{{ labels.instance }}"} == 1', within: 5m}
    escalation:
      - page: "{{ labels.service }} is still down after a restart"
      - ticket: {project: OPS, summary: "{{ labels.service }} down"}
        after: 30m

A step is a mapping with exactly one step-type key (its value is the step's settings, or a
shorthand: ``playbook: FILE``, ``command: [ARGV]``, ``wait: DURATION``, ``page: SUMMARY``,
``approve: MESSAGE``) and the common keys ``id``, ``when``, ``timeout``, ``heartbeat``,
``retry`` and ``on_failure``. ``to_spec`` turns a validated model into the frozen
``controller.plans.spec`` dataclasses that workflows run.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from controller.domain import durations, transitions
from controller.plans import spec

STEP_TYPES = (
    "playbook",
    "scale",
    "command",
    "http",
    "approve",
    "verify",
    "page",
    "ticket",
    "wait",
    "for_each",
    "slack",
)
COMMON_KEYS = ("id", "when", "timeout", "heartbeat", "retry", "on_failure")
STEP_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"


def _duration(value: object) -> object:
    """The one duration grammar of rules, plans and settings (a number needs a unit)."""
    return durations.coerce(value)


Duration = Annotated[timedelta, pydantic.BeforeValidator(_duration)]
"""``30s``, ``5m``, ``1h30m`` (or a number of seconds)."""


def _shorthand(key: str) -> pydantic.BeforeValidator:
    """Accept a scalar (or list) for a settings mapping, as ``{key: value}``."""

    def expand(value: object) -> object:
        return value if isinstance(value, dict) or value is None else {key: value}

    return pydantic.BeforeValidator(expand)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryModel(_Model):
    """``retry: 3`` or ``retry: {max_attempts, initial_interval, backoff, max_interval}``."""

    max_attempts: int = Field(3, ge=1, le=100)
    initial_interval: Duration = timedelta(seconds=5)
    backoff: float = Field(2.0, ge=1.0, le=10.0)
    max_interval: Duration = timedelta(minutes=2)


class HttpRequestModel(_Model):
    """An HTTP request; ``body`` is JSON."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    url: str = Field(pattern=r"^https?://")
    headers: dict[str, str] = {}
    params: dict[str, str] = {}
    body: Any = None
    credentials: str = ""
    expect_status: list[Annotated[int, Field(ge=100, le=599)]] = []


class PlaybookModel(_Model):
    """``playbook: FILE`` or ``playbook: {path, hosts, groups, vars, check, tags, ...}``."""

    path: str = Field(min_length=1)
    hosts: list[str] = []
    groups: list[str] = []
    vars: dict[str, Any] = {}
    check: bool = False
    tags: list[str] = []
    retry_failed_hosts: int = Field(0, ge=0, le=10)


class ScaleTargetModel(_Model):
    """The thing being scaled and its actuator."""

    name: str
    actuator: spec.Actuator
    playbook: str = ""
    argv: list[str] = []
    read_argv: list[str] = []
    url: str = ""
    credentials: str = ""
    variables: dict[str, Any] = {}

    @pydantic.model_validator(mode="after")
    def _actuator_has_its_settings(self) -> ScaleTargetModel:
        needed = {
            spec.Actuator.PLAYBOOK: ("playbook", self.playbook),
            spec.Actuator.COMMAND: ("argv", self.argv),
            spec.Actuator.HTTP: ("url", self.url),
        }[self.actuator]
        if not needed[1]:
            raise ValueError(f"actuator {self.actuator.value!r} needs {needed[0]!r}")
        return self


class RatePolicyModel(_Model):
    """``{pods: 4, period: 1m}`` or ``{percent: 100, period: 15s}``."""

    pods: int | None = Field(None, ge=1)
    percent: int | None = Field(None, ge=1)
    period: Duration

    @pydantic.model_validator(mode="after")
    def _one_kind(self) -> RatePolicyModel:
        if (self.pods is None) == (self.percent is None):
            raise ValueError("a rate policy sets exactly one of 'pods' and 'percent'")
        return self


class ScaleBehaviorModel(_Model):
    """One direction's stabilization window and rate policies."""

    stabilization: Duration = timedelta(0)
    policies: list[RatePolicyModel] = []
    select: spec.SelectPolicy = spec.SelectPolicy.MAX


class ScalePolicyModel(_Model):
    """The HPA rule."""

    metric: str = Field(min_length=1)
    target: float = Field(gt=0)
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(ge=1)
    tolerance: float = Field(0.1, ge=0, lt=1)
    scale_up: ScaleBehaviorModel = ScaleBehaviorModel()
    scale_down: ScaleBehaviorModel = ScaleBehaviorModel(stabilization=timedelta(minutes=5))

    @pydantic.model_validator(mode="after")
    def _bounds(self) -> ScalePolicyModel:
        if self.min_replicas > self.max_replicas:
            raise ValueError("min_replicas is above max_replicas")
        return self


class ScaleModel(_Model):
    """``scale: {target, replicas | by | policy}``."""

    target: ScaleTargetModel
    replicas: int | None = Field(None, ge=0)
    by: int | None = None
    policy: ScalePolicyModel | None = None

    @pydantic.model_validator(mode="after")
    def _one_way(self) -> ScaleModel:
        if sum(value is not None for value in (self.replicas, self.by, self.policy)) != 1:
            raise ValueError("a scale step sets exactly one of 'replicas', 'by' and 'policy'")
        return self


class CommandModel(_Model):
    """``command: [ARGV]`` or ``command: {argv, env, cwd, ok_exit_codes}``."""

    argv: list[str] = Field(min_length=1)
    env: dict[str, str] = {}
    cwd: str = ""
    ok_exit_codes: list[int] = [0]

    @pydantic.field_validator("argv")
    @classmethod
    def _literal_argv(cls, argv: list[str]) -> list[str]:
        for arg in argv:
            if "{{" in arg:
                raise ValueError(
                    "argv is literal: values reach a command as environment variables "
                    "('env', or HOMEOSTAT_VAR_<NAME>), never inside its command line"
                )
        return argv


class ApproveModel(_Model):
    """``approve: MESSAGE`` or ``approve: {message, deadline, on_timeout, on_deny, ...}``."""

    message: str = ""
    deadline: Duration = timedelta(hours=1)
    on_timeout: spec.OnTimeout = spec.OnTimeout.ESCALATE
    on_deny: spec.OnDeny = spec.OnDeny.STOP
    approvers: list[str] = []
    slack: str = pydantic.Field(default="", pattern=r"^([#@]?[\w.-]{1,80})?$")


class VerifyModel(_Model):
    """``verify: {promql | cel, http, within, interval}``."""

    promql: str = ""
    cel: str = ""
    http: HttpRequestModel | None = None
    within: Duration = timedelta(minutes=5)
    interval: Duration = timedelta(seconds=15)

    @pydantic.model_validator(mode="after")
    def _one_condition(self) -> VerifyModel:
        if bool(self.promql) == bool(self.cel):
            raise ValueError("a verify step sets exactly one of 'promql' and 'cel'")
        if self.http is not None and not self.cel:
            raise ValueError("'http' feeds a 'cel' condition (as 'response')")
        return self


class PageModel(_Model):
    """``page: SUMMARY`` or ``page: {summary, severity, routing, details}``."""

    summary: str = ""
    severity: transitions.Severity | None = None
    routing: str = ""
    details: dict[str, Any] = {}


class TicketModel(_Model):
    """``ticket: {project, summary, description, issue_type, priority, labels}``."""

    project: str = Field(min_length=1)
    summary: str = ""
    description: str = ""
    issue_type: str = "Incident"
    priority: str = ""
    labels: list[str] = []


class SlackModel(_Model):
    """``slack: {channel, text}``: post a message to a Slack channel."""

    channel: str = pydantic.Field(pattern=r"^[#@]?[\w.-]{1,80}$")
    text: str = Field(min_length=1)


class WaitModel(_Model):
    """``wait: DURATION``."""

    duration: Duration


class ForEachModel(_Model):
    """``for_each: {hosts | items | items_from, concurrency, steps, fail_fast, min_success}``."""

    hosts: str = ""
    items: list[str] = []
    items_from: str = ""
    concurrency: int = Field(1, ge=1, le=100)
    steps: list[StepModel] = Field(min_length=1)
    fail_fast: bool = False
    min_success: float = Field(1.0, ge=0, le=1)

    @pydantic.model_validator(mode="after")
    def _one_source(self) -> ForEachModel:
        if sum(bool(value) for value in (self.hosts, self.items, self.items_from)) != 1:
            raise ValueError("a for_each sets exactly one of 'hosts', 'items' and 'items_from'")
        return self


class StepModel(_Model):
    """One step: exactly one step-type key, plus the common keys."""

    id: str | None = Field(None, pattern=STEP_ID_PATTERN)
    when: str = ""
    timeout: Duration | None = None
    heartbeat: Duration | None = None
    retry: Annotated[RetryModel, _shorthand("max_attempts")] = RetryModel()
    on_failure: spec.OnFailure = spec.OnFailure.ESCALATE
    playbook: Annotated[PlaybookModel | None, _shorthand("path")] = None
    scale: ScaleModel | None = None
    command: Annotated[CommandModel | None, _shorthand("argv")] = None
    http: HttpRequestModel | None = None
    approve: Annotated[ApproveModel | None, _shorthand("message")] = None
    verify: VerifyModel | None = None
    page: Annotated[PageModel | None, _shorthand("summary")] = None
    ticket: TicketModel | None = None
    wait: Annotated[WaitModel | None, _shorthand("duration")] = None
    for_each: ForEachModel | None = None
    slack: SlackModel | None = None

    @pydantic.model_validator(mode="after")
    def _one_type(self) -> StepModel:
        present = [name for name in STEP_TYPES if getattr(self, name) is not None]
        if len(present) != 1:
            raise ValueError(
                "a step has exactly one step type, found "
                + (", ".join(present) if present else "none")
                + " (step types: "
                + ", ".join(STEP_TYPES)
                + ")"
            )
        return self

    @property
    def kind(self) -> str:
        """The step type."""
        return next(name for name in STEP_TYPES if getattr(self, name) is not None)


class EscalationModel(_Model):
    """One rung: ``page`` or ``ticket``, ``after`` a delay."""

    after: Duration = timedelta(0)
    page: Annotated[PageModel | None, _shorthand("summary")] = None
    ticket: TicketModel | None = None

    @pydantic.model_validator(mode="after")
    def _one_action(self) -> EscalationModel:
        if (self.page is None) == (self.ticket is None):
            raise ValueError("an escalation rung is exactly one of 'page' and 'ticket'")
        return self


class BudgetModel(_Model):
    """``budget: {runs: 3, per: 1h}``."""

    runs: int = Field(ge=1)
    per: Duration


class OnResolveModel(_Model):
    """What happens when the episode resolves."""

    resolve_page: bool = True
    ticket: spec.TicketOnResolve = spec.TicketOnResolve.RESOLVE
    comment: str = "Resolved: the condition no longer holds."
    cancel_remediation: bool = False


class PlanModel(_Model):
    """A whole plan file."""

    name: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    description: str = ""
    cooldown: Duration = timedelta(0)
    budget: BudgetModel | None = None
    concurrency: spec.Concurrency = spec.Concurrency.QUEUE
    timeout: Duration = timedelta(hours=2)
    variables: dict[str, str] = {}
    steps: list[StepModel] = []
    escalation: list[EscalationModel] = []
    on_resolve: OnResolveModel = OnResolveModel()

    @pydantic.model_validator(mode="after")
    def _does_something(self) -> PlanModel:
        if not self.steps and not self.escalation:
            raise ValueError("a plan has 'steps', 'escalation' or both")
        return self


ForEachModel.model_rebuild()
