"""How times, durations and statuses read in a terminal, the same in every command."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from rich import console as rich_console

_STYLES = {
    "healthy": "green",
    "succeeded": "green",
    "approved": "green",
    "firing": "yellow",
    "remediating": "cyan",
    "verifying": "cyan",
    "running": "cyan",
    "awaiting_approval": "magenta",
    "waiting": "magenta",
    "cooling_down": "blue",
    "silenced": "dim",
    "paused": "dim",
    "skipped": "dim",
    "escalated": "red",
    "failed": "red",
    "denied": "red",
    "timed_out": "red",
    "aborted": "red",
}


def console() -> rich_console.Console:
    """A console on standard output; wide when it is not a terminal (files, pipes)."""
    out = rich_console.Console(highlight=False, soft_wrap=False)
    if not out.is_terminal:
        out = rich_console.Console(highlight=False, width=200)
    return out


def duration(value: timedelta | None) -> str:
    """``1h 5m``, ``42s``, ``3d 2h``: the two largest units; ``-`` for none."""
    if value is None:
        return "-"
    seconds = max(0, int(value.total_seconds()))
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    parts: list[str] = []
    for name, size in units:
        count, seconds = divmod(seconds, size)
        if count or (name == "s" and not parts):
            parts.append(f"{count}{name}")
        if len(parts) == 2:  # noqa: PLR2004 - two units read at a glance
            break
    return " ".join(parts)


def moment(value: datetime | None, now: datetime | None = None) -> str:
    """``2026-01-01 10:48:15Z (3m ago)``; ``-`` for none."""
    if value is None:
        return "-"
    stamp = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if now is None:
        return stamp
    delta = now - value
    if delta >= timedelta(0):
        return f"{stamp} ({duration(delta)} ago)"
    return f"{stamp} (in {duration(-delta)})"


def clock(value: datetime) -> str:
    """``10:48:15`` in UTC, for timelines within a day."""
    return value.astimezone(UTC).strftime("%H:%M:%S")


def styled(status: str) -> str:
    """``status`` in its colour (rich markup)."""
    style = _STYLES.get(status)
    return f"[{style}]{status}[/{style}]" if style and status else status
