"""``homeostat rules backtest``: replay recorded history through a rule set, and compare two.

It reads the options, runs ``controller.backtest.run`` (once more on the ``--against``
revision, extracted from git, to compare the two), and renders what came out: a table of
episodes and per-rule totals, JSON, or a timeline plot.
"""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from controller import errors
from controller.backtest import compare, policy, replay, run
from controller.commands import rules as rules_commands
from controller.domain import durations
from controller.plans import bundle

_NOW = re.compile(r"^now(?:-(?P<ago>.+))?$")
Window = run.Window
Result = run.Result
backtest = run.backtest


def parse_time(text: str, *, now: datetime) -> datetime:
    """RFC 3339 (``2026-05-01T00:00:00Z``), ``now`` or ``now-7d``.

    Raises:
        ValueError: anything else.
    """
    relative = _NOW.match(text.strip())
    if relative is not None:
        ago = relative.group("ago")
        return now - durations.parse_duration(ago) if ago else now
    parsed = datetime.fromisoformat(text.strip())
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} needs a time zone, like 2026-05-01T00:00:00Z")
    return parsed.astimezone(UTC)


def checkout(revision: str, sources: bundle.Sources, folder: Path) -> bundle.Sources:
    """The same set at git ``revision``, extracted under ``folder``.

    Raises:
        errors.ConfigError: not a git checkout, or the revision does not exist.
    """
    paths = [*sources.rules, sources.remediations, sources.playbooks]
    present = [path for path in paths if path is not None and path.exists()]
    anchor = present[0] if present else Path()
    root = _git(["rev-parse", "--show-toplevel"], cwd=anchor if anchor.is_dir() else anchor.parent)
    top = Path(root.strip())
    relative = [
        str(path.resolve().relative_to(top))
        for path in present
        if _in_revision(top, revision, str(path.resolve().relative_to(top)))
    ]
    if not relative:
        raise errors.ConfigError(f"--against {revision}: none of the rule set's files is there")
    archive = folder / "against.tar"
    with archive.open("wb") as out:
        result = subprocess.run(
            ["git", "-C", str(top), "archive", "--format=tar", revision, "--", *relative],  # noqa: S607 - git from PATH, like every git user
            stdout=out,
            stderr=subprocess.PIPE,
            check=False,
        )
    if result.returncode != 0:
        raise errors.ConfigError(f"--against {revision}: {result.stderr.decode().strip()}")
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "tree", filter="data")

    def moved(path: Path | None) -> Path | None:
        if path is None:
            return None
        there = folder / "tree" / path.resolve().relative_to(top)
        there.mkdir(parents=True, exist_ok=True)
        return there

    return bundle.Sources(
        rules=tuple(folder / "tree" / path.resolve().relative_to(top) for path in sources.rules),
        remediations=moved(sources.remediations),
        playbooks=moved(sources.playbooks),
    )


def _in_revision(top: Path, revision: str, relative: str) -> bool:
    """Whether ``relative`` exists in git ``revision`` (an empty folder is never tracked)."""
    found = subprocess.run(
        ["git", "-C", str(top), "cat-file", "-e", f"{revision}:{relative}"],  # noqa: S607 - git from PATH
        capture_output=True,
        check=False,
    )
    return found.returncode == 0


def _git(args: Sequence[str], *, cwd: Path) -> str:
    result = subprocess.run(
        ["git", "-C", str(cwd), *args],  # noqa: S607 - git from PATH
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise errors.ConfigError(f"--against: {cwd} is not in a git checkout: {result.stderr}")
    return result.stdout


def episode_json(result: Result, episode: replay.Episode) -> dict[str, Any]:
    """One episode as the JSON output and the table show it."""
    decision = result.decisions[episode.id]
    return {
        "rule": episode.rule,
        "resource": episode.resource,
        "episode": episode.id,
        "start": episode.start.isoformat(),
        "end": episode.end.isoformat() if episode.end is not None else None,
        "duration_seconds": (episode.end - episode.start).total_seconds()
        if episode.end is not None
        else None,
        "plan": episode.plan,
        "action": decision.action.value,
        "suppressed_by": decision.suppressed_by,
        "note": decision.note,
    }


def differences_json(differences: Sequence[compare.Difference]) -> list[dict[str, Any]]:
    """``--against`` differences as JSON."""
    return [
        {
            "change": item.change.value,
            "rule": item.rule,
            "resource": item.resource,
            "before": _span(item.before),
            "after": _span(item.after),
        }
        for item in differences
    ]


def _span(episode: replay.Episode | None) -> dict[str, str | None] | None:
    if episode is None:
        return None
    return {
        "start": episode.start.isoformat(),
        "end": episode.end.isoformat() if episode.end is not None else None,
    }


def _row(values: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(value.ljust(width) for value, width in zip(values, widths, strict=True))


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[index]) for row in rows) for index in range(len(rows[0]))]
    return [_row(row, widths).rstrip() for row in rows]


def _short(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at is not None else "(open)"


def render(result: Result, window: Window) -> list[str]:
    """The table of episodes and the per-rule totals."""
    lines = [
        (
            f"backtest {_short(window.start)} .. {_short(window.end)} UTC, rule set "
            f"{result.loaded.revision}: {result.run.inputs} inputs, "
            f"{len(result.run.episodes)} episodes"
        )
    ]
    if result.not_evaluated:
        lines.append("not evaluated (no --prometheus): " + ", ".join(result.not_evaluated))
    if result.run.evaluation_errors:
        lines.append(f"{result.run.evaluation_errors} evaluations failed (duplicate label sets)")
    if result.run.episodes:
        rows = [["rule", "resource", "start", "end", "duration", "plan", "action", "suppressed-by"]]
        for episode in result.run.episodes:
            decision = result.decisions[episode.id]
            length = (
                durations.format_duration(episode.end - episode.start)
                if episode.end is not None
                else ""
            )
            rows.append(
                [
                    episode.rule,
                    episode.resource,
                    _short(episode.start),
                    _short(episode.end),
                    length,
                    episode.plan or "-",
                    decision.action.value,
                    decision.suppressed_by or "-",
                ]
            )
        lines += ["", *_table(rows)]
    totals = policy.count_by(result.decisions, result.run.episodes)
    if totals:
        actions = [action.value for action in policy.Action]
        rows = [["rule", "episodes", *actions]]
        rows += [
            [rule, str(row["episodes"]), *(str(row.get(action, 0)) for action in actions)]
            for rule, row in sorted(totals.items())
        ]
        lines += ["", *_table(rows)]
    return lines


def render_differences(differences: Sequence[compare.Difference], revision: str) -> list[str]:
    """``--against``: what the rule set changes against ``revision``."""
    counts = {
        change: sum(item.change is change for item in differences) for change in compare.Change
    }
    lines = [
        "",
        f"against {revision}: "
        + ", ".join(f"{counts[change]} {change.value}" for change in compare.Change),
    ]
    if differences:
        rows = [["change", "rule", "resource", "before", "after"]]
        rows += [
            [
                item.change.value,
                item.rule,
                item.resource,
                _period(item.before),
                _period(item.after),
            ]
            for item in differences
        ]
        lines += _table(rows)
    return lines


def _period(episode: replay.Episode | None) -> str:
    if episode is None:
        return "-"
    return f"{_short(episode.start)} .. {_short(episode.end)}"


def plot(result: Result, rule: str, path: Path) -> None:
    """A timeline of one rule's episodes per resource, coloured by what ran, to ``path``.

    Raises:
        errors.DependencyError: matplotlib is not installed.
    """
    try:
        import matplotlib as mpl  # noqa: PLC0415 - optional, only for --plot

        mpl.use("Agg")
        from matplotlib import patches  # noqa: PLC0415
        from matplotlib import pyplot as plt  # noqa: PLC0415
    except ImportError:
        raise errors.DependencyError(
            "--plot needs matplotlib: pip install 'homeostat[plot]'"
        ) from None
    mine = [episode for episode in result.run.episodes if episode.rule == rule]
    resources = sorted({episode.resource for episode in mine})
    colours = {
        policy.Action.REMEDIATE: "tab:green",
        policy.Action.ESCALATE: "tab:orange",
        policy.Action.NOTHING: "tab:gray",
        policy.Action.QUEUED: "tab:blue",
        policy.Action.MERGED: "tab:purple",
        policy.Action.SKIPPED: "tab:red",
    }
    figure, axes = plt.subplots(figsize=(12, 1.5 + 0.4 * max(1, len(resources))))
    end = max(
        (episode.end or episode.start for episode in mine),
        default=datetime.now(UTC),
    )
    for row, resource in enumerate(resources):
        for episode in (item for item in mine if item.resource == resource):
            stop = episode.end or end
            axes.barh(
                row,
                width=_days(stop) - _days(episode.start),
                left=_days(episode.start),
                color=colours[result.decisions[episode.id].action],
                height=0.6,
            )
    axes.set_yticks(range(len(resources)), labels=resources)
    axes.xaxis_date()
    axes.set_title(f"{rule}: {len(mine)} episodes ({result.loaded.revision})")
    handles = [
        patches.Patch(color=colour, label=action.value) for action, colour in colours.items()
    ]
    axes.legend(handles=handles, loc="upper right", fontsize="small")
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _days(at: datetime) -> float:
    """Matplotlib's date number: days since its epoch (1970-01-01 UTC)."""
    return (at - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds() / 86400


def command(
    paths: Annotated[
        list[Path], typer.Argument(help="Rule files or folders, or a repository root.")
    ],
    start: Annotated[str, typer.Option("--from", help="RFC 3339, or now-7d.")],
    end: Annotated[str, typer.Option("--to", help="RFC 3339, or now.")] = "now",
    prometheus: Annotated[
        str | None, typer.Option(help="Prometheus base URL the Prometheus rules query.")
    ] = None,
    kafka: Annotated[
        list[str] | None, typer.Option("--kafka", help="A Kafka topic to read back (repeat).")
    ] = None,
    bootstrap_servers: Annotated[
        str, typer.Option(help="Kafka brokers, comma-separated (for --kafka).")
    ] = "",
    events: Annotated[
        list[Path] | None,
        typer.Option("--events", help="A file of recorded webhook requests (JSON lines)."),
    ] = None,
    remediations: Annotated[
        Path | None, typer.Option(help="Plans folder (default: remediations/ beside the rules).")
    ] = None,
    playbooks: Annotated[
        Path | None, typer.Option(help="Playbooks folder (default: playbooks/ beside the plans).")
    ] = None,
    interval: Annotated[
        str, typer.Option(help="Evaluation interval of groups that set none.")
    ] = "1m",
    remediation_time: Annotated[
        str, typer.Option(help="How long each remediation is taken to run.")
    ] = "1m",
    against: Annotated[
        str | None,
        typer.Option(help="A git revision of the same files, or another rules path, to compare."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    plot_file: Annotated[
        Path | None, typer.Option("--plot", help="Write a timeline (PNG or SVG) of one rule.")
    ] = None,
    rule: Annotated[
        str | None, typer.Option(help="The rule to plot (default: the one with most episodes).")
    ] = None,
) -> None:
    """Replay recorded history through the rule set: what would have fired, and what ran."""
    try:
        now = datetime.now(UTC)
        window = Window(
            start=parse_time(start, now=now),
            end=parse_time(end, now=now),
            prometheus=prometheus,
            bootstrap_servers=tuple(part for part in bootstrap_servers.split(",") if part),
            topics=tuple(kafka or ()),
            event_files=tuple(events or ()),
            interval=durations.parse_duration(interval),
            remediation_time=durations.parse_duration(remediation_time),
        )
    except ValueError as exc:
        typer.echo(f"homeostat: {exc}", err=True)
        raise typer.Exit(code=2) from None
    sources = _sources(paths, remediations=remediations, playbooks=playbooks)
    try:
        result, comparison = _run(sources, window, against=against)
        if plot_file is not None:
            plot(result, rule or _busiest(result), plot_file)
    except bundle.SetError as exc:
        for problem in exc.problems:
            typer.echo(str(problem))
        raise typer.Exit(code=1) from None
    except errors.HomeostatError as exc:
        typer.echo(f"homeostat: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if as_json:
        typer.echo(json.dumps(report_json(result, window, comparison), indent=2))
        return
    lines = render(result, window)
    if comparison is not None:
        lines += render_differences(comparison.differences, comparison.revision)
    if plot_file is not None:
        lines += ["", f"wrote {plot_file}"]
    typer.echo("\n".join(lines))


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """``--against``: the other set's revision and what differs from it."""

    revision: str
    differences: list[compare.Difference]


def _run(
    sources: bundle.Sources, window: Window, *, against: str | None
) -> tuple[Result, Comparison | None]:
    result = backtest(sources, window)
    if against is None:
        return result, None
    with tempfile.TemporaryDirectory(prefix="homeostat-against-") as folder:
        base = backtest(_against(against, sources, Path(folder)), window)
    differences = compare.compare(
        base.run.episodes,
        result.run.episodes,
        tolerance=run.tolerance_of(result.loaded.rule_set, window.interval),
    )
    return result, Comparison(
        revision=f"{against} ({base.loaded.revision})", differences=differences
    )


def report_json(result: Result, window: Window, comparison: Comparison | None) -> dict[str, Any]:
    """The whole report as ``--json`` prints it."""
    output: dict[str, Any] = {
        "from": window.start.isoformat(),
        "to": window.end.isoformat(),
        "revision": str(result.loaded.revision),
        "inputs": result.run.inputs,
        "evaluation_errors": result.run.evaluation_errors,
        "not_evaluated": list(result.not_evaluated),
        "episodes": [episode_json(result, episode) for episode in result.run.episodes],
        "totals": policy.count_by(result.decisions, result.run.episodes),
    }
    if comparison is not None:
        output["against"] = {
            "revision": comparison.revision,
            "differences": differences_json(comparison.differences),
        }
    return output


def _sources(
    paths: list[Path], *, remediations: Path | None, playbooks: Path | None
) -> bundle.Sources:
    found = rules_commands.targets(paths, remediations=remediations)
    if playbooks is None and found.remediations is not None:
        playbooks = found.remediations.parent / "playbooks"
    return bundle.Sources(
        rules=tuple(found.rules), remediations=found.remediations, playbooks=playbooks
    )


def _against(against: str, sources: bundle.Sources, folder: Path) -> bundle.Sources:
    path = Path(against)
    if path.exists():
        found = rules_commands.targets([path], remediations=None)
        return bundle.Sources(
            rules=tuple(found.rules),
            remediations=found.remediations or sources.remediations,
            playbooks=(found.remediations.parent / "playbooks")
            if found.remediations is not None and (found.remediations.parent / "playbooks").is_dir()
            else sources.playbooks,
        )
    return checkout(against, sources, folder)


def _busiest(result: Result) -> str:
    counts: dict[str, int] = {}
    for episode in result.run.episodes:
        counts[episode.rule] = counts.get(episode.rule, 0) + 1
    if not counts:
        raise errors.ConfigError("--plot: no episode to plot")
    return max(sorted(counts), key=lambda name: counts[name])
