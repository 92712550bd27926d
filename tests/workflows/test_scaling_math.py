"""The HPA rule as pure functions: what a scale step decides from a metric and its history."""

from datetime import UTC, datetime, timedelta

import pytest

from controller.plans import spec
from controller.workflows import scaling

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def _policy(**changes) -> spec.ScalePolicy:
    values = {"metric": "cpu", "target": 0.5, "min_replicas": 1, "max_replicas": 20}
    values.update(changes)
    return spec.ScalePolicy(**values)


@pytest.mark.parametrize(
    ("current", "metric", "expected"),
    [(4, 1.0, 8), (4, 0.25, 2), (4, 0.52, 4), (3, 0.6, 4), (0, 0.9, 1)],
)
def test_raw_rule_with_tolerance(current, metric, expected):
    """Desired = ceil(current x metric / target), unchanged within the 10% tolerance."""
    assert scaling.raw_desired(current=current, metric=metric, policy=_policy()) == expected


def test_bounds_apply_last():
    """A recommendation outside min and max is clamped."""
    desired, _ = scaling.recommend(
        target="web",
        current=10,
        metric=5.0,
        policy=_policy(),
        history=scaling.ScalerHistory(),
        now=NOW,
    )
    assert desired == 20


def test_scale_down_waits_for_its_stabilization_window():
    """A dip right after a high recommendation does not shrink the target within 5 minutes."""
    history = scaling.ScalerHistory(
        recommendations=(
            scaling.Recommendation(target="web", at=NOW - timedelta(minutes=2), replicas=8),
        )
    )
    desired, after = scaling.recommend(
        target="web", current=8, metric=0.1, policy=_policy(), history=history, now=NOW
    )
    assert desired == 8
    later, _ = scaling.recommend(
        target="web",
        current=8,
        metric=0.1,
        policy=_policy(),
        history=after,
        now=NOW + timedelta(minutes=6),
    )
    assert later < 8


def test_rate_policies_and_select():
    """Up by at most 4 pods or 100% per minute: 'max' picks the larger, 'min' the smaller, changes count."""
    up = spec.ScaleBehavior(
        policies=(
            spec.RatePolicy(kind=spec.RatePolicyKind.PODS, value=4, period=timedelta(minutes=1)),
            spec.RatePolicy(
                kind=spec.RatePolicyKind.PERCENT, value=100, period=timedelta(minutes=1)
            ),
        )
    )
    empty = scaling.ScalerHistory()
    most = _policy(scale_up=up)
    least = _policy(scale_up=spec.ScaleBehavior(policies=up.policies, select=spec.SelectPolicy.MIN))
    assert (
        scaling.rate_limited(
            target="web", current=2, desired=20, now=NOW, history=empty, policy=most
        )
        == 6
    )
    assert (
        scaling.rate_limited(
            target="web", current=2, desired=20, now=NOW, history=empty, policy=least
        )
        == 4
    )
    recent = scaling.record_change(
        empty, target="web", at=NOW - timedelta(seconds=30), before=2, after=6
    )
    # 4 pods already added this minute, from a start of 2: pods allows 6, percent allows 4.
    assert (
        scaling.rate_limited(
            target="web", current=6, desired=20, now=NOW, history=recent, policy=most
        )
        == 6
    )
    disabled = _policy(scale_up=spec.ScaleBehavior(select=spec.SelectPolicy.DISABLED))
    assert (
        scaling.rate_limited(
            target="web", current=2, desired=20, now=NOW, history=empty, policy=disabled
        )
        == 2
    )


def test_history_is_pruned_to_the_longest_window():
    """Entries older than every window are dropped, so the state stays small."""
    old = scaling.Recommendation(target="web", at=NOW - timedelta(hours=2), replicas=3)
    _, history = scaling.recommend(
        target="web",
        current=3,
        metric=0.5,
        policy=_policy(),
        history=scaling.ScalerHistory(recommendations=(old,)),
        now=NOW,
    )
    assert [item.at for item in history.recommendations] == [NOW]
