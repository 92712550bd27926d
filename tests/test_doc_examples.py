from pathlib import Path

import pytest

from controller.plans import loader as plans_loader
from controller.rules import loader

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
RULES = EXAMPLES / "rules"
REMEDIATIONS = EXAMPLES / "remediations"
OWN_PLAYBOOKS = EXAMPLES / "playbooks"


def _yaml_files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.suffix in {".yaml", ".yml"})


def _playbooks_dir() -> Path:
    return OWN_PLAYBOOKS if OWN_PLAYBOOKS.is_dir() else ROOT / "playbooks"


def _plan_names() -> set[str]:
    return {path.stem for path in plans_loader.plan_files(REMEDIATIONS)}


def test_there_are_examples_of_both_kinds():
    """Both example folders hold files, so the checks below are not vacuous."""
    assert loader.rule_files(RULES)
    assert plans_loader.plan_files(REMEDIATIONS)


@pytest.mark.parametrize("path", loader.rule_files(RULES), ids=lambda path: path.name)
def test_rule_example_lints_clean(path: Path):
    """Each example rule file has no problem, and its remediations are example plans."""
    assert loader.lint([path], known_remediations=_plan_names()) == []


def test_rule_examples_lint_clean_together():
    """The example rule files form one valid rule set (unique names across files)."""
    assert loader.lint([RULES], known_remediations=_plan_names()) == []


def test_remediation_examples_lint_clean():
    """Every example plan has no problem, with the playbooks it names."""
    assert plans_loader.lint_plans(REMEDIATIONS, playbooks_dir=_playbooks_dir()) == []


@pytest.mark.parametrize(
    ("document", "folder"),
    [("rules.md", RULES), ("remediations.md", REMEDIATIONS), ("remediations.md", OWN_PLAYBOOKS)],
)
def test_every_example_is_quoted_in_its_document(document: str, folder: Path):
    """Each example file is named in its document and quoted there verbatim."""
    text = (DOCS / document).read_text(encoding="utf-8")
    for path in _yaml_files(folder) if folder.is_dir() else []:
        name = path.relative_to(DOCS).as_posix()
        assert name in text, f"{name} is not referenced from docs/{document}"
        assert path.read_text(encoding="utf-8").strip() in text, f"{name} is not quoted verbatim"


def test_both_documents_are_listed_in_the_readme():
    """README's documentation list links both documents."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/rules.md)" in readme
    assert "(docs/remediations.md)" in readme
