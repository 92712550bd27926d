"""The same rules and tests in Prometheus's own format, and promtool run on them.

``homeostat rules test --promtool`` (and the conformance tests) check that the engine and
``promtool test rules`` agree on every test: each Prometheus rule becomes an alerting rule
(``name`` -> ``alert``, templates in Go syntax, Homeostat's keys dropped) and each test
file loses Homeostat's ``exp_transitions`` extension, which promtool would reject.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from controller import errors
from controller.domain import durations
from controller.rules import model, rule_tests, templates

_VERDICT = re.compile(r"^Unit Testing:\s+(?P<file>.+?)\s*$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """promtool's verdict on one converted test file."""

    path: Path
    passed: bool
    output: str


def go_template(template: templates.Template) -> str:
    """A template in Prometheus's Go syntax (``{{ $labels.x }}``, ``{{ $value }}``)."""
    out: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
        elif part.scope is templates.Scope.LABELS:
            out.append(f"{{{{ $labels.{part.path[0]} }}}}")
        elif part.scope is templates.Scope.VALUE:
            out.append("{{ $value }}")
        else:
            raise ValueError(f"{part.scope} has no Prometheus equivalent")
    return "".join(out)


def alerting_rules(rule_set: model.RuleSet) -> dict[str, Any]:
    """The Prometheus rules of ``rule_set`` as a Prometheus rule file.

    Raises:
        ValueError: a rule uses ``group_by``, which Prometheus rules cannot express.
    """
    groups: list[dict[str, Any]] = []
    for group in rule_set.groups:
        rules = [
            alerting_rule(rule) for rule in group.rules if rule.family is model.Family.PROMETHEUS
        ]
        if rules:
            entry: dict[str, Any] = {"name": group.name, "rules": rules}
            if group.interval:
                entry["interval"] = durations.format_duration(group.interval)
            groups.append(entry)
    return {"groups": groups}


def alerting_rule(rule: model.Rule) -> dict[str, Any]:
    """One Prometheus rule as a Prometheus alerting rule (``resource`` and the rest dropped).

    Raises:
        ValueError: the rule uses ``group_by``, which Prometheus rules cannot express.
    """
    if rule.group_by:
        raise ValueError(f"rule {rule.name!r}: group_by has no Prometheus equivalent")
    item: dict[str, Any] = {"alert": rule.name, "expr": rule.expr}
    if rule.hold:
        item["for"] = durations.format_duration(rule.hold)
    if rule.keep_firing_for:
        item["keep_firing_for"] = durations.format_duration(rule.keep_firing_for)
    if rule.labels:
        item["labels"] = {name: go_template(text) for name, text in rule.labels}
    if rule.annotations:
        item["annotations"] = {name: go_template(text) for name, text in rule.annotations}
    return item


def convert(test_file: rule_tests.TestFile, folder: Path) -> Path:
    """Write promtool's version of ``test_file`` (and its rules) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = test_file.path.name.removesuffix(".yaml").removesuffix(".yml")
    rules_path = folder / f"{stem}.rules.yml"
    rules_path.write_text(yaml.safe_dump(alerting_rules(test_file.rule_set), sort_keys=False))
    spec = test_file.spec.model_dump(mode="json", exclude_defaults=True)
    spec["rule_files"] = [rules_path.name]
    for group in spec.get("tests", []):
        group.pop("exp_transitions", None)
        group.pop("input_events", None)
    test_path = folder / f"{stem}.promtool.yml"
    test_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return test_path


def run(paths: Sequence[Path], *, binary: str = "promtool") -> list[Verdict]:
    """Run ``promtool test rules`` on ``paths``; one verdict per file.

    Raises:
        errors.DependencyError: promtool is missing or its output cannot be read.
    """
    found = shutil.which(binary)
    if found is None:
        raise errors.DependencyError(
            f"{binary!r} is not installed (Debian: apt-get install prometheus)"
        )
    completed = subprocess.run(
        [found, "test", "rules", *(str(path) for path in paths)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
        timeout=600,
    )
    return _verdicts(completed.stdout, paths)


def _verdicts(output: str, paths: Sequence[Path]) -> list[Verdict]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        header = _VERDICT.match(line)
        if header:
            current = sections.setdefault(header.group("file"), [])
        elif current is not None:
            current.append(line)
    verdicts: list[Verdict] = []
    for path in paths:
        lines = sections.get(str(path))
        if lines is None:
            raise errors.DependencyError(f"promtool said nothing about {path}:\n{output[-2000:]}")
        text = "\n".join(lines)
        verdicts.append(
            Verdict(path=path, passed="SUCCESS" in text and "FAILED" not in text, output=text)
        )
    return verdicts
