"""docs/scenarios.md stays true: its links exist, its recipes are the shipped files, its settings load."""

import re
from pathlib import Path

import yaml

from controller import settings

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "scenarios.md"
TEXT = DOC.read_text(encoding="utf-8")
QUOTED = re.compile(r"\[([\w./-]+)\]\(\.\./\1\):\n\n```\w+\n(.*?)\n```", re.DOTALL)
SETTINGS = re.compile(r"`homeostat\.yaml`[^\n]*:\n\n```yaml\n(.*?)\n```", re.DOTALL)


def test_every_link_of_the_scenarios_doc_exists():
    """Each relative link of docs/scenarios.md names a file of the repository."""
    links = re.findall(r"\]\(((?:\.\./|examples/)[^)#]+|[a-z]+\.md)(?:#[^)]*)?\)", TEXT)
    assert links
    for link in links:
        assert (DOC.parent / link).resolve().exists(), link


def test_every_quoted_recipe_is_the_shipped_file():
    """A rule, plan or playbook quoted under its path is that file, verbatim."""
    quoted = QUOTED.findall(TEXT)
    assert len(quoted) >= 10
    for path, text in quoted:
        assert (ROOT / path).read_text(encoding="utf-8").rstrip("\n") == text, path


def test_every_scenario_test_is_linked():
    """Each end-to-end scenario test is named by the doc, so a reader finds its proof."""
    for test in sorted((ROOT / "tests" / "scenarios").glob("test_*.py")):
        assert f"../tests/scenarios/{test.name}" in TEXT, test.name


def test_every_settings_fragment_loads():
    """Each homeostat.yaml fragment of the doc is valid configuration."""
    fragments = SETTINGS.findall(TEXT)
    assert len(fragments) >= 8
    for fragment in fragments:
        settings.Settings.model_validate(yaml.safe_load(fragment))


README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_tour_starts_with_the_demo_and_names_the_venv_command():
    """The tour's first command block runs `homeostat demo`, and every homeostat command in the README's blocks is .venv/bin/homeostat."""
    tour = README[README.index("## A five-minute tour") :]
    first = re.search(r"```sh\n(.*?)```", tour, re.DOTALL)
    assert first is not None
    assert ".venv/bin/homeostat demo" in first.group(1)
    for block in re.findall(r"```sh\n(.*?)```", README, re.DOTALL):
        for line in block.splitlines():
            command = line.split("#", 1)[0]
            assert not re.search(r"(^|[\s;|&])homeostat\s", command), line


def test_the_tour_waits_for_what_it_shows():
    """The marker the tour prints is awaited first: the playbook needs a few seconds."""
    tour = README[README.index("### 2. Run it") :]
    assert tour.index("until [ -f /tmp/homeostat-demo/cleaned-localhost ]") < tour.index(
        "cat /tmp/homeostat-demo/cleaned-localhost"
    )
