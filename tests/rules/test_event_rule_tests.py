"""Rule tests with input events: every family testable in the rule-test format."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from controller import cli
from controller.commands import rules as rules_commands
from controller.rules import rule_tests

EVENTS = Path(__file__).parent / "events"
runner = CliRunner()


def test_event_tests_of_every_family_pass_and_say_what_they_exercised():
    """Kafka, webhook, GitLab and Alertmanager inputs reach their rules; each file passes."""
    parsed = [rule_tests.parse(path) for path in sorted(EVENTS.glob("*.test.yaml"))]
    outcomes = rules_commands.run_tests(parsed)
    assert [outcome.failures for outcome in outcomes] == [[], []]
    sources = set().union(*(outcome.events for outcome in outcomes))
    assert sources == {"kafka", "webhook", "gitlab", "alertmanager"}
    reached = {rule for outcome in outcomes for rule, count in outcome.exercised.items() if count}
    assert reached >= {
        "ConsumerLagHigh",
        "PodCrashLooping",
        "DeployThenErrors",
        "MainPipelineFailing",
        "NodeNotReady",
    }


def test_one_event_short_of_the_count_fails_where_the_fifth_should_fire(tmp_path):
    """With four BackOff events instead of five the test fails at 4m: timing is checked to one event."""
    text = (EVENTS / "kafka.test.yaml").read_text()
    short = text.replace("        repeat: 5\n", "        repeat: 4\n")
    assert short != text
    (tmp_path / "kafka.test.yaml").write_text(
        short.replace("../../../rules/", str(Path(__file__).parents[2] / "rules") + "/")
    )
    [outcome] = rules_commands.run_tests([rule_tests.parse(tmp_path / "kafka.test.yaml")])
    assert any("alertname: PodCrashLooping, time: 4m" in failure for failure in outcome.failures), (
        outcome.failures
    )


def test_the_cli_names_the_inputs_and_the_rules_a_test_reached():
    """`rules test` says which inputs a file gave and which rules they did or did not reach."""
    result = runner.invoke(cli.app, ["rules", "test", str(EVENTS / "kafka.test.yaml")])
    assert result.exit_code == 0, result.output
    assert (
        "inputs: 0 series, events: 20 kafka; rules exercised: ConsumerLagHigh, PodCrashLooping; "
        "not exercised: DeployThenErrors"
    ) in result.output
