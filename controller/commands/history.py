"""``homeostat history EPISODE|RESOURCE``: what happened, read from workflow histories.

The timeline comes from ``operations.histories`` (the same one ``GET /v1/episodes/{id}``
serves); this module only renders it: a table in a terminal, JSON with ``--json``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import markup, table
from temporalio import client as temporal_client

from controller import errors
from controller.commands import remote, session, terminal
from controller.operations import encoding, histories
from controller.operations import timeline_model as tm

_esc = markup.escape


def _pairs(values: dict[str, str] | object) -> str:
    if not isinstance(values, dict) or not values:
        return ""
    return ", ".join(f"{name}={value}" for name, value in sorted(values.items()))


def _playbook(details: tm.PlaybookDetails) -> list[str]:
    lines = [
        f"playbook {details.playbook}"
        + (f" on {', '.join(details.hosts)}" if details.hosts else "")
    ]
    if details.runs > 1:
        lines[0] += f" ({details.runs} runs: failed hosts retried)"
    for result in details.results:
        if result.ok:
            state = "ok, changed" if result.changed else "ok"
        else:
            state = "UNREACHABLE" if result.unreachable else "FAILED"
            if result.failed_task:
                state += f" at {result.failed_task}"
            if result.message:
                state += f": {result.message}"
        lines.append(f"  {result.host}: {state}")
    if details.rc is not None:
        lines.append(f"  rc {details.rc}" + (f", log {details.log_ref}" if details.log_ref else ""))
    return lines


def _scale(details: tm.ScaleDetails) -> list[str]:
    parts = [f"target {details.target}"]
    if details.current is not None:
        parts.append(f"{details.current} replicas")
    if details.metric_value is not None:
        parts.append(f"metric {details.metric_query or '?'} = {details.metric_value:g}")
    if details.desired is not None:
        parts.append(f"decided {details.desired}")
    if details.after is not None:
        parts.append(f"now {details.after}")
    return [", ".join(parts)]


def _approval(details: tm.ApprovalDetails) -> list[str]:
    if details.approved is None:
        lines = [f"asked: {details.message}"] if details.message else []
        if details.approvers:
            lines.append(f"approvers: {', '.join(details.approvers)}")
        return lines
    line = f"by {details.by or '?'} via {details.channel or '?'}"
    return [line + (f": {details.comment}" if details.comment else "")]


def _remediation(details: tm.RemediationDetails) -> list[str]:
    parts = [details.workflow_id] if details.workflow_id else []
    if details.escalation_level:
        parts.append(f"escalation level {details.escalation_level}")
    if details.page_dedup_key:
        parts.append(f"page {details.page_dedup_key}")
    if details.ticket_key:
        parts.append(
            f"ticket {details.ticket_key}"
            + (f" {details.ticket_url}" if details.ticket_url else "")
        )
    return [", ".join(parts)] if parts else []


def _transition(details: tm.TransitionDetails) -> list[str]:
    revision = details.revision or "?"
    lines = [f"rule {details.rule}, severity {details.severity}, revision {revision}"]
    if details.labels:
        lines.append(f"labels: {_pairs(dict(details.labels))}")
    return lines


def _command(details: tm.CommandDetails) -> list[str]:
    lines = [f"$ {' '.join(details.argv)}  -> exit {details.exit_code}"]
    lines += [f"  stdout: {line}" for line in details.stdout_tail.splitlines()[-5:]]
    lines += [f"  stderr: {line}" for line in details.stderr_tail.splitlines()[-5:]]
    return lines


def _ticket(details: tm.TicketDetails) -> list[str]:
    verb = details.status
    if details.created is not None:
        verb = "created" if details.created else "found"
    return [f"ticket {details.key} {verb}" + (f" {details.url}" if details.url else "")]


def _fan_out(details: tm.FanOutDetails) -> list[str]:
    lines = (
        [f"group {details.group}: {', '.join(details.hosts) or 'no hosts'}"]
        if details.group
        else []
    )
    if details.items is not None:
        lines.append(f"{details.succeeded} of {details.items} succeeded")
    if details.failed:
        lines.append(f"failed: {', '.join(details.failed)}")
    if details.not_run:
        lines.append(f"not run: {', '.join(details.not_run)}")
    return lines


def _suffix(text: str, separator: str = ": ") -> str:
    return f"{separator}{text}" if text else ""


_DESCRIBE: dict[type, Callable[[Any], list[str]]] = {
    tm.TransitionDetails: _transition,
    tm.PlaybookDetails: _playbook,
    tm.ScaleDetails: _scale,
    tm.CommandDetails: _command,
    tm.HttpDetails: lambda d: [f"{d.method} {d.url} -> {d.status}"],
    tm.PageDetails: lambda d: [f"dedup key {d.dedup_key}" + _suffix(d.status, " ")],
    tm.TicketDetails: _ticket,
    tm.VerifyDetails: lambda d: [f"{d.condition}: {d.checks} checks, last {d.observed or '-'}"],
    tm.FanOutDetails: _fan_out,
    tm.ApprovalDetails: _approval,
    tm.SuppressionDetails: lambda d: [f"{d.reason.value}: {d.note}"],
    tm.OperatorDetails: lambda d: [f"{d.action} by {d.by or '?'}" + _suffix(d.reason)],
    tm.RemediationDetails: _remediation,
    tm.StepSummary: lambda d: (
        [_pairs({str(k): str(v) for k, v in d.output.items()})] if d.output else []
    ),
}


def describe(details: tm.Details | None) -> list[str]:
    """The facts of an entry, as lines for people."""
    if details is None:
        return []
    return _DESCRIBE[type(details)](details)


def render(timeline: tm.Timeline) -> None:
    """Print a timeline for people."""
    out = terminal.console()
    out.print(
        f"[bold]{timeline.subject} {_esc(timeline.id)}[/bold]  {terminal.styled(timeline.status)}"
    )
    for run in timeline.runs[-3:]:
        out.print(f"  {_esc(run.workflow_id)} run {run.run_id} ({run.status}) {_esc(run.url)}")
    if len(timeline.runs) > 3:  # noqa: PLR2004 - the last three runs are enough to point at
        out.print(f"  ... and {len(timeline.runs) - 3} earlier runs")
    if timeline.episodes:
        out.print("\n[bold]Episodes[/bold]")
        grid = table.Table(box=None, pad_edge=False)
        for column in ("EPISODE", "FIRED", "RESOLVED", "HANDLING", "OUTCOME"):
            grid.add_column(column)
        for line in timeline.episodes:
            handling = line.handling + (f": {line.reason}" if line.reason else "")
            grid.add_row(
                _esc(line.episode),
                terminal.moment(line.fired_at),
                terminal.moment(line.resolved_at),
                _esc(handling),
                terminal.styled(line.outcome),
            )
        out.print(grid)
    out.print("\n[bold]Timeline[/bold]")
    grid = table.Table(box=None, pad_edge=False, show_lines=False)
    grid.add_column("TIME", no_wrap=True)
    grid.add_column("WHAT", no_wrap=True)
    grid.add_column("STATUS", no_wrap=True)
    grid.add_column("DETAILS")
    day = None
    for entry in timeline.entries:
        stamp = terminal.moment(entry.at) if entry.at.date() != day else terminal.clock(entry.at)
        day = entry.at.date()
        lines = [entry.title, *describe(entry.details)]
        if entry.error and entry.error not in entry.title:
            lines.append(f"error: {entry.error}")
        if entry.attempts > 1:
            lines.append(f"{entry.attempts} attempts")
        grid.add_row(stamp, entry.kind.value, terminal.styled(entry.status), _esc("\n".join(lines)))
    out.print(grid)


def history(
    target: Annotated[
        str,
        typer.Argument(
            help="An episode id (rule/kind/name/STAMP) or a resource (kind/name), "
            "or the workflow id of either."
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (the schema in docs/operations.md).")
    ] = False,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Settings file (YAML).", dir_okay=False)
    ] = None,
    api: remote.ApiOption = "",
    token: remote.TokenOption = "",
) -> None:
    """Print the timeline of an episode, or of a resource across its workflow's runs.

    An episode: the transition that opened it, every step with its inputs and outputs,
    approvals, verification, escalations, suppressions and the resolve. A resource: its
    episodes over time and what was decided about each. With --api, through the operator API.
    """
    try:
        histories.parse_target(target)
    except errors.ConfigError as exc:
        session.fail(str(exc), session.USAGE)
    if api:
        path = f"/v1/history/{remote.path_of(target)}"
        found = remote.read(api, token, path, tm.Timeline)
    else:
        settings = session.load_settings(config)
        links = session.links_of(settings)

        async def fetch(client: temporal_client.Client) -> tm.Timeline:
            return await histories.timeline_of(client, target, links=links)

        found = session.run(settings, fetch)
    if as_json:
        typer.echo(encoding.dumps(found))
    else:
        render(found)
