"""Steps that act through activities: playbook, command, HTTP, verify, page, ticket, scale.

Each executor resolves the step's ``{{ }}`` references into structured values, calls its
activity by name with the ``activity_io`` dataclass, and turns the answer into a ``Done``:
the outcome, one line for people, and a few structured facts for the record and for the
``when`` conditions of later steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from controller.plans import spec, templates
    from controller.workflows import activity_io as io
    from controller.workflows import remediation_io, scaling, slack_io, telemetry

T = TypeVar("T")
Results = Mapping[str, remediation_io.StepRecord]
"""Earlier steps of a list by id, as ``when`` conditions and templates see them."""
_SHORT = 500
_DEFAULT_TIMEOUTS: Mapping[str, timedelta] = {
    "playbook": timedelta(minutes=30),
    "command": timedelta(minutes=10),
    "http": timedelta(minutes=1),
    "page": timedelta(minutes=1),
    "ticket": timedelta(minutes=1),
    "scale": timedelta(minutes=5),
    "for_each": timedelta(minutes=1),
    "slack": timedelta(minutes=1),
}
_PLAYBOOK_HEARTBEAT = timedelta(minutes=2)


@dataclass(frozen=True, slots=True, kw_only=True)
class Done:
    """How a step ended: outcome, summary and structured output."""

    outcome: remediation_io.StepOutcome
    summary: str = ""
    output: Mapping[str, Any] = field(default_factory=dict)


def failed(summary: str, **output: Any) -> Done:
    """A failed step."""
    return Done(outcome=remediation_io.StepOutcome.FAILED, summary=summary, output=output)


def succeeded(summary: str, **output: Any) -> Done:
    """A successful step."""
    return Done(outcome=remediation_io.StepOutcome.SUCCEEDED, summary=summary, output=output)


def step_values(results: Results) -> dict[str, dict[str, Any]]:
    """Each earlier step as ``{"ok", "outcome", "seconds", "output"}``: what ``steps.ID`` means."""
    return {
        name: {
            "ok": record.ok,
            "outcome": record.outcome.value,
            "seconds": round((record.finished_at - record.started_at).total_seconds()),
            "output": dict(record.output),
        }
        for name, record in results.items()
    }


class Env:
    """What the steps of one episode share: its input, variables and what it produced."""

    def __init__(self, request: remediation_io.RemediationInput) -> None:
        """Derive the episode's variables; labels of a declared variable's name win."""
        self.request = request
        self.plan = request.plan
        self.fired = request.fired
        labels = request.fired.labels
        self.vars = {
            name: labels.get(name, default) for name, default in self.plan.variables.items()
        }
        self.page_dedup_key = ""
        self.ticket_key = ""
        self.ticket_url = ""
        self.scaler = request.scaler

    def scope(self, item: str | None, results: Results | None = None) -> templates.Scope:
        """The values ``{{ }}`` references see (``results``: earlier steps of the list)."""
        return templates.Scope(
            labels=self.fired.labels,
            annotations=self.fired.annotations,
            vars=self.vars,
            resource=self.request.resource,
            episode=self.request.episode,
            rule=self.fired.rule,
            severity=self.fired.severity.value,
            item=item,
            steps=step_values(results or {}),
        )

    def context(self, step: str) -> io.ActivityContext:
        """The activity context of the step at path ``step``."""
        return io.ActivityContext(
            resource=self.request.resource,
            episode=self.request.episode,
            rule=self.fired.rule,
            plan=self.plan.name,
            step=step,
        )

    def variables(self, item: str | None) -> dict[str, str]:
        """Every variable as a flat string map (labels, then declared variables)."""
        found = {**self.fired.labels, **self.vars}
        found.update(resource=self.request.resource, episode=self.request.episode)
        found["rule"] = self.fired.rule
        if item is not None:
            found["item"] = item
        return found

    def cel_variables(
        self, results: Mapping[str, remediation_io.StepRecord], item: str | None
    ) -> dict[str, Any]:
        """What ``when`` and ``verify.cel`` conditions see."""
        found: dict[str, Any] = {
            "labels": dict(self.fired.labels),
            "annotations": dict(self.fired.annotations),
            "vars": dict(self.vars),
            "resource": self.request.resource,
            "episode": self.request.episode,
            "rule": self.fired.rule,
            "severity": self.fired.severity.value,
            "steps": step_values(results),
        }
        if item is not None:
            found["item"] = item
        return found


async def call(
    name: str,
    arg: Any,
    result_type: type[T],
    step: spec.StepBase,
    *,
    default: timedelta,
    heartbeat: timedelta | None = None,
) -> T:
    """Run activity ``name`` with the step's timeouts (``default`` when it sets none)."""
    retry = step.retry
    result: T = await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=step.timeout or default,
        heartbeat_timeout=step.heartbeat or heartbeat,
        retry_policy=RetryPolicy(
            initial_interval=retry.initial_interval,
            backoff_coefficient=retry.backoff,
            maximum_interval=retry.max_interval,
            maximum_attempts=retry.max_attempts,
            non_retryable_error_types=[io.PERMANENT_ERROR],
        ),
    )
    return result


def default_timeout(kind: str) -> timedelta:
    """The start-to-close timeout of a step type's activity when the plan sets none."""
    return _DEFAULT_TIMEOUTS.get(kind, timedelta(minutes=5))


async def playbook(
    env: Env, step: spec.PlaybookStep, path: str, item: str | None, results: Results
) -> Done:
    """Run a playbook, then re-run it on the failed hosts as often as the plan allows."""
    began = workflow.now()
    scope = env.scope(item, results)
    extra_vars = dict(templates.render_data(dict(step.vars), scope))
    extra_vars.update(
        homeostat_resource=env.request.resource,
        homeostat_episode=env.request.episode,
        homeostat_rule=env.fired.rule,
        homeostat_labels=dict(env.fired.labels),
    )
    if item is not None:
        extra_vars["homeostat_item"] = item
    request = io.RunPlaybookInput(
        context=env.context(path),
        playbook=step.playbook,
        hosts=tuple(templates.render(host, scope) for host in step.hosts),
        groups=tuple(templates.render(group, scope) for group in step.groups),
        extra_vars=extra_vars,
        check=step.check,
        tags=step.tags,
    )
    timeout = default_timeout("playbook")
    out = await call(
        io.RUN_PLAYBOOK,
        request,
        io.RunPlaybookOutput,
        step,
        default=timeout,
        heartbeat=_PLAYBOOK_HEARTBEAT,
    )
    by_host = {result.host: result for result in out.hosts}
    for attempt in range(1, step.retry_failed_hosts + 1):
        if out.ok or not out.failed_hosts:
            break
        retry = io.RunPlaybookInput(
            context=env.context(f"{path}#failed-hosts-{attempt}"),
            playbook=request.playbook,
            hosts=request.hosts,
            groups=request.groups,
            limit=out.failed_hosts,
            extra_vars=request.extra_vars,
            check=request.check,
            tags=request.tags,
        )
        out = await call(
            io.RUN_PLAYBOOK,
            retry,
            io.RunPlaybookOutput,
            step,
            default=timeout,
            heartbeat=_PLAYBOOK_HEARTBEAT,
        )
        by_host.update({result.host: result for result in out.hosts})
    bad = sorted(host for host, result in by_host.items() if not result.ok)
    changed = sorted(host for host, result in by_host.items() if result.changed)
    _count_hosts(list(by_host.values()))
    output: dict[str, Any] = {
        "hosts": len(by_host),
        "succeeded": len(by_host) - len(bad),
        "failed": len(bad),
        "failed_hosts": bad,
        "changed_hosts": changed,
        "rc": out.rc,
        "log_ref": out.log_ref,
    }
    if out.attempt > 1:
        # A retried run resumed from its last heartbeat: these hosts were all it ran.
        output["attempts"] = out.attempt
        output["retried_hosts"] = sorted(out.ran)
    if bad or not out.ok:
        first = by_host[bad[0]] if bad else None
        why = (
            f": {first.host} {first.failed_task or 'unreachable'} {first.message}"[:_SHORT]
            if first
            else ""
        )
        return failed(
            f"{step.playbook} failed on {len(bad)} of {len(by_host)} hosts{_took(began)}{why}",
            **output,
        )
    return succeeded(
        f"{step.playbook} ok on {len(by_host)} hosts, {len(changed)} changed{_took(began)}",
        **output,
    )


def _took(began: datetime) -> str:
    """`` in 41s``: how long a step has taken so far, for its summary."""
    return f" in {round((workflow.now() - began).total_seconds())}s"


def _count_hosts(results: list[io.HostResult]) -> None:
    unreachable = sum(1 for result in results if result.unreachable)
    failed_hosts = sum(1 for result in results if not result.ok and not result.unreachable)
    changed = sum(1 for result in results if result.ok and result.changed)
    telemetry.playbook_hosts("unreachable", unreachable)
    telemetry.playbook_hosts("failed", failed_hosts)
    telemetry.playbook_hosts("changed", changed)
    telemetry.playbook_hosts("ok", len(results) - unreachable - failed_hosts - changed)


async def command(
    env: Env, step: spec.CommandStep, path: str, item: str | None, results: Results
) -> Done:
    """Run a command; values arrive as environment variables, never in its argv."""
    scope = env.scope(item, results)
    request = io.RunCommandInput(
        context=env.context(path),
        argv=step.argv,
        env={name: templates.render(value, scope) for name, value in step.env.items()},
        variables=env.variables(item),
        cwd=step.cwd,
        ok_exit_codes=step.ok_exit_codes,
    )
    out = await call(
        io.RUN_COMMAND, request, io.RunCommandOutput, step, default=default_timeout("command")
    )
    output: dict[str, Any] = {
        "exit_code": out.exit_code,
        "stdout": out.stdout[-_SHORT:],
        "stderr": out.stderr[-_SHORT:],
        "log_ref": out.log_ref,
    }
    if out.stdout_json is not None:
        output["json"] = out.stdout_json
    if not out.ok:
        return failed(f"{step.argv[0]} exited with {out.exit_code}", **output)
    return succeeded(f"{step.argv[0]} exited with {out.exit_code}", **output)


def resolve_request(http: spec.HttpRequest, scope: templates.Scope) -> spec.HttpRequest:
    """An HTTP request with its references resolved (URL parts percent-encoded)."""
    return spec.HttpRequest(
        method=http.method,
        url=templates.render(http.url, scope, escape=templates.url_part),
        headers={name: templates.render(value, scope) for name, value in http.headers.items()},
        params={name: templates.render(value, scope) for name, value in http.params.items()},
        json_body=templates.render_data(http.json_body, scope),
        credentials=http.credentials,
        expect_status=http.expect_status,
    )


async def http(
    env: Env, step: spec.HttpStep, path: str, item: str | None, results: Results
) -> Done:
    """Make one HTTP request."""
    request = io.HttpCallInput(
        context=env.context(path), request=resolve_request(step.request, env.scope(item, results))
    )
    out = await call(
        io.HTTP_CALL, request, io.HttpCallOutput, step, default=default_timeout("http")
    )
    output = {"status": out.status, "json": out.json_body, "text": out.text[-_SHORT:]}
    line = f"{step.request.method} {request.request.url} answered {out.status}"
    return succeeded(line, **output) if out.ok else failed(line, **output)


async def verify(
    env: Env,
    step: spec.VerifyStep,
    path: str,
    item: str | None,
    results: Mapping[str, remediation_io.StepRecord],
) -> Done:
    """Poll a PromQL or CEL condition until it holds or its time is up."""
    timeout = step.within + max(step.interval, timedelta(minutes=1))
    heartbeat = step.interval + timedelta(seconds=30)
    out: io.VerifyOutput
    if step.promql:
        query = templates.render_promql(step.promql, env.scope(item, results))
        request_promql = io.VerifyPromqlInput(
            context=env.context(path), query=query, within=step.within, interval=step.interval
        )
        out = await call(
            io.VERIFY_PROMQL,
            request_promql,
            io.VerifyOutput,
            step,
            default=timeout,
            heartbeat=heartbeat,
        )
        what = query
    else:
        request_cel = io.VerifyCelInput(
            context=env.context(path),
            expression=step.cel,
            variables=env.cel_variables(results, item),
            http=resolve_request(step.http, env.scope(item, results)) if step.http else None,
            within=step.within,
            interval=step.interval,
        )
        out = await call(
            io.VERIFY_CEL, request_cel, io.VerifyOutput, step, default=timeout, heartbeat=heartbeat
        )
        what = step.cel
    output = {"checks": out.checks, "observed": out.observed[-_SHORT:]}
    if out.ok:
        return succeeded(f"holds: {what}"[:_SHORT], **output)
    return failed(f"did not hold within {step.within}: {what}"[:_SHORT], **output)


async def page(
    env: Env, step: spec.PageStep, path: str, item: str | None, results: Results
) -> Done:
    """Page with the episode's dedup key (a second page of the episode is the same incident)."""
    scope = env.scope(item, results)
    summary = templates.render(step.summary, scope, strict=False) or _default_summary(env)
    links = tuple(
        io.Link(href=href, text=name)
        for name, href in sorted(env.fired.annotations.items())
        if name.endswith("_url") and href.startswith(("http://", "https://"))
    )
    request = io.PageTriggerInput(
        context=env.context(path),
        dedup_key=io.page_dedup_key(env.request.episode),
        summary=summary,
        severity=step.severity or env.fired.severity,
        source=env.request.resource,
        component=env.fired.rule,
        routing=step.routing,
        details={
            "labels": dict(env.fired.labels),
            **_render_loose(step.details, scope),
        },
        links=links,
    )
    out = await call(io.PAGE_TRIGGER, request, io.PageOutput, step, default=default_timeout("page"))
    env.page_dedup_key = out.dedup_key or request.dedup_key
    telemetry.page_sent("trigger")
    return succeeded(f"paged: {summary}"[:_SHORT], dedup_key=env.page_dedup_key, status=out.status)


async def ticket(
    env: Env, step: spec.TicketStep, path: str, item: str | None, results: Results
) -> Done:
    """Open the episode's ticket, or find the one opened before (by its episode label)."""
    scope = env.scope(item, results)
    summary = templates.render(step.summary, scope, strict=False) or _default_summary(env)
    description = templates.render(step.description, scope, strict=False)
    request = io.TicketCreateInput(
        context=env.context(path),
        episode_label=io.ticket_label(env.request.episode),
        project=step.project,
        summary=summary,
        description=description
        or env.fired.annotations.get("description", "")
        or f"Episode {env.request.episode}",
        issue_type=step.issue_type,
        priority=step.priority,
        labels=step.labels,
    )
    out = await call(
        io.TICKET_CREATE, request, io.TicketOutput, step, default=default_timeout("ticket")
    )
    env.ticket_key = out.key
    env.ticket_url = out.url
    verb = "opened" if out.created else "found"
    telemetry.ticket_handled("opened" if out.created else "found")
    return succeeded(f"{verb} ticket {out.key}", key=out.key, url=out.url, created=out.created)


async def slack(
    env: Env, step: spec.SlackStep, path: str, item: str | None, results: Results
) -> Done:
    """Post the step's message to Slack (values escaped: no mention or link hides in them)."""
    text = templates.render(
        step.text, env.scope(item, results), strict=False, escape=templates.slack_text
    )
    request = slack_io.SlackNotifyInput(context=env.context(path), channel=step.channel, text=text)
    out = await call(
        io.SLACK_NOTIFY, request, slack_io.SlackMessage, step, default=default_timeout("slack")
    )
    return succeeded(
        f"posted to {step.channel}: {text}"[:_SHORT], channel=out.channel, ts=out.ts, text=text
    )


def _default_summary(env: Env) -> str:
    summary = env.fired.annotations.get("summary", "")
    return f"{env.fired.rule} on {env.request.resource}" + (f": {summary}" if summary else "")


def _render_loose(value: Mapping[str, Any], scope: templates.Scope) -> dict[str, Any]:
    return {
        name: templates.render(item, scope, strict=False) if isinstance(item, str) else item
        for name, item in value.items()
    }


async def scale(
    env: Env, step: spec.ScaleStep, path: str, item: str | None, results: Results
) -> Done:
    """Read the replica count, decide the new one, and set it if it differs."""
    context = env.context(path)
    timeout = default_timeout("scale")
    read = await call(
        io.SCALE_READ,
        io.ScaleReadInput(context=context, target=step.target),
        io.ScaleReadOutput,
        step,
        default=timeout,
    )
    current = read.replicas
    metric: float | None = None
    if step.replicas is not None:
        desired = step.replicas
    elif step.by is not None:
        desired = max(0, current + step.by)
    elif step.policy is not None:
        query = templates.render_promql(step.policy.metric, env.scope(item, results))
        sample = await call(
            io.QUERY_METRIC,
            io.QueryMetricInput(context=context, query=query),
            io.QueryMetricOutput,
            step,
            default=timeout,
        )
        if sample.value is None:
            return failed(f"no data for {query}", current=current)
        metric = sample.value
        desired, env.scaler = scaling.recommend(
            target=step.target.name,
            current=current,
            metric=metric,
            policy=step.policy,
            history=env.scaler,
            now=workflow.now(),
        )
    else:  # pragma: no cover - the loader requires one of the three
        return failed("scale step without replicas, by or policy")
    if desired == current:
        return succeeded(f"{step.target.name} stays at {current}", current=current, metric=metric)
    out = await call(
        io.SCALE,
        io.ScaleInput(context=context, target=step.target, replicas=desired, previous=current),
        io.ScaleOutput,
        step,
        default=timeout,
    )
    env.scaler = scaling.record_change(
        env.scaler, target=step.target.name, at=workflow.now(), before=current, after=out.replicas
    )
    return succeeded(
        f"{step.target.name} scaled {current} -> {out.replicas}",
        before=current,
        after=out.replicas,
        metric=metric,
    )
