"""The timeline built from the committed workflow histories reads as the incident happened, with each step's data."""

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory

from controller.operations import encoding, histories, timeline
from controller.operations import timeline_model as tm

HISTORIES = Path(__file__).parents[1] / "workflows" / "histories"


def _entries(name: str) -> tuple[tm.Entry, ...]:
    history = WorkflowHistory.from_json(name, (HISTORIES / f"{name}.json").read_text())
    return timeline.entries(name, history.events).entries


def _step(entries, path: str) -> tm.Entry:
    [found] = [
        entry
        for entry in entries
        if entry.step == path and entry.kind is not tm.EntryKind.APPROVAL_REQUESTED
    ]
    return found


def test_the_episode_opens_with_the_transition_that_fired_it():
    """The first entry names the rule, its labels and values, and the plan."""
    first = _entries("remediation_full")[0]
    assert first.kind is tm.EntryKind.OPENED
    assert first.title == "cpu-high fired on service/timeline: plan full"
    assert isinstance(first.details, tm.TransitionDetails)
    assert first.details.rule == "cpu-high"
    assert first.details.labels == {"instance": 'web-1"; rm -rf / #{{ x }}', "env": "staging"}
    assert first.details.severity == "critical"


def test_approval_shows_what_was_asked_who_answered_and_through_which_channel():
    """The request carries the rendered question; the answer names alice and the CLI channel."""
    entries = _entries("remediation_full")
    [asked] = [e for e in entries if e.kind is tm.EntryKind.APPROVAL_REQUESTED]
    [answer] = [e for e in entries if e.kind is tm.EntryKind.APPROVAL]
    assert asked.details.message == 'Restart web on web-1"; rm -rf / #{{ x }}?'
    assert answer.details == tm.ApprovalDetails(approved=True, by="alice", channel="cli")
    assert asked.at < answer.at
    assert _step(entries, "approval").status == "approved"


def test_playbook_steps_show_hosts_and_per_host_results():
    """Each fanned-out playbook names its host and what happened there; the unreachable one failed."""
    entries = _entries("remediation_full")
    failed = _step(entries, "per_host/h3/restart")
    assert failed.status == "failed"
    assert failed.details.playbook == "restart_service.yml"
    assert failed.details.hosts == ("h3",)
    assert [(r.host, r.ok) for r in failed.details.results] == [("h3", False)]
    ok = _step(entries, "per_host/h1/restart")
    assert [(r.host, r.ok, r.changed) for r in ok.details.results] == [("h1", True, True)]
    fan_out = _step(entries, "per_host").details
    assert (fan_out.group, fan_out.hosts) == ("web", ("h1", "h2", "h3"))
    assert (fan_out.items, fan_out.succeeded, fan_out.failed) == (3, 2, ("h3",))


def test_the_scale_decision_shows_the_metric_and_the_replica_counts():
    """The HPA step read 4 replicas, saw cpu at 0.9 and set 6."""
    scale = _step(_entries("remediation_full"), "scale_out")
    assert scale.details == tm.ScaleDetails(
        target="web",
        actuator="command",
        current=4,
        metric_query="cpu",
        metric_value=0.9,
        desired=6,
        after=6,
    )


def test_http_command_verify_and_skipped_steps_keep_their_outputs():
    """The HTTP status, the command's exit code and output, the verification and the skip reason are all there."""
    entries = _entries("remediation_full")
    assert _step(entries, "notify").details.status == 200
    command = _step(entries, "status").details
    assert (command.argv, command.exit_code, command.stdout_tail) == (
        ("systemctl", "status", "web"),
        0,
        "ok",
    )
    check = _step(entries, "check")
    assert check.kind is tm.EntryKind.VERIFICATION
    assert check.details.ok is True
    assert _step(entries, "skipped").status == "skipped"
    assert entries[-1].kind is tm.EntryKind.CLOSED
    assert entries[-1].status == "succeeded"


def test_cooldown_suppression_and_the_escalation_ladder_are_recorded():
    """An episode during a cooldown says so, then pages and opens a ticket as escalations."""
    entries = _entries("remediation_cooldown")
    [suppressed] = [e for e in entries if e.kind is tm.EntryKind.SUPPRESSED]
    assert suppressed.details.reason is tm.SuppressionReason.COOLDOWN
    escalations = [e for e in entries if e.kind is tm.EntryKind.ESCALATION]
    assert [type(e.details) for e in escalations] == [tm.PageDetails, tm.TicketDetails]
    assert escalations[0].details.dedup_key.startswith(
        "homeostat/cpu-high/service/ladder-timeline/"
    )
    assert escalations[1].details.key == "OPS-1"
    assert entries[-1].details.escalation_level == 2


@pytest.mark.parametrize(
    "name", ["resource_full", "resource_full_local_plan", "resource_full_eager"]
)
def test_a_resource_history_lists_its_episode_and_what_was_done(name):
    """The resource's run shows the transition, the remediation, the operator's approval and the resolve, whether its plan came from an activity or a local one, its episode started as a child or by a local activity."""
    entries = _entries(name)
    remediation = [e for e in entries if e.kind is tm.EntryKind.REMEDIATION]
    assert [(e.title.split(";")[0], e.status) for e in remediation] == [
        ("remediation started: plan full", "started"),
        ("remediation succeeded: succeeded: 10 steps", "succeeded"),
    ]
    assert {e.details.workflow_id for e in remediation} == {f"episode/{remediation[0].episode}"}
    kinds = [e.kind for e in entries]
    assert kinds[0] is tm.EntryKind.OPENED
    assert tm.EntryKind.OPERATOR in kinds
    [operator] = [e for e in entries if e.kind is tm.EntryKind.OPERATOR]
    assert operator.details.action == "approve"
    assert operator.details.by == "alice"
    [line] = histories.episode_lines(entries)
    assert line.handling == "remediated"
    assert line.outcome == "succeeded"
    assert line.resolved_at is not None
    assert [e.status for e in entries if e.kind is tm.EntryKind.PHASE][-1] == "healthy"


def test_the_timeline_json_is_plain_data_with_typed_details():
    """Every entry encodes to JSON with ISO times and a `type` on its details."""
    data = encoding.to_json(_entries("remediation_full"))
    assert data[0]["at"].endswith("Z")
    assert {entry["details"]["type"] for entry in data if entry["details"]} >= {
        "transition",
        "approval",
        "playbook",
        "http",
        "verify",
        "scale",
        "command",
        "remediation",
    }


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        (
            "cpu-high/service/web/20260101T000000.000000Z",
            ("episode", "cpu-high/service/web/20260101T000000.000000Z"),
        ),
        (
            "episode/cpu-high/service/web/20260101T000000.000000Z",
            ("episode", "cpu-high/service/web/20260101T000000.000000Z"),
        ),
        ("service/web", ("resource", "service/web")),
        ("resource/host/db-1", ("resource", "host/db-1")),
    ],
)
def test_history_targets_are_told_apart(typed, expected):
    """An episode id, a resource key and their workflow ids each select the right timeline."""
    assert histories.parse_target(typed) == expected
