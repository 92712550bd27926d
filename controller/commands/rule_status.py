"""``homeostat rules status``: the running Homeostat's live rule state, from its API.

The rules engine lives in the running ingest process, so this asks it: ``GET /v1/alerts``
(every condition pending or firing) and ``GET /v1/rules`` (every rule's last evaluation,
duration and error), with an operator token. Without ``--api`` it asks the API the
settings describe (``http.public_url``, else ``http.host:http.port``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich import markup, table

from controller.commands import remote, session, terminal
from controller.operations import encoding, rule_state

_esc = markup.escape


def _base_url(api: str, config: Path | None) -> str:
    if api:
        return api
    settings = session.load_settings(config)
    http = settings.http
    host = "127.0.0.1" if http.host in {"0.0.0.0", "::", ""} else http.host  # noqa: S104
    return http.public_url or f"http://{host}:{http.port}"


def _since(value: datetime | None, now: datetime) -> str:
    return terminal.duration(now - value) + " ago" if value is not None else "-"


def _render(alerts: rule_state.AlertsReport, rules: rule_state.RulesReport) -> None:
    out = terminal.console()
    now = alerts.now
    out.print(f"[bold]Conditions[/bold]: {alerts.firing} firing, {alerts.pending} pending")
    if alerts.alerts:
        grid = table.Table(box=None, pad_edge=False)
        for column in ("RULE", "RESOURCE", "STATE", "SINCE", "FOR", "FIRES IN", "LAST VALUE"):
            grid.add_column(column, no_wrap=True)
        for alert in alerts.alerts:
            grid.add_row(
                _esc(alert.rule),
                _esc(alert.resource),
                terminal.styled(alert.state),
                _since(alert.since, now),
                terminal.duration(alert.hold),
                terminal.duration(alert.time_left) if alert.time_left is not None else "-",
                f"{alert.value:g}" if alert.value is not None else "-",
            )
        out.print(grid)
    out.print(f"\n[bold]Rules[/bold] (revision {_esc(rules.revision)})")
    grid = table.Table(box=None, pad_edge=False)
    for column in ("RULE", "GROUP", "SOURCE", "HEALTH", "LAST EVALUATION", "TOOK", "P/F", "ERRORS"):
        grid.add_column(column, no_wrap=column != "ERRORS")
    for rule in rules.rules:
        health = {"ok": "green", "err": "red"}.get(rule.health, "dim")
        took = f"{rule.duration.total_seconds() * 1000:.0f} ms" if rule.duration else "-"
        errors = f"{rule.errors}: {rule.error}" if rule.errors else "0"
        grid.add_row(
            _esc(rule.name),
            _esc(rule.group),
            _esc(rule.source + (f":{rule.stream}" if rule.stream else "")),
            f"[{health}]{rule.health}[/{health}]",
            _since(rule.last_evaluation, now),
            took,
            f"{rule.pending}/{rule.firing}",
            _esc(errors),
        )
    out.print(grid)


def status(
    api: Annotated[
        str,
        typer.Option(
            "--api",
            envvar="HOMEOSTAT_API_URL",
            help="The running Homeostat's URL; default: the settings' http.public_url or "
            "http.host:http.port.",
            show_default=False,
        ),
    ] = "",
    token: remote.TokenOption = "",
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"alerts": ..., "rules": ...} as JSON.')
    ] = False,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Settings file (YAML).", dir_okay=False)
    ] = None,
) -> None:
    """Show what the running rules engine holds: conditions pending or firing, rule health.

    Asks the running Homeostat's operator API (GET /v1/alerts and /v1/rules) with an
    operator token (--token or HOMEOSTAT_API_TOKEN).
    """
    base = _base_url(api, config)
    alerts = remote.read(base, token, "/v1/alerts", rule_state.AlertsReport)
    rules = remote.read(base, token, "/v1/rules", rule_state.RulesReport)
    if as_json:
        typer.echo(encoding.dumps({"alerts": alerts, "rules": rules}))
    else:
        _render(alerts, rules)
