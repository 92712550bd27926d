"""Rules, plans and playbooks reload as one set, checked as lint checks them."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller import cli
from controller.plans import bundle, watcher
from controller.rules import loader, revision

GIT = shutil.which("git") or "/usr/bin/git"
GOOD = "groups:\n  - name: g\n    rules:\n      - {name: A, expr: up == 0, resource: 'service/x'}\n"
USES_PLAN = (
    "groups:\n  - name: g\n    rules:\n"
    "      - {name: A, expr: up == 0, resource: 'service/x', remediation: my-cleanup}\n"
)
PLAN = "steps:\n  - id: clean\n    playbook: {path: clean.yml}\n"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _set(root: Path) -> bundle.Sources:
    for folder in ("rules", "remediations", "playbooks"):
        (root / folder).mkdir(exist_ok=True)
    return bundle.Sources(
        rules=(root / "rules",), remediations=root / "remediations", playbooks=root / "playbooks"
    )


def test_reload_on_change_keeps_last_good_on_error(tmp_path):
    """A changed folder reloads; a broken edit is reported and the last good set stays."""
    sources = _set(tmp_path)
    (tmp_path / "rules" / "r.yaml").write_text(GOOD)
    clock = Clock()
    watch = watcher.Watcher(sources, current=bundle.load(sources), clock=clock)
    assert watch.check() is None
    (tmp_path / "rules" / "r.yaml").write_text(GOOD.replace("A,", "B,"))
    outcome = watch.check()
    assert outcome is not None
    assert outcome.loaded is not None
    assert list(outcome.loaded.rule_set.rules) == ["B"]
    (tmp_path / "rules" / "r.yaml").write_text(
        GOOD.replace("expr: up == 0", "expr: up == 0, fore: 1m")
    )
    broken = watch.check()
    assert broken is not None
    assert broken.loaded is None
    assert "unknown key 'fore'" in str(broken.problems[0])
    assert watch.current is outcome.loaded
    assert watch.check() is None  # reported once per change ...
    clock.now += 61
    again = watch.check()  # ... and again once the retry interval passed
    assert again is not None
    assert again.loaded is None


def test_a_plan_and_the_rule_using_it_load_together(tmp_path):
    """A new plan, its playbook and the rule naming it, saved together, load as one set."""
    sources = _set(tmp_path)
    (tmp_path / "rules" / "r.yaml").write_text(GOOD)
    watch = watcher.Watcher(sources, current=bundle.load(sources))
    (tmp_path / "remediations" / "my-cleanup.yaml").write_text(PLAN)
    (tmp_path / "playbooks" / "clean.yml").write_text("- hosts: all\n  tasks: []\n")
    (tmp_path / "rules" / "r.yaml").write_text(USES_PLAN)
    outcome = watch.check()
    assert outcome is not None
    assert outcome.problems == ()
    assert outcome.loaded is not None
    assert outcome.loaded.rule_set.rules["A"].remediation == "my-cleanup"
    assert list(outcome.loaded.plans) == ["my-cleanup"]


def test_a_broken_plan_or_missing_playbook_keeps_the_last_good_set(tmp_path):
    """Editing only a plan or deleting a playbook reloads the set; their problems keep the old one."""
    sources = _set(tmp_path)
    (tmp_path / "rules" / "r.yaml").write_text(USES_PLAN)
    (tmp_path / "remediations" / "my-cleanup.yaml").write_text(PLAN)
    (tmp_path / "playbooks" / "clean.yml").write_text("- hosts: all\n  tasks: []\n")
    good = bundle.load(sources)
    watch = watcher.Watcher(sources, current=good)
    (tmp_path / "remediations" / "my-cleanup.yaml").write_text(
        PLAN.replace("playbook:", "playbok:")
    )
    outcome = watch.check()
    assert outcome is not None
    assert outcome.loaded is None
    assert str(outcome.problems[0]).startswith(f"{tmp_path}/remediations/my-cleanup.yaml:3:5: ")
    (tmp_path / "remediations" / "my-cleanup.yaml").write_text(PLAN)
    (tmp_path / "playbooks" / "clean.yml").unlink()
    missing = watch.check()
    assert missing is not None
    assert "unknown playbook 'clean.yml'" in str(missing.problems[0])
    assert watch.current is good
    (tmp_path / "playbooks" / "clean.yml").write_text("- hosts: all\n  tasks: []\n")
    fixed = watch.check()
    assert fixed is not None
    assert fixed.loaded is not None
    assert fixed.loaded.revision == good.revision


def test_the_revision_covers_rules_plans_and_playbooks(tmp_path):
    """A change to a plan or a playbook alone gives the set a new revision."""
    sources = _set(tmp_path)
    (tmp_path / "rules" / "r.yaml").write_text(USES_PLAN)
    (tmp_path / "remediations" / "my-cleanup.yaml").write_text(PLAN)
    (tmp_path / "playbooks" / "clean.yml").write_text("- hosts: all\n  tasks: []\n")
    first = bundle.load(sources).revision
    (tmp_path / "remediations" / "my-cleanup.yaml").write_text(PLAN + "cooldown: 1m\n")
    second = bundle.load(sources).revision
    (tmp_path / "playbooks" / "clean.yml").write_text("- hosts: all\n  tasks: [{debug: {}}]\n")
    third = bundle.load(sources).revision
    assert len({first.content_hash, second.content_hash, third.content_hash}) == 3
    assert bundle.load(sources).rule_set.revision == third


@pytest.mark.parametrize("broken", ["plan", "rule"])
def test_lint_and_load_agree(tmp_path, broken):
    """`rules lint` reports exactly the problems that keep the set from loading."""
    sources = _set(tmp_path)
    (tmp_path / "rules" / "r.yaml").write_text(USES_PLAN)
    plan = PLAN if broken == "rule" else PLAN.replace("clean.yml", "nope.yml")
    (tmp_path / "remediations" / "my-cleanup.yaml").write_text(plan)
    (tmp_path / "playbooks" / "clean.yml").write_text("- hosts: all\n  tasks: []\n")
    if broken == "rule":
        (tmp_path / "rules" / "r.yaml").write_text(USES_PLAN.replace("my-cleanup", "my-cleanp"))
    checked = bundle.check(sources)
    result = CliRunner().invoke(cli.app, ["rules", "lint", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [str(problem) for problem in checked.problems]
    with pytest.raises(bundle.SetError):
        bundle.load(sources)


def test_revision_names_the_git_commit(tmp_path):
    """In a git checkout the revision carries the checked-out commit."""
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(GOOD)
    subprocess.run([GIT, "init", "-q", str(tmp_path)], check=True)
    subprocess.run([GIT, "-C", str(tmp_path), "add", "."], check=True)
    subprocess.run(
        [GIT, "-C", str(tmp_path), "commit", "-qm", "rules"],
        check=True,
        env={**env, "PATH": "/usr/bin:/bin"},
    )
    head = subprocess.run(
        [GIT, "-C", str(tmp_path), "rev-parse", "HEAD"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert revision.git_commit(tmp_path / "rules") == head.stdout.strip()
    rule_set = bundle.load(bundle.Sources(rules=(tmp_path / "rules",))).rule_set
    assert str(rule_set.revision).endswith("@git:" + head.stdout.strip()[:12])


def test_an_empty_folder_outside_git_names_no_commit(tmp_path, monkeypatch):
    """An empty rules folder outside any checkout has no commit, whatever the working directory."""
    monkeypatch.chdir(Path(__file__).parent)  # inside this repository's checkout
    (tmp_path / "rules").mkdir()
    rule_set = loader.load_rule_set(tmp_path / "rules", known_remediations=None)
    assert rule_set.revision.commit is None
    loaded = bundle.load(bundle.Sources(rules=(tmp_path / "rules",)))
    assert loaded.revision.commit is None
