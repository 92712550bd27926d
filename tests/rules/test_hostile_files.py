"""Hostile rule and plan files: each is a file:line:column problem, never a crash or a hang."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller import cli
from controller.plans import bundle, watcher
from controller.plans import loader as plans_loader
from controller.rules import loader, sourcemap

REPO = Path(__file__).parents[2]
runner = CliRunner()

GOOD_RULE = "      - {name: A, expr: up == 0, resource: 'service/x'}\n"


def _alias_bomb() -> str:
    """The 352-byte "billion laughs": nine levels of nine aliases, 9**9 values when expanded."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level, name in enumerate("bcdefghi"):
        previous = "abcdefgh"[level]
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _deep_cel() -> str:
    depth = 70_000
    expression = "(" * depth + "true" + ")" * depth
    return (
        "groups:\n  - name: g\n    rules:\n      - name: A\n        source: webhook\n"
        f"        match: '{expression}'\n        resource: 'service/x'\n"
    )


def _long_cel() -> str:
    expression = "labels.a == 'b' && " * 4000 + "true"
    return (
        "groups:\n  - name: g\n    rules:\n      - name: A\n        source: webhook\n"
        f"        match: \"{expression}\"\n        resource: 'service/x'\n"
    )


# (file text, expected line:column, words the message must contain)
HOSTILE = {
    "int tag": ('groups: !!int "abc"\n', "1:9", "!!int"),
    "float tag": ('groups: !!float "abc"\n', "1:9", "!!float"),
    "timestamp tag": ('groups: !!timestamp "abc"\n', "1:9", "!!timestamp"),
    "python name tag": ('groups: !!python/name:no.such.thing ""\n', "1:9", "python/name"),
    "binary tag": ('groups: !!binary "@@@"\n', "1:", "groups"),
    "tag on a mapping": ("groups: !!python/object:os.system {a: 1}\n", "1:9", "python/object"),
    "huge integer": ("groups: " + "9" * 5000 + "\n", "1:9", "!!int"),
    "alias bomb": (_alias_bomb(), "", "aliases"),
    "deep nesting": ("groups: " + "[" * 5000 + "]" * 5000 + "\n", "1:", "nested deeper"),
    "deep CEL": (_deep_cel(), "6:", "CEL"),
    "long CEL": (_long_cel(), "6:", "longer than"),
    "too big": ("# " + "x" * (2 << 20) + "\ngroups: []\n", "1:1", "larger than"),
}


def _position(problem: str, path: Path) -> str:
    return problem.removeprefix(f"{path}:").split(": ", 1)[0]


@pytest.mark.timeout(20)
@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_rule_file_is_a_positioned_problem(case: str, tmp_path: Path):
    """Every hostile rule file gives `file:line:column: message` quickly, never an exception."""
    text, where, words = HOSTILE[case]
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    problems = [str(problem) for problem in loader.lint([path], known_remediations=None)]
    assert problems, "a hostile file must be refused"
    first = problems[0]
    assert first.startswith(f"{path}:{where}"), problems
    assert words in first, problems
    assert len(_position(first, path).split(":")) == 2


@pytest.mark.timeout(20)
@pytest.mark.parametrize("case", ["int tag", "alias bomb", "deep CEL", "too big"])
def test_hostile_rule_file_keeps_the_last_good_set_on_reload(case: str, tmp_path: Path):
    """A hot reload meeting a hostile file reports it and keeps the rules in force."""
    good = "groups:\n  - name: g\n    rules:\n" + GOOD_RULE
    (tmp_path / "a.yaml").write_text(good)
    sources = bundle.Sources(rules=(tmp_path,))
    current = bundle.load(sources)
    watch = watcher.Watcher(sources, current=current)
    (tmp_path / "b.yaml").write_text(HOSTILE[case][0])
    outcome = watch.check()
    assert outcome is not None
    assert outcome.loaded is None
    assert str(outcome.problems[0]).startswith(str(tmp_path / "b.yaml") + ":")
    assert watch.current is current


@pytest.mark.timeout(20)
@pytest.mark.parametrize("case", [case for case in HOSTILE if case not in {"deep CEL", "long CEL"}])
def test_hostile_plan_file_is_a_positioned_problem(case: str, tmp_path: Path):
    """A hostile plan file is reported by plan lint at file:line, like a rule file."""
    text, where, words = HOSTILE[case]
    (tmp_path / "remediations").mkdir()
    path = tmp_path / "remediations" / "bad.yaml"
    path.write_text(text)
    problems = [
        str(problem)
        for problem in plans_loader.lint_plans(path.parent, playbooks_dir=tmp_path / "playbooks")
    ]
    assert problems
    assert problems[0].startswith(f"{path}:{where}"), problems
    assert words in problems[0], problems


@pytest.mark.timeout(20)
def test_hostile_cel_in_a_plan_when_is_a_positioned_problem(tmp_path: Path):
    """A plan step's `when` nested 70,000 deep is a lint problem, not a Rust panic."""
    expression = "(" * 70_000 + "true" + ")" * 70_000
    text = f"steps:\n  - id: a\n    when: '{expression}'\n    wait: 1s\n"
    (tmp_path / "remediations").mkdir()
    path = tmp_path / "remediations" / "bad.yaml"
    path.write_text(text)
    problems = [
        str(problem)
        for problem in plans_loader.lint_plans(path.parent, playbooks_dir=tmp_path / "playbooks")
    ]
    assert any(problem.startswith(f"{path}:3:") and "CEL" in problem for problem in problems)


@pytest.mark.timeout(60)
def test_lint_command_prints_positions_and_never_a_traceback(tmp_path: Path):
    """`homeostat rules lint` on every hostile file exits 1 with one positioned line each."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (tmp_path / "remediations").mkdir()
    for index, (text, _, _) in enumerate(HOSTILE.values()):
        (rules / f"hostile-{index:02}.yaml").write_text(text)
    (tmp_path / "remediations" / "bad.yaml").write_text(_alias_bomb())
    (tmp_path / "remediations" / "worse.yaml").write_text('steps: !!int "abc"\n')
    result = runner.invoke(cli.app, ["rules", "lint", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    for index in range(len(HOSTILE)):
        assert f"{rules}/hostile-{index:02}.yaml:" in result.stdout, result.stdout
    assert f"{tmp_path}/remediations/bad.yaml:" in result.stdout
    assert f"{tmp_path}/remediations/worse.yaml:1:8:" in result.stdout


def test_aliases_within_the_bound_still_work(tmp_path: Path):
    """Anchors and aliases that expand modestly keep working, with positions."""
    text = (
        "groups:\n  - name: g\n    rules:\n"
        "      - &base {name: A, expr: up == 0, resource: 'service/x', labels: {team: a}}\n"
        "      - {name: B, expr: up == 1, resource: 'service/y', labels: {team: a}}\n"
    )
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    assert loader.lint([path], known_remediations=None) == []
    data, _ = sourcemap.load("a: &x [1, 2]\nb: *x\n", file="f")
    assert data == {"a": [1, 2], "b": [1, 2]}


def test_shipped_files_are_far_below_the_limits():
    """The limits leave room: the shipped rule and plan files are small and shallow."""
    for folder in ("rules", "remediations"):
        for path in sorted((REPO / folder).glob("*.yaml")):
            assert path.stat().st_size * 10 < sourcemap.MAX_FILE_BYTES
    assert sourcemap.MAX_NODES >= 10_000
