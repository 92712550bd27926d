"""The engine against the real `promtool test rules`, on the same series and expectations.

Every file in conformance/ runs twice: through `homeostat rules test`'s code (PromQL by a
real Prometheus holding the series, alert state by our engine) and through promtool on the
converted files. Both must pass, so both produce exactly the alerts the files expect.
One deliberately wrong copy of a file must fail in both, so agreement is not vacuous.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.commands import rules as rules_commands
from controller.rules import promtool, rule_tests

CONFORMANCE = Path(__file__).parent / "conformance"
FILES = sorted(
    path
    for path in Path(__file__).parent.rglob("*.test.yaml")
    if "input_events" not in path.read_text()  # events are Homeostat's; promtool has none
)


def _wrong_copy(test_file: rule_tests.TestFile) -> rule_tests.TestFile:
    """The same file with the last expected alert of the first non-empty case removed."""
    groups = list(test_file.spec.tests)
    for group_index, group in enumerate(groups):
        for case_index, case in enumerate(group.alert_rule_test):
            if case.exp_alerts:
                cases = list(group.alert_rule_test)
                cases[case_index] = case.model_copy(update={"exp_alerts": case.exp_alerts[:-1]})
                groups[group_index] = group.model_copy(update={"alert_rule_test": cases})
                spec = test_file.spec.model_copy(update={"tests": groups})
                return rule_tests.TestFile(
                    path=test_file.path.with_name("wrong-" + test_file.path.name),
                    spec=spec,
                    rule_set=test_file.rule_set,
                )
    raise AssertionError("no case with expected alerts")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Both verdicts for every conformance file, and for one wrong copy; one Prometheus."""
    parsed = [rule_tests.parse(path) for path in FILES]
    parsed.append(_wrong_copy(parsed[0]))
    ours = rules_commands.run_tests(parsed)
    folder = tmp_path_factory.mktemp("promtool")
    converted = [promtool.convert(item, folder / str(index)) for index, item in enumerate(parsed)]
    theirs = promtool.run(converted)
    return parsed, ours, theirs


def test_enough_cases():
    """At least 30 alert cases, most of them expecting alerts, across the features."""
    parsed = [rule_tests.parse(path) for path in FILES]
    cases = [case for item in parsed for group in item.spec.tests for case in group.alert_rule_test]
    assert len(cases) >= 30
    assert sum(1 for case in cases if case.exp_alerts) >= 20
    text = "\n".join(path.read_text() for path in [*FILES, CONFORMANCE / "rules/conformance.yaml"])
    for feature in ("keep_firing_for", "stale", " _", "for:", "{{ $value }}", "{{ $labels."):
        assert feature in text, feature


@pytest.mark.parametrize("index", range(len(FILES)), ids=[path.name for path in FILES])
def test_engine_and_promtool_agree(results, index):
    """Our engine and promtool both pass the file: the same alerts at every eval_time."""
    _, ours, theirs = results
    assert ours[index].failures == [], "\n".join(ours[index].failures)
    assert theirs[index].passed, theirs[index].output
    assert ours[index].checks >= 5


def test_a_wrong_expectation_fails_in_both(results):
    """A missing expected alert fails in our runner and in promtool alike."""
    _, ours, theirs = results
    assert ours[-1].failures
    assert "got:" in ours[-1].failures[0]
    assert not theirs[-1].passed


def test_duplicate_label_sets_fail_the_evaluation_in_both(tmp_path):
    """Series that share labels once __name__ is dropped: promtool and `rules test` both report the evaluation error, and nothing else differs."""
    parsed = rule_tests.parse(CONFORMANCE / "duplicates.failing.yaml")
    [ours] = rules_commands.run_tests([parsed])
    [theirs] = promtool.run([promtool.convert(parsed, tmp_path / "promtool")])
    words = "vector contains metrics with the same labelset after applying alert labels"
    assert not theirs.passed
    assert f"rule: ResourceHot, time: 0s, err: {words}" in theirs.output
    assert ours.failures == [
        f"{ours_group}: rule: ResourceHot, time: {time}, err: {words}"
        for ours_group in [parsed.spec.tests[0].name]
        for time in ("0s", "1m", "4m")
    ]
