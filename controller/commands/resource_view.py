"""``homeostat resource show`` for people: the view, section by section."""

from __future__ import annotations

from datetime import datetime

from rich import console as rich_console
from rich import markup

from controller.commands import terminal
from controller.operations import views

_esc = markup.escape


def _automation(out: rich_console.Console, view: views.ResourceView, now: datetime) -> None:
    if view.pause is not None:
        who = f" by {_esc(view.pause.by)}" if view.pause.by else ""
        why = f": {_esc(view.pause.reason)}" if view.pause.reason else ""
        since = terminal.moment(view.pause.since, now)
        out.print(f"  [yellow]paused[/yellow]{who} since {since}{why}")
    if view.silence is not None:
        who = f" by {_esc(view.silence.by)}" if view.silence.by else ""
        why = f": {_esc(view.silence.reason)}" if view.silence.reason else ""
        out.print(
            f"  [yellow]silenced[/yellow]{who} until {terminal.moment(view.silence.until)}"
            f" ({terminal.duration(view.silence.left)} left){why}"
        )
    if view.running is not None:
        running = view.running
        out.print(
            f"  running   {_esc(running.plan)} for {_esc(running.episode)}"
            f" ({running.mode.value}, {running.phase.value}) since "
            f"{terminal.moment(running.started_at, now)}"
        )


def _episodes(out: rich_console.Console, view: views.ResourceView, now: datetime) -> None:
    out.print(f"\n[bold]Open episodes[/bold] ({view.open_episodes}, {view.queued} queued)")
    if not view.episodes:
        out.print("  none")
    for episode in view.episodes:
        state = episode.outcome.value if episode.outcome else episode.status.value
        resolved = ", resolved" if episode.resolved else ""
        out.print(
            f"  {_esc(episode.episode)}  {terminal.styled(state)}{resolved}  "
            f"rule {_esc(episode.rule)}, plan {_esc(episode.plan) or '-'}, fired "
            f"{terminal.moment(episode.started_at, now)}"
        )
        for line in (episode.note, episode.workflow_url, episode.history):
            if line:
                out.print(f"      {_esc(line)}")


def _limits(out: rich_console.Console, view: views.ResourceView) -> None:
    if view.cooldowns:
        out.print("\n[bold]Cooldowns[/bold]")
    for cooldown in view.cooldowns:
        out.print(
            f"  {_esc(cooldown.plan)}: until {terminal.moment(cooldown.until)}"
            f" ({terminal.duration(cooldown.left)} left)"
        )
    if view.budget:
        out.print("\n[bold]Budget[/bold]")
    for use in view.budget:
        limit = str(use.limit) if use.limit else "?"
        out.print(
            f"  {_esc(use.plan)}: {use.used} of {limit} used per {terminal.duration(use.per)}"
            f" (the next one frees at {terminal.moment(use.frees_at)})"
        )


def _outcomes(out: rich_console.Console, view: views.ResourceView) -> None:
    out.print("\n[bold]Last outcomes[/bold]")
    if not view.last_outcomes:
        out.print("  none yet")
    for outcome in view.last_outcomes:
        state = outcome.outcome.value if outcome.outcome else outcome.status.value
        out.print(
            f"  {terminal.moment(outcome.closed_at)}  {terminal.styled(state)}  "
            f"{_esc(outcome.episode)} ({_esc(outcome.plan) or 'no plan'})"
        )
        if outcome.note:
            out.print(f"      {_esc(outcome.note)}")


def render(view: views.ResourceView, now: datetime) -> None:
    """Print the view of a resource for people."""
    out = terminal.console()
    since = f" since {terminal.moment(view.since, now)}" if view.since else ""
    out.print(f"[bold]{_esc(view.resource)}[/bold]  {terminal.styled(view.phase.value)}{since}")
    out.print(f"  workflow  {_esc(view.workflow_id)} ({view.workflow_status})")
    if view.workflow_url:
        out.print(f"  web UI    {_esc(view.workflow_url)}")
    if not view.details:
        out.print("  (this workflow was started by an older Homeostat: only its phase is known)")
        return
    _automation(out, view, now)
    _episodes(out, view, now)
    _limits(out, view)
    _outcomes(out, view)
    out.print(f"\nTimeline: {_esc(view.history)}")
