"""The run_playbook activity against real ansible-runner and ansible-playbook runs."""

from __future__ import annotations

import threading
import time

import pydantic
import pytest
from activity_support import context
from temporalio.exceptions import ApplicationError, CancelledError

from controller.activities import ansible, processes
from controller.workflows import activity_io


def request(hosts, names=("h1", "h2", "h3"), *, playbook="visit.yml", step="restart", **more):
    extra = more.pop("extra_vars", None) or hosts.extra_vars()
    return activity_io.RunPlaybookInput(
        context=context(step),
        playbook=playbook,
        hosts=tuple(names),
        extra_vars=extra,
        **more,
    )


def as_details(progress: ansible.PlaybookProgress) -> list:
    """Heartbeat details as the data converter hands them to a retried attempt (JSON)."""
    return [pydantic.TypeAdapter(ansible.PlaybookProgress).dump_python(progress, mode="json")]


def test_three_hosts_one_fails_reports_each_host(hosts, activity_env):
    """One failing host of three is reported with its task and message; the others are ok."""
    hosts.fail("h2")
    out = activity_env().run(hosts.activities().run_playbook, request(hosts))
    assert not out.ok
    assert out.failed_hosts == ("h2",)
    by_host = {r.host: r for r in out.hosts}
    assert by_host["h1"].ok
    assert by_host["h1"].changed
    assert by_host["h2"].failed_task == "Fail where told"
    assert "told to fail on h2" in by_host["h2"].message
    assert [hosts.visits(h) for h in ("h1", "h2", "h3")] == [1, 1, 1]
    assert hosts.ended("h1")
    assert not hosts.ended("h2")
    assert out.log_ref


def test_retry_of_failed_hosts_runs_only_them(hosts, activity_env):
    """A second run limited to the failed host visits only that host."""
    activities = hosts.activities()
    hosts.fail("h2")
    first = activity_env().run(activities.run_playbook, request(hosts))
    hosts.fail("h2", on=False)
    retry = request(hosts, step="restart#failed-hosts-1", limit=first.failed_hosts)
    second = activity_env().run(activities.run_playbook, retry)
    assert second.ok
    assert [r.host for r in second.hosts] == ["h2"]
    assert [hosts.visits(h) for h in ("h1", "h2", "h3")] == [1, 2, 1]


def test_retried_attempt_runs_only_hosts_not_done(hosts, activity_env):
    """An attempt whose last heartbeat lists h1 as done visits only h2 and h3."""
    progress = ansible.PlaybookProgress(ok_hosts=("h1",), changed_hosts=("h1",))
    env = activity_env(attempt=2, details=as_details(progress))
    out = env.run(hosts.activities().run_playbook, request(hosts))
    assert out.ok
    assert [r.host for r in out.hosts] == ["h1", "h2", "h3"]
    assert [hosts.visits(h) for h in ("h1", "h2", "h3")] == [0, 1, 1]


def test_heartbeats_carry_progress_per_batch(hosts, activity_env):
    """Batches of two hosts, two at a time: each finished batch is a heartbeat with its hosts."""
    beats: list[ansible.PlaybookProgress] = []
    env = activity_env()
    env.on_heartbeat = lambda *details: beats.append(details[0])
    names = [f"h{i}" for i in range(1, 5)]
    out = env.run(
        hosts.activities(batch_size=2, parallel_runs=2).run_playbook, request(hosts, names)
    )
    assert out.ok
    assert [hosts.visits(h) for h in names] == [1] * 4
    last = beats[-1]
    assert last.batches == 2
    assert last.batches_done == 2
    assert last.ok_hosts == tuple(names)
    assert last.counts.ok == 4
    assert last.counts.changed == 4
    assert len({beat.batches_done for beat in beats}) == 3  # 0, 1 and 2 batches done
    assert any(beat.current_task == "Record the visit" for beat in beats)


def test_unreachable_host_is_retryable_and_resumes_the_rest(hosts, activity_env):
    """An unreachable host makes a retryable error; the reachable ones are recorded as done."""
    beats: list[ansible.PlaybookProgress] = []
    env = activity_env(attempt=1, max_attempts=3)
    env.on_heartbeat = lambda *details: beats.append(details[0])
    with pytest.raises(ApplicationError) as caught:
        env.run(hosts.activities().run_playbook, request(hosts, ("h1", "dead1")))
    assert caught.value.type == activity_io.TRANSIENT_ERROR
    assert not caught.value.non_retryable
    assert "dead1" in str(caught.value)
    assert beats[-1].ok_hosts == ("h1",)
    assert ansible.resumed(as_details(beats[-1])).keys() == {"h1"}


def test_unreachable_on_the_last_attempt_is_reported_per_host(hosts, activity_env):
    """On the last attempt an unreachable host comes back as data, not as an error."""
    env = activity_env(attempt=3, max_attempts=3)
    out = env.run(hosts.activities().run_playbook, request(hosts, ("h1", "dead1")))
    assert not out.ok
    dead = next(r for r in out.hosts if r.host == "dead1")
    assert dead.unreachable
    assert "ssh" in dead.message.lower()


@pytest.mark.parametrize(
    ("playbook", "expected"),
    [
        ("missing.yml", "not found"),
        ("../conftest.py", "not found"),
        ("broken.yml", "YAML"),
        ("undefined.yml", "service_that_nobody_defined"),
    ],
)
def test_playbooks_that_cannot_work_fail_permanently(hosts, activity_env, playbook, expected):
    """Missing, unparsable and undefined-variable playbooks are non-retryable, saying why."""
    with pytest.raises(ApplicationError) as caught:
        activity_env().run(hosts.activities().run_playbook, request(hosts, playbook=playbook))
    assert caught.value.type == activity_io.PERMANENT_ERROR
    assert caught.value.non_retryable
    assert expected in str(caught.value)


@pytest.mark.parametrize("name", ["web-1:9100", "*", "all,!h1", "h1 h2"])
def test_host_names_are_never_patterns(hosts, activity_env, name):
    """A host name that Ansible would read as a pattern is refused, not run."""
    with pytest.raises(ApplicationError) as caught:
        activity_env().run(hosts.activities().run_playbook, request(hosts, (name,)))
    assert caught.value.non_retryable
    assert "plain host name" in str(caught.value)
    assert not list(hosts.markers.iterdir())


def test_values_stay_data_and_worker_secrets_stay_out(hosts, activity_env, monkeypatch):
    """A template in a label value reaches the play as text, never evaluated.

    And the worker's environment (with its secrets) is not in ansible-runner's artifacts.
    """
    monkeypatch.setenv("HOMEOSTAT_PAGING__ROUTING_KEY", "sekrit-routing-key-1234")
    tricky = "{{ 7 * 6 }} {{ lookup('pipe', 'id') }}"
    out = activity_env().run(
        hosts.activities().run_playbook,
        request(hosts, ("h1",), extra_vars=hosts.extra_vars(note=tricky)),
    )
    assert out.ok
    assert (hosts.markers / "h1").read_text().strip() == tricky
    for path in hosts.state.rglob("*"):
        if path.is_file():
            assert b"sekrit-routing-key-1234" not in path.read_bytes(), path


@pytest.mark.parametrize("value", ["on", "0755"])
def test_a_string_that_looks_like_a_boolean_or_number_stays_that_string(hosts, activity_env, value):
    """A label value such as "on" or "0755" reaches the play as that text, not as True or 493."""
    out = activity_env().run(
        hosts.activities().run_playbook,
        request(hosts, ("h1",), extra_vars=hosts.extra_vars(note=value)),
    )
    assert out.ok
    assert (hosts.markers / "h1").read_text().strip() == value


def stop_when_visited(hosts, host, stop) -> threading.Thread:
    """Call ``stop`` as soon as the playbook recorded its visit of ``host``."""

    def watch() -> None:
        deadline = time.monotonic() + 60
        while hosts.visits(host) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        stop()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("how", ["cancel", "worker_shutdown"])
def test_stopping_ends_the_play_and_all_its_processes(hosts, activity_env, how):
    """Cancellation or a worker shutdown during a long task stops the run within seconds.

    Nothing of the run survives, and its next task never runs.
    """
    env = activity_env()
    stop_when_visited(hosts, "h1", getattr(env, how))
    started = time.monotonic()
    with pytest.raises((CancelledError, ApplicationError)) as caught:
        env.run(
            hosts.activities().run_playbook,
            request(hosts, ("h1",), extra_vars=hosts.extra_vars(pause=60)),
        )
    assert time.monotonic() - started < 20
    if how == "cancel":
        assert isinstance(caught.value, CancelledError)
    else:  # retryable, so the retry resumes from the last heartbeat
        assert isinstance(caught.value, ApplicationError)
        assert caught.value.type == activity_io.TRANSIENT_ERROR
        assert "worker shutting down" in str(caught.value)
    run_dir = next((hosts.state / "runs").iterdir())
    assert processes.carriers(str(run_dir)) == []
    time.sleep(1.0)
    assert not hosts.ended("h1")


def test_check_mode_changes_nothing(hosts, activity_env):
    """In check mode the play runs but its commands do not."""
    out = activity_env().run(hosts.activities().run_playbook, request(hosts, ("h1",), check=True))
    assert out.ok
    assert hosts.visits("h1") == 0


def test_groups_run_their_inventory_hosts_and_an_empty_group_is_refused(hosts, activity_env):
    """A step naming an inventory group runs that group's hosts; a group without hosts fails for good instead of running the play's own pattern."""
    activities = hosts.activities()
    out = activity_env().run(activities.run_playbook, request(hosts, (), groups=("web",)))
    assert out.ok
    assert [r.host for r in out.hosts] == ["h1", "h2"]
    assert out.ran == ("h1", "h2")
    assert [hosts.visits(h) for h in ("h1", "h2", "h3")] == [1, 1, 0]
    with pytest.raises(ApplicationError, match="inventory group 'nobody' has no hosts") as caught:
        activity_env().run(activities.run_playbook, request(hosts, (), groups=("nobody",)))
    assert caught.value.non_retryable
    assert hosts.visits("h3") == 0
