"""The ``run_playbook`` activity: batches of hosts, progress in heartbeats, resumable retries.

A step's hosts are cut into batches (``AnsibleConfig.batch_size``); each batch is one
ansible-runner invocation using forks, and at most ``parallel_runs`` run at once, so a
``for_each`` over thousands of hosts is a few dozen processes, not thousands. Runner
events become heartbeats (``PlaybookProgress``: hosts ok / changed / failed /
unreachable, the current task, the hosts finished). A retried attempt reads the last
heartbeat and runs only the hosts not finished yet: "50% of the VMs deployed" survives a
worker crash. The heartbeat can lag (Temporal throttles it), so a resume point is a hint:
a host may run twice, which is why playbooks must be idempotent.

How it ends:

- every host ran: ``RunPlaybookOutput`` with one ``HostResult`` per host (``ok=False``
  when some failed: the plan may retry just those hosts with ``limit``);
- only unreachable hosts went wrong and attempts remain: ``TransientError``, and the
  retry runs only those hosts;
- the playbook is missing, does not parse, or uses an undefined variable:
  ``PermanentError`` (no retry can help), with Ansible's own words;
- the activity was cancelled: ansible-runner is stopped within a fraction of a second,
  every process of the run is killed, and the activity reports cancellation; on a
  graceful worker shutdown it raises ``TransientError`` instead, so the retry starts
  from the last heartbeat.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import dataclasses
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
import structlog
from temporalio import activity
from temporalio.exceptions import CancelledError

from controller import errors
from controller.activities import (
    ansible_runs,
    failures,
    inventory,
    processes,
    redaction,
    rundirs,
)
from controller.activities import config as config_module
from controller.workflows import activity_io

log = structlog.get_logger(__name__)

_HEARTBEAT_EVERY = 1.0
"""Seconds between two heartbeats while a batch runs (Temporal throttles further)."""
_PERMANENT_RC = frozenset({1, 4, 5})
"""ansible-playbook exit codes that, without a play recap, mean it could not start the play."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HostCounts:
    """How many hosts are in each state so far."""

    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybookProgress:
    """The heartbeat details of ``run_playbook``: what a retried attempt resumes from.

    Attributes:
        ok_hosts: hosts finished without a failure.
        changed_hosts: those of ``ok_hosts`` and ``problems`` where something changed.
        problems: results of finished hosts that failed or were unreachable.
        counts: host counts, finished and running.
        current_task: the task running now (of the batch that started one last).
        batches: batches of this attempt.
        batches_done: batches of this attempt that finished.
    """

    ok_hosts: tuple[str, ...] = ()
    changed_hosts: tuple[str, ...] = ()
    problems: tuple[activity_io.HostResult, ...] = ()
    counts: HostCounts = HostCounts()
    current_task: str = ""
    batches: int = 0
    batches_done: int = 0

    def results(self) -> dict[str, activity_io.HostResult]:
        """The finished hosts' results by host."""
        changed = set(self.changed_hosts)
        found = {
            host: activity_io.HostResult(host=host, ok=True, changed=host in changed)
            for host in self.ok_hosts
        }
        found.update({result.host: result for result in self.problems})
        return found


_PROGRESS = pydantic.TypeAdapter(PlaybookProgress)


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """A playbook run's output, and what its plays reported with ``set_stats``."""

    output: activity_io.RunPlaybookOutput
    stats: dict[str, Any]


def resumed(details: Sequence[Any]) -> dict[str, activity_io.HostResult]:
    """The results a previous attempt's last heartbeat recorded as final.

    Unreachable hosts are left out: they run again. Unreadable details resume nothing.
    """
    if not details:
        return {}
    try:
        progress = _PROGRESS.validate_python(details[0])
    except pydantic.ValidationError:
        log.warning("heartbeat_details_unreadable")
        return {}
    return {host: r for host, r in progress.results().items() if not r.unreachable}


class _Tracker:
    """Progress of one attempt across its batches; the listener of every invocation."""

    def __init__(
        self, *, done: dict[str, activity_io.HostResult], batches: int, heartbeat: bool
    ) -> None:
        self._lock = threading.Lock()
        self.done = dict(done)
        self.batches = batches
        self.batches_done = 0
        self.stop = threading.Event()
        self.stopped_by: str = ""
        self._live: dict[str, tuple[bool, bool, bool]] = {}
        self._task = ""
        self._heartbeat = heartbeat
        self._last_beat = 0.0

    # Listener protocol (called from runner threads)
    def task_started(self, name: str) -> None:
        with self._lock:
            self._task = name
        self.beat()

    def host_event(self, host: str, *, changed: bool, failed: bool, unreachable: bool) -> None:
        with self._lock:
            was = self._live.get(host, (False, False, False))
            self._live[host] = (was[0] or changed, was[1] or failed, was[2] or unreachable)

    def should_stop(self) -> bool:
        if self.stop.is_set():
            return True
        if activity.is_worker_shutdown():
            self.halt("worker_shutdown")
            return True
        if activity.is_cancelled():
            self.halt("cancelled")
            return True
        self.beat()
        return False

    def halt(self, why: str) -> None:
        """Stop every running and future batch."""
        with self._lock:
            self.stopped_by = self.stopped_by or why
        self.stop.set()

    def finish(self, outcome: ansible_runs.Outcome) -> None:
        """Record a finished batch's results and heartbeat them at once."""
        with self._lock:
            self.done.update(outcome.results)
            for host in outcome.results:
                self._live.pop(host, None)
            self.batches_done += 1
        self.beat(force=True)

    def snapshot(self) -> PlaybookProgress:
        """The progress as heartbeat details."""
        with self._lock:
            done = list(self.done.values())
            live = list(self._live.values())
            task = self._task
            batches_done = self.batches_done
        ok = [r for r in done if r.ok]
        changed = sum(1 for r in done if r.changed) + sum(1 for c, _, _ in live if c)
        return PlaybookProgress(
            ok_hosts=tuple(sorted(r.host for r in ok)),
            changed_hosts=tuple(sorted(r.host for r in done if r.changed)),
            problems=tuple(sorted((r for r in done if not r.ok), key=lambda r: r.host)),
            counts=HostCounts(
                ok=len(ok) + sum(1 for _, f, u in live if not f and not u),
                changed=changed,
                failed=sum(1 for r in done if not r.ok and not r.unreachable)
                + sum(1 for _, f, _ in live if f),
                unreachable=sum(1 for r in done if r.unreachable) + sum(1 for _, _, u in live if u),
            ),
            current_task=task,
            batches=self.batches,
            batches_done=batches_done,
        )

    def beat(self, *, force: bool = False) -> None:
        """Heartbeat the progress, at most once a second unless forced."""
        if not self._heartbeat:
            return
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last_beat < _HEARTBEAT_EVERY:
                return
            self._last_beat = now
        try:
            activity.heartbeat(self.snapshot())
        except (TimeoutError, RuntimeError) as exc:  # a busy event loop: try again later
            log.warning("heartbeat_not_sent", error=str(exc))


class PlaybookActivities:
    """``run_playbook``, with its configuration and inventory injected."""

    def __init__(
        self,
        *,
        playbooks_dir: Path,
        state_dir: Path,
        settings: config_module.AnsibleConfig,
        hosts: inventory.Inventory,
        redactor: redaction.Redactor | None = None,
    ) -> None:
        """Run playbooks from ``playbooks_dir``, keeping run directories in ``state_dir``.

        Messages that reach the history (host failures, Ansible's errors) are masked by
        ``redactor``.
        """
        self._redactor = redactor or redaction.Redactor()
        self._playbooks_dir = playbooks_dir
        self._runs_dir = state_dir / "runs"
        self._settings = settings
        self._hosts = hosts

    @activity.defn(name=activity_io.RUN_PLAYBOOK, no_thread_cancel_exception=True)
    def run_playbook(self, request: activity_io.RunPlaybookInput) -> activity_io.RunPlaybookOutput:
        """Run a playbook on the requested hosts, resuming after the last heartbeat."""
        with failures.reported():
            return self.run(request).output

    def run(self, request: activity_io.RunPlaybookInput, *, resume: bool = True) -> Report:
        """The activity's work, raising ``errors.RemediationError``.

        ``resume=False`` ignores the last heartbeat: the scale actuator needs every run
        to report its stats.
        """
        info = activity.info()
        playbook = self.playbook(request.playbook)
        targets = _targets(request, self._group_hosts(request.groups))
        done = resumed(info.heartbeat_details) if resume else {}
        todo = [host for host in targets if host not in done]
        private_dir = self._private_dir(request.context)
        processes.sweep(str(private_dir))  # leftovers of earlier attempts (a worker died)
        ansible_runs.write_extra_vars(private_dir, request.extra_vars)
        size = max(1, self._settings.batch_size)
        batches = [tuple(todo[i : i + size]) for i in range(0, len(todo), size)]
        if not targets:
            batches = [()]
        tracker = _Tracker(done=done, batches=len(batches), heartbeat=True)
        if done:
            log.info("playbook_resumed", playbook=request.playbook, done=len(done), todo=len(todo))
        inventories = self._inventories(private_dir)
        outcomes = self._run_batches(
            batches,
            tracker=tracker,
            template=ansible_runs.Invocation(
                project_dir=self._playbooks_dir,
                playbook=playbook,
                private_dir=private_dir,
                ident="",
                inventories=inventories,
                exclude=tuple(sorted(done)) if not targets else (),
                check=request.check,
                tags=request.tags,
                forks=self._settings.forks,
                env=self._settings.env,
                python_interpreter=self._settings.python_interpreter,
            ),
            attempt=info.attempt,
        )
        # Only this attempt's processes: a newer attempt of the step may already run here
        # (when Temporal timed this one out), and it must not be touched.
        processes.sweep(f"{private_dir / 'artifacts'}/{_attempt_prefix(info.attempt)}")
        output = dataclasses.replace(
            _conclude(
                request=request,
                tracker=tracker,
                outcomes=outcomes,
                log_ref=str(private_dir),
                attempts_left=_attempts_left(info),
            ),
            attempt=info.attempt,
            ran=tuple(sorted(todo)),
        )
        stats: dict[str, Any] = {}
        for outcome in outcomes:
            stats.update(outcome.stats)
        return Report(output=output, stats=stats)

    def playbook(self, name: str) -> str:
        """``name`` checked to be a playbook file inside the playbooks directory.

        Raises:
            errors.PermanentError: there is no such file there.
        """
        root = self._playbooks_dir.resolve()
        path = (root / name).resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise errors.PermanentError(f"playbook {name!r} not found in {self._playbooks_dir}")
        return str(path.relative_to(root))

    def _group_hosts(self, groups: Sequence[str]) -> list[str]:
        """The hosts of inventory ``groups``, in order, without duplicates.

        Raises:
            errors.PermanentError: a group has no hosts (the run would otherwise fall back
                to the playbook's own pattern), or there is no inventory.
        """
        found: list[str] = []
        for group in groups:
            hosts = self._hosts.group(group, {})
            if not hosts:
                raise errors.PermanentError(f"inventory group {group!r} has no hosts")
            found += hosts
        return list(dict.fromkeys(found))

    def _private_dir(self, context: activity_io.ActivityContext) -> Path:
        return rundirs.step_dir(self._runs_dir, context, keep=self._settings.keep_runs)

    def _inventories(self, private_dir: Path) -> tuple[Path, ...]:
        found: list[Path] = []
        static = self._settings.inventory
        if static is not None:
            if not static.exists():
                raise errors.PermanentError(f"inventory {static} does not exist")
            found.append(static)
        dynamic = self._hosts.ansible_inventory()
        if dynamic is not None:
            path = private_dir / "inventory" / "cmdb.yml"
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            path.write_text(ansible_runs.unsafe_yaml(dynamic), encoding="utf-8")
            found.append(path)
        return tuple(found)

    def _run_batches(
        self,
        batches: list[tuple[str, ...]],
        *,
        tracker: _Tracker,
        template: ansible_runs.Invocation,
        attempt: int,
    ) -> list[ansible_runs.Outcome]:
        def one(index: int, hosts: tuple[str, ...]) -> ansible_runs.Outcome | None:
            if tracker.stop.is_set():
                return None
            invocation = _with(
                template, hosts=hosts, ident=f"{_attempt_prefix(attempt)}b{index:05d}"
            )
            outcome = self._masked(ansible_runs.run(invocation, tracker))
            if outcome.undefined or (not outcome.recap and not tracker.stop.is_set()):
                tracker.halt("error")  # no point starting more batches
            tracker.finish(outcome)
            return outcome

        workers = max(1, min(self._settings.parallel_runs, len(batches)))
        if workers == 1:
            found = [one(i, hosts) for i, hosts in enumerate(batches)]
        else:
            with concurrent.futures.ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix="ansible-batch"
            ) as pool:
                futures = [
                    pool.submit(contextvars.copy_context().run, one, i, hosts)
                    for i, hosts in enumerate(batches)
                ]
                found = [future.result() for future in futures]
        return [outcome for outcome in found if outcome is not None]

    def _masked(self, outcome: ansible_runs.Outcome) -> ansible_runs.Outcome:
        """The outcome with secrets masked in every message that may reach the history."""
        mask = self._redactor.text
        outcome.results = {
            host: dataclasses.replace(result, message=mask(result.message))
            for host, result in outcome.results.items()
        }
        outcome.error = mask(outcome.error)
        outcome.undefined = mask(outcome.undefined)
        return outcome


def _with(
    template: ansible_runs.Invocation, *, hosts: tuple[str, ...], ident: str
) -> ansible_runs.Invocation:
    return ansible_runs.Invocation(
        project_dir=template.project_dir,
        playbook=template.playbook,
        private_dir=template.private_dir,
        ident=ident,
        inventories=template.inventories,
        targets=hosts,
        exclude=template.exclude,
        check=template.check,
        tags=template.tags,
        forks=min(template.forks, len(hosts)) if hosts else template.forks,
        env=template.env,
        python_interpreter=template.python_interpreter,
    )


def _attempt_prefix(attempt: int) -> str:
    """The start of the artifact directory names of one attempt's invocations."""
    return f"a{attempt:04d}-"


def _targets(request: activity_io.RunPlaybookInput, grouped: Sequence[str] = ()) -> list[str]:
    """The hosts to run on: ``hosts`` and ``grouped`` narrowed by ``limit``, checked, once each."""
    hosts = [ansible_runs.check_host(h) for h in dict.fromkeys((*request.hosts, *grouped))]
    limit = [ansible_runs.check_host(h) for h in dict.fromkeys(request.limit)]
    if hosts and limit:
        wanted = set(limit)
        return [host for host in hosts if host in wanted]
    return hosts or limit


def _attempts_left(info: activity.Info) -> bool:
    policy = info.retry_policy
    if policy is None:
        return False
    return policy.maximum_attempts == 0 or info.attempt < policy.maximum_attempts


def _conclude(
    *,
    request: activity_io.RunPlaybookInput,
    tracker: _Tracker,
    outcomes: list[ansible_runs.Outcome],
    log_ref: str,
    attempts_left: bool,
) -> activity_io.RunPlaybookOutput:
    """The output, or the error that says why there is none."""
    name = request.playbook
    if tracker.stopped_by == "worker_shutdown":
        raise errors.TransientError(
            f"{name}: worker shutting down; {len(tracker.done)} hosts finished, the retry "
            "runs the rest"
        )
    if tracker.stopped_by == "cancelled":
        raise CancelledError(f"{name}: cancelled; every process of the run was stopped")
    for outcome in outcomes:
        if outcome.undefined:
            raise errors.PermanentError(
                f"{name}: a task uses an undefined variable: {outcome.undefined}"
            )
        if not outcome.recap:
            why = outcome.error or f"ansible-runner status {outcome.status}"
            if outcome.rc in _PERMANENT_RC:
                raise errors.PermanentError(f"{name} cannot run (rc {outcome.rc}): {why}")
            raise errors.TransientError(
                f"{name} ended without a play recap (rc {outcome.rc}): {why}"
            )
    results = sorted(tracker.done.values(), key=lambda r: r.host)
    unreachable = [r for r in results if r.unreachable]
    other = [r for r in results if not r.ok and not r.unreachable]
    if unreachable and not other and attempts_left:
        listed = ", ".join(f"{r.host} ({r.message[:80]})" for r in unreachable[:10])
        raise errors.TransientError(
            f"{name}: {len(unreachable)} hosts unreachable: {listed}; "
            f"{len(results) - len(unreachable)} finished hosts will not run again"
        )
    rc = next((o.rc for o in outcomes if o.rc), 0)
    statuses = {o.status for o in outcomes}
    status = "successful" if statuses <= {"successful"} and not rc else "failed"
    return activity_io.RunPlaybookOutput(
        ok=all(r.ok for r in results) and status == "successful",
        status=status,
        rc=rc,
        hosts=tuple(results),
        log_ref=log_ref,
    )
