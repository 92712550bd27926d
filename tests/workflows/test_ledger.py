"""The resource workflow's book-keeping as pure functions: dedupe, cooldown, budget, phase, idleness."""

from datetime import UTC, datetime, timedelta

from fakes import fired

from controller.plans import spec
from controller.workflows import ledger
from controller.workflows import remediation_io as rio
from controller.workflows import resource_io as io

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def _ledger(**options) -> ledger.Ledger:
    return ledger.Ledger(io.ResourceState(resource="service/web"), io.ResourceOptions(**options))


def test_dedupe_window_is_bounded_and_forgets_the_oldest():
    """A transition id is seen once; the window keeps only the newest ids."""
    book = _ledger(dedupe_window=3)
    assert [book.first_time(name) for name in ("a", "b", "a", "c", "d")] == [
        True,
        True,
        False,
        True,
        True,
    ]
    assert list(book.seen) == ["b", "c", "d"]
    assert book.first_time("a")


def test_cooldown_and_budget_refuse_until_they_expire():
    """A plan in cooldown or over budget is refused with a reason; both expire by time alone."""
    plan = spec.Plan(
        name="fix",
        cooldown=timedelta(minutes=5),
        budget=spec.Budget(runs=2, per=timedelta(hours=1)),
    )
    book = _ledger()
    assert book.refusal(plan, NOW) == ""
    book.spend(plan, NOW)
    book.start_cooldown("fix", plan.cooldown, NOW)
    assert "cooling down" in book.refusal(plan, NOW + timedelta(minutes=4))
    book.spend(plan, NOW + timedelta(minutes=6))
    assert "budget of 2 runs" in book.refusal(plan, NOW + timedelta(minutes=7))
    book.expire(NOW + timedelta(minutes=61))
    assert len(book.budget) == 1
    assert book.refusal(plan, NOW + timedelta(minutes=61)) == ""


def test_phase_precedence():
    """Paused beats silenced beats a running remediation beats escalated, firing, cooling down."""
    book = _ledger()
    assert book.compute_phase(NOW) is io.Phase.HEALTHY
    book.start_cooldown("fix", timedelta(minutes=5), NOW)
    assert book.compute_phase(NOW) is io.Phase.COOLING_DOWN
    record = io.EpisodeRecord(fired=fired("service/web"), status=io.EpisodeStatus.DONE)
    book.add(record, NOW)
    assert book.compute_phase(NOW) is io.Phase.FIRING
    book.update(
        io.EpisodeRecord(
            fired=record.fired, status=io.EpisodeStatus.DONE, outcome=rio.Outcome.ESCALATED
        )
    )
    assert book.compute_phase(NOW) is io.Phase.ESCALATED
    book.silenced_until = NOW + timedelta(hours=1)
    assert book.compute_phase(NOW) is io.Phase.SILENCED
    book.paused = True
    assert book.compute_phase(NOW) is io.Phase.PAUSED


def test_forgettable_only_when_nothing_time_bound_is_left():
    """The run may end only when idle long enough and no cooldown, budget window or episode remains."""
    book = _ledger(idle_timeout=timedelta(hours=1))
    book.last_change = NOW
    assert not book.forgettable(NOW + timedelta(minutes=30))
    assert book.forgettable(NOW + timedelta(hours=1))
    book.start_cooldown("fix", timedelta(hours=2), NOW)
    assert not book.forgettable(NOW + timedelta(hours=1))
    # The cooldown's end is the next moment anything changes by itself.
    assert book.next_wakeup(NOW + timedelta(minutes=1)) == NOW + timedelta(hours=2)
    book.expire(NOW + timedelta(hours=2))
    assert book.forgettable(NOW + timedelta(hours=2))


def test_snapshot_round_trip():
    """Freezing and thawing the ledger loses nothing."""
    book = _ledger()
    book.first_time("x")
    book.start_cooldown("fix", timedelta(minutes=5), NOW)
    book.add(io.EpisodeRecord(fired=fired("service/web"), status=io.EpisodeStatus.OPEN), NOW)
    state = book.snapshot()
    assert ledger.Ledger(state, io.ResourceOptions()).snapshot() == state
