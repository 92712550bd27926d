"""``homeostat rules``: lint rule (and plan) files, and run rule tests in promtool's format.

A composition root: it finds files, reads plan names, starts the sandbox Prometheus and
builds the PromQL client, then hands them to ``controller.rules``. Problems print as
``file:line:column: message``; the exit status is 1 when anything is wrong.
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from controller import assembly, errors
from controller import settings as settings_module
from controller.domain import observations
from controller.ingest import promql, recorded
from controller.plans import bundle
from controller.rules import loader, model, promtool, rule_tests, sandbox, schema

app = typer.Typer(
    help="Lint rule files, run rule tests (promtool's format) and backtest rule sets.",
    no_args_is_help=True,
)


@dataclass(kw_only=True)
class Targets:
    """What ``lint`` was asked to check."""

    rules: list[Path] = field(default_factory=list)
    remediations: Path | None = None


def targets(paths: list[Path], *, remediations: Path | None) -> Targets:
    """Sort ``paths`` into rule files/folders and the remediations folder.

    A folder holding ``rules/`` (or ``remediations/``) is a repository root: both are
    checked. Without ``--remediations``, a ``remediations/`` beside a rules folder is used.
    """
    found = Targets(remediations=remediations)
    for path in paths:
        if path.is_dir() and ((path / "rules").is_dir() or (path / "remediations").is_dir()):
            if (path / "rules").is_dir():
                found.rules.append(path / "rules")
            if (path / "remediations").is_dir() and found.remediations is None:
                found.remediations = path / "remediations"
        elif path.is_dir() and path.name == "remediations":
            found.remediations = found.remediations or path
        else:
            found.rules.append(path)
            sibling = (path if path.is_dir() else path.parent).parent / "remediations"
            if found.remediations is None and sibling.is_dir():
                found.remediations = sibling
    return found


@app.command()
def lint(
    paths: Annotated[
        list[Path], typer.Argument(help="Rule files or folders, or a repository root.")
    ],
    remediations: Annotated[
        Path | None,
        typer.Option(help="Folder of remediation plans (default: remediations/ beside the rules)."),
    ] = None,
    playbooks: Annotated[
        Path | None,
        typer.Option(help="Folder of playbooks the plans run (default: playbooks/ beside them)."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Settings file: also check that it configures what each plan needs "
            "(an inventory, paging, ticketing, Slack, Prometheus).",
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Check rules, plans and playbooks as one set, as start-up and hot reload load it.

    Each problem prints as file:line:column: message; the exit status is 1 if there is any.
    With --config, a plan step that needs something the settings do not configure (an
    inventory group without an inventory, a page without a routing key ...) is a problem.
    """
    found = targets(paths, remediations=remediations)
    playbooks_dir = playbooks
    if playbooks_dir is None and found.remediations is not None:
        playbooks_dir = found.remediations.parent / "playbooks"
    sources = bundle.Sources(
        rules=tuple(found.rules), remediations=found.remediations, playbooks=playbooks_dir
    )
    problems = [
        errors.RuleFileError(
            errors.SourcePosition(path=str(path), line=1, column=1), "no such file or folder"
        )
        for path in found.rules
        if not path.exists()
    ]
    checked_set = bundle.check(sources)
    problems += checked_set.problems
    if config is not None and checked_set.bundle is not None:
        problems += _needs_problems(config, checked_set.bundle)
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        typer.echo(f"{len(problems)} problem(s)", err=True)
        raise typer.Exit(code=1)
    checked = [str(path) for path in found.rules]
    if found.remediations is not None:
        checked.append(str(found.remediations))
    typer.echo(f"ok: {', '.join(checked)}")


def _needs_problems(config: Path, loaded: bundle.Bundle) -> list[errors.RuleFileError]:
    try:
        settings = settings_module.load(config)
    except errors.ConfigError as exc:
        typer.echo(f"homeostat: {exc}", err=True)
        raise typer.Exit(code=2) from None
    return [
        errors.RuleFileError(
            errors.SourcePosition(path=loaded.plans[unmet.plan].source, line=1, column=1),
            f"plan {unmet.plan} needs {unmet.need.value} (steps {', '.join(unmet.steps)}) but "
            f"{config} does not set {unmet.setting}",
        )
        for unmet in assembly.unmet_needs(settings, loaded.plans)
    ]


def find_test_files(paths: list[Path]) -> list[Path]:
    """The rule-test files named, folders expanded to their ``*.test.yaml`` files."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(
                item for item in path.rglob("*") if item.name.endswith(loader.TEST_SUFFIXES)
            )
        else:
            files.append(path)
    return files


@app.command("test")
def run_rule_tests(
    paths: Annotated[
        list[Path], typer.Argument(help="Rule-test files, or folders of *.test.yaml.")
    ],
    compare_promtool: Annotated[
        bool,
        typer.Option(
            "--promtool/--no-promtool",
            help="Also run promtool on the same tests (converted) and require agreement.",
        ),
    ] = False,
) -> None:
    """Run rule tests written in the format of `promtool test rules`."""
    files = find_test_files(paths)
    if not files:
        typer.echo("no rule-test files found", err=True)
        raise typer.Exit(code=1)
    try:
        parsed = [rule_tests.parse(path) for path in files]
    except errors.RuleFileError as exc:
        for problem in getattr(exc, "problems", [exc]):
            typer.echo(str(problem))
        raise typer.Exit(code=1) from None
    try:
        outcomes = run_tests(parsed)
        verdicts = _promtool(parsed) if compare_promtool else {}
    except errors.DependencyError as exc:
        typer.echo(f"homeostat: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if _report(outcomes, verdicts):
        raise typer.Exit(code=1)


def _report(outcomes: list[rule_tests.Outcome], verdicts: dict[Path, promtool.Verdict]) -> int:
    """Print promtool-style results; the number of files that failed."""
    failed = 0
    for outcome in outcomes:
        typer.echo(f"Unit Testing: {outcome.path}")
        verdict = verdicts.get(outcome.path)
        if verdict is not None and verdict.passed == (not outcome.failures):
            typer.echo("  promtool agrees")
        elif verdict is not None:
            failed += 1
            typer.echo(f"  DISAGREES with promtool, which says:\n{verdict.output}")
        if outcome.failures:
            failed += 1
            typer.echo("  FAILED:")
            for failure in outcome.failures:
                typer.echo(f"    {failure}")
        else:
            typer.echo(f"  SUCCESS ({outcome.checks} checks)")
        typer.echo(f"  {_exercised(outcome)}")
    return failed


def _exercised(outcome: rule_tests.Outcome) -> str:
    """Which inputs the file gave, and which rules they reached (and which none did)."""
    events = ", ".join(f"{count} {source}" for source, count in sorted(outcome.events.items()))
    inputs = f"{outcome.series} series" + (f", events: {events}" if events else ", no events")
    reached = sorted(rule for rule, count in outcome.exercised.items() if count)
    idle = sorted(rule for rule, count in outcome.exercised.items() if not count)
    text = f"inputs: {inputs}; rules exercised: {', '.join(reached) or 'none'}"
    return text + (f"; not exercised: {', '.join(idle)}" if idle else "")


def run_tests(parsed: list[rule_tests.TestFile]) -> list[rule_tests.Outcome]:
    """Run parsed test files; one sandbox Prometheus holds all their series, if any has some.

    Events (``input_events``) are decoded by ingest's own decoders, as if received.
    """
    if not any(_needs_prometheus(test_file) for test_file in parsed):
        offsets = [[rule_tests.EPOCH for _ in test_file.spec.tests] for test_file in parsed]
        return [
            rule_tests.run(test_file, offsets=where, query=_no_prometheus, decode=_decode)
            for test_file, where in zip(parsed, offsets, strict=True)
        ]
    with sandbox.Sandbox() as box:
        offsets = rule_tests.write_series(
            parsed,
            lambda batch: box.write(
                sandbox.Points(labels=labels, points=points) for labels, points in batch
            ),
        )
        client = promql.Client(box.url)

        def query(expr: str, at: datetime) -> list[promql.Sample]:
            return client.instant(expr, at=at)

        return [
            rule_tests.run(test_file, offsets=where, query=query, decode=_decode)
            for test_file, where in zip(parsed, offsets, strict=True)
        ]


def _needs_prometheus(test_file: rule_tests.TestFile) -> bool:
    prometheus_rules = any(
        rule.family is model.Family.PROMETHEUS for rule in test_file.rule_set.rules.values()
    )
    return prometheus_rules or any(
        group.input_series or group.promql_expr_test for group in test_file.spec.tests
    )


def _no_prometheus(expr: str, at: datetime) -> list[promql.Sample]:
    del expr, at
    return []


def _decode(item: rule_tests.EventSpec, at: datetime) -> list[observations.Observation]:
    return recorded.test_event(
        observations.SourceKind(item.source.value), stream=item.stream, event=item.event, at=at
    )


def _promtool(parsed: list[rule_tests.TestFile]) -> dict[Path, promtool.Verdict]:
    with tempfile.TemporaryDirectory(prefix="homeostat-promtool-") as folder:
        converted = [
            promtool.convert(test_file, Path(folder) / str(index))
            for index, test_file in enumerate(parsed)
        ]
        verdicts = promtool.run(converted)
    return {test_file.path: verdict for test_file, verdict in zip(parsed, verdicts, strict=True)}


@app.command("schema")
def schema_command(
    write: Annotated[
        bool, typer.Option("--write", help="Update the committed schema file.")
    ] = False,
) -> None:
    """Print the JSON Schema of rule files (or write it to controller/rules/schema.json)."""
    if write:
        schema.SCHEMA_PATH.write_text(schema.json_schema_text())
        typer.echo(f"wrote {schema.SCHEMA_PATH}")
    else:
        sys.stdout.write(schema.json_schema_text())
