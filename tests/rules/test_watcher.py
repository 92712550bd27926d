from __future__ import annotations

import shutil
import subprocess

from controller.rules import loader, revision, watcher

GIT = shutil.which("git") or "/usr/bin/git"
GOOD = "groups:\n  - name: g\n    rules:\n      - {name: A, expr: up == 0, resource: 'service/x'}\n"


def test_reload_on_change_keeps_last_good_on_error(tmp_path):
    """A changed folder reloads; a broken edit is reported and the last good set stays."""
    (tmp_path / "r.yaml").write_text(GOOD)
    current = loader.load_rule_set(tmp_path, known_remediations=None)
    watch = watcher.Watcher(tmp_path, known_remediations=None, current=current)
    assert watch.check() is None
    (tmp_path / "r.yaml").write_text(GOOD.replace("A,", "B,"))
    outcome = watch.check()
    assert outcome is not None
    assert outcome.rule_set is not None
    assert list(outcome.rule_set.rules) == ["B"]
    (tmp_path / "r.yaml").write_text(GOOD.replace("expr: up == 0", "expr: up == 0, fore: 1m"))
    broken = watch.check()
    assert broken is not None
    assert broken.rule_set is None
    assert "unknown key 'fore'" in str(broken.problems[0])
    assert watch.current is outcome.rule_set
    assert watch.check() is None  # reported once, not on every poll


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
    rule_set = loader.load_rule_set(tmp_path / "rules", known_remediations=None)
    assert str(rule_set.revision).endswith("@git:" + head.stdout.strip()[:12])
