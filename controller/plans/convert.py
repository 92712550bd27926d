"""Validated plan models into the frozen ``spec`` dataclasses that workflows receive."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypedDict

from controller.plans import model, spec


def to_spec(plan: model.PlanModel, *, name: str, source: str, revision: str) -> spec.Plan:
    """The workflow-side form of a validated plan file."""
    return spec.Plan(
        name=name,
        description=plan.description,
        source=source,
        revision=revision,
        cooldown=plan.cooldown,
        budget=spec.Budget(runs=plan.budget.runs, per=plan.budget.per) if plan.budget else None,
        concurrency=plan.concurrency,
        timeout=plan.timeout,
        variables=dict(plan.variables),
        steps=steps(plan.steps),
        escalation=tuple(_rung(rung, index) for index, rung in enumerate(plan.escalation, 1)),
        on_resolve=spec.OnResolve(
            resolve_page=plan.on_resolve.resolve_page,
            ticket=plan.on_resolve.ticket,
            comment=plan.on_resolve.comment,
            cancel_remediation=plan.on_resolve.cancel_remediation,
        ),
    )


def step_id(step: model.StepModel, index: int) -> str:
    """The step's id: its own, or ``step_N`` for the N-th step (1-based) of its list."""
    return step.id or f"step_{index}"


def steps(items: list[model.StepModel]) -> tuple[spec.Step, ...]:
    """Convert a list of steps, numbering those without an id."""
    return tuple(_step(item, index) for index, item in enumerate(items, 1))


class _Common(TypedDict):
    id: str
    when: str
    timeout: timedelta | None
    heartbeat: timedelta | None
    retry: spec.Retry
    on_failure: spec.OnFailure


def _common(step: model.StepModel, index: int) -> _Common:
    return {
        "id": step_id(step, index),
        "when": step.when,
        "timeout": step.timeout,
        "heartbeat": step.heartbeat,
        "retry": spec.Retry(
            max_attempts=step.retry.max_attempts,
            initial_interval=step.retry.initial_interval,
            backoff=step.retry.backoff,
            max_interval=step.retry.max_interval,
        ),
        "on_failure": step.on_failure,
    }


def _step(step: model.StepModel, index: int) -> spec.Step:
    common = _common(step, index)
    kind = step.kind
    return _CONVERTERS[kind](getattr(step, kind), common)


def _playbook(book: model.PlaybookModel, common: _Common) -> spec.Step:
    return spec.PlaybookStep(
        playbook=book.path,
        hosts=tuple(book.hosts),
        groups=tuple(book.groups),
        vars=dict(book.vars),
        check=book.check,
        tags=tuple(book.tags),
        retry_failed_hosts=book.retry_failed_hosts,
        **common,
    )


def _scale(scale: model.ScaleModel, common: _Common) -> spec.Step:
    return spec.ScaleStep(
        target=_target(scale.target),
        replicas=scale.replicas,
        by=scale.by,
        policy=_policy(scale.policy) if scale.policy else None,
        **common,
    )


def _command(command: model.CommandModel, common: _Common) -> spec.Step:
    return spec.CommandStep(
        argv=tuple(command.argv),
        env=dict(command.env),
        cwd=command.cwd,
        ok_exit_codes=tuple(command.ok_exit_codes),
        **common,
    )


def _http(http: model.HttpRequestModel, common: _Common) -> spec.Step:
    return spec.HttpStep(request=request(http), **common)


def _approve(approve: model.ApproveModel, common: _Common) -> spec.Step:
    return spec.ApproveStep(
        deadline=approve.deadline,
        on_timeout=approve.on_timeout,
        on_deny=approve.on_deny,
        message=approve.message,
        approvers=tuple(approve.approvers),
        slack=approve.slack,
        **common,
    )


def _verify(verify: model.VerifyModel, common: _Common) -> spec.Step:
    return spec.VerifyStep(
        promql=verify.promql,
        cel=verify.cel,
        http=request(verify.http) if verify.http else None,
        within=verify.within,
        interval=verify.interval,
        **common,
    )


def _wait(wait: model.WaitModel, common: _Common) -> spec.Step:
    return spec.WaitStep(duration=wait.duration, **common)


def _for_each(fan: model.ForEachModel, common: _Common) -> spec.Step:
    return spec.ForEachStep(
        hosts=fan.hosts,
        items=tuple(fan.items),
        items_from=fan.items_from,
        concurrency=fan.concurrency,
        steps=steps(fan.steps),
        fail_fast=fan.fail_fast,
        min_success=fan.min_success,
        **common,
    )


def _page(page: model.PageModel, common: _Common) -> spec.PageStep:
    return spec.PageStep(
        summary=page.summary,
        severity=page.severity,
        routing=page.routing,
        details=dict(page.details),
        **common,
    )


def _ticket(ticket: model.TicketModel, common: _Common) -> spec.TicketStep:
    return spec.TicketStep(
        project=ticket.project,
        summary=ticket.summary,
        description=ticket.description,
        issue_type=ticket.issue_type,
        priority=ticket.priority,
        labels=tuple(ticket.labels),
        **common,
    )


def _slack(slack: model.SlackModel, common: _Common) -> spec.SlackStep:
    return spec.SlackStep(channel=slack.channel, text=slack.text, **common)


def _rung(rung: model.EscalationModel, index: int) -> spec.EscalationLevel:
    common = _Common(
        id=f"escalation_{index}",
        when="",
        timeout=None,
        heartbeat=None,
        retry=spec.Retry(),
        on_failure=spec.OnFailure.CONTINUE,
    )
    action: spec.EscalationAction
    if rung.page is not None:
        action = _page(rung.page, common)
    elif rung.ticket is not None:
        action = _ticket(rung.ticket, common)
    else:  # pragma: no cover - the model guarantees one action
        raise ValueError("an escalation rung without an action")
    return spec.EscalationLevel(after=rung.after, action=action)


def request(http: model.HttpRequestModel) -> spec.HttpRequest:
    """Convert an HTTP request."""
    return spec.HttpRequest(
        method=http.method,
        url=http.url,
        headers=dict(http.headers),
        params=dict(http.params),
        json_body=http.body,
        credentials=http.credentials,
        expect_status=tuple(http.expect_status),
    )


def _target(target: model.ScaleTargetModel) -> spec.ScaleTarget:
    return spec.ScaleTarget(
        name=target.name,
        actuator=target.actuator,
        playbook=target.playbook,
        argv=tuple(target.argv),
        read_argv=tuple(target.read_argv),
        url=target.url,
        credentials=target.credentials,
        variables=dict(target.variables),
    )


def _behavior(behavior: model.ScaleBehaviorModel) -> spec.ScaleBehavior:
    return spec.ScaleBehavior(
        stabilization=behavior.stabilization,
        policies=tuple(
            spec.RatePolicy(
                kind=spec.RatePolicyKind.PODS if rate.pods else spec.RatePolicyKind.PERCENT,
                value=rate.pods or rate.percent or 0,
                period=rate.period,
            )
            for rate in behavior.policies
        ),
        select=behavior.select,
    )


def _policy(policy: model.ScalePolicyModel) -> spec.ScalePolicy:
    return spec.ScalePolicy(
        metric=policy.metric,
        target=policy.target,
        min_replicas=policy.min_replicas,
        max_replicas=policy.max_replicas,
        tolerance=policy.tolerance,
        scale_up=_behavior(policy.scale_up),
        scale_down=_behavior(policy.scale_down),
    )


_CONVERTERS: dict[str, Callable[[Any, _Common], spec.Step]] = {
    "playbook": _playbook,
    "scale": _scale,
    "command": _command,
    "http": _http,
    "approve": _approve,
    "verify": _verify,
    "page": _page,
    "ticket": _ticket,
    "wait": _wait,
    "for_each": _for_each,
    "slack": _slack,
}
