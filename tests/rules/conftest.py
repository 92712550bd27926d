"""Fixtures of the rules-engine tests: rule sets and lint results from YAML text."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from controller.rules import loader, model


@pytest.fixture
def make_rules(tmp_path: Path) -> Callable[..., model.RuleSet]:
    """Load a rule set from YAML text (dedented), optionally checking remediation names."""
    counter = iter(range(1_000_000))

    def make(text: str, *, known: set[str] | None = None) -> model.RuleSet:
        folder = tmp_path / f"rules-{next(counter)}"
        folder.mkdir()
        (folder / "rules.yaml").write_text(textwrap.dedent(text))
        return loader.load_rule_set(folder, known_remediations=known)

    return make


@pytest.fixture
def lint_text(tmp_path: Path) -> Callable[..., list[str]]:
    """Lint YAML text (dedented) written to ``rules.yaml``; the errors as strings."""

    def lint(text: str, *, known: set[str] | None = None) -> list[str]:
        path = tmp_path / "rules.yaml"
        path.write_text(textwrap.dedent(text))
        found = loader.lint([path], known_remediations=known)
        return [str(error).replace(str(tmp_path) + "/", "") for error in found]

    return lint
