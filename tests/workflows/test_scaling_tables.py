"""The HPA scaling math, table-driven, against the examples of the Kubernetes documentation.

Source: kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/ ("Algorithm
details", "Scaling policies", "Stabilization window", "Default Behavior" and the
"Example" sections of "Configurable scaling behavior").
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from controller.plans import spec
from controller.workflows import scaling

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
TARGET = "web"


def policy(**more) -> spec.ScalePolicy:
    fields = {"metric": "m", "target": 100.0, "min_replicas": 1, "max_replicas": 1000, **more}
    return spec.ScalePolicy(**fields)


def behavior(*rates: tuple[str, int, int], select=spec.SelectPolicy.MAX, window=0):
    return spec.ScaleBehavior(
        stabilization=timedelta(seconds=window),
        policies=tuple(
            spec.RatePolicy(
                kind=spec.RatePolicyKind(kind), value=value, period=timedelta(seconds=period)
            )
            for kind, value, period in rates
        ),
        select=select,
    )


NO_LIMITS = {"scale_up": behavior(), "scale_down": behavior()}
"""No stabilization and no rate policies: the bare rule."""


@pytest.mark.parametrize(
    ("current", "metric", "expected", "why"),
    [
        (2, 200.0, 4, "200m / 100m = 2.0: the replicas double"),
        (4, 50.0, 2, "50m / 100m = 0.5: the replicas halve"),
        (5, 105.0, 5, "ratio 1.05 is within the default tolerance 0.1: no change"),
        (5, 92.0, 5, "ratio 0.92 is within the tolerance: no change"),
        (5, 111.0, 6, "ceil(5 x 1.11) = ceil(5.55) = 6"),
        (10, 89.0, 9, "ceil(10 x 0.89) = 9: just outside the tolerance"),
        (3, 100.0 / 3 * 4, 4, "ceil(3 x 1.333...) = 4, no floating-point overshoot to 5"),
    ],
)
def test_desired_replicas_rule(current, metric, expected, why):
    """The rule: desiredReplicas = ceil[currentReplicas x (currentMetricValue / desiredMetricValue)]."""
    desired, _ = scaling.recommend(
        target=TARGET,
        current=current,
        metric=metric,
        policy=policy(**NO_LIMITS),
        history=scaling.ScalerHistory(),
        now=NOW,
    )
    assert desired == expected, why


@pytest.mark.parametrize(
    ("current", "metric", "bounds", "expected"),
    [
        (8, 300.0, {"max_replicas": 10}, 10),
        (4, 10.0, {"min_replicas": 3}, 3),
    ],
)
def test_min_and_max_bound_the_result(current, metric, bounds, expected):
    """The result never leaves [minReplicas, maxReplicas]."""
    desired, _ = scaling.recommend(
        target=TARGET,
        current=current,
        metric=metric,
        policy=policy(**NO_LIMITS, **bounds),
        history=scaling.ScalerHistory(),
        now=NOW,
    )
    assert desired == expected


def simulate(start: int, *, metric_for, steps: int, every: timedelta, pol: spec.ScalePolicy):
    """Run the autoscaler loop: recommend, apply, record; the replica counts after each step."""
    history = scaling.ScalerHistory()
    current, seen, now = start, [], NOW
    for _ in range(steps):
        desired, history = scaling.recommend(
            target=TARGET,
            current=current,
            metric=metric_for(current),
            policy=pol,
            history=history,
            now=now,
        )
        if desired != current:
            history = scaling.record_change(
                history, target=TARGET, at=now, before=current, after=desired
            )
        current = desired
        seen.append(current)
        now += every
    return seen


def test_documented_scale_down_policies():
    """The documented scale-down policies: Pods 4/60s and Percent 10/60s, selectPolicy Max.

    From 80 to 10: 8 first, then 8 of 72 (7.2 rounded up), and 4 at a time below 40.
    """
    down = behavior(("pods", 4, 60), ("percent", 10, 60))
    pol = policy(scale_up=behavior(), scale_down=down)
    seen = simulate(
        80,
        metric_for=lambda current: 100.0 * 10 / current,
        steps=14,
        every=timedelta(seconds=61),
        pol=pol,
    )
    assert seen[:2] == [72, 64]
    assert seen == [72, 64, 57, 51, 45, 40, 36, 32, 28, 24, 20, 16, 12, 10]
    below_40 = [a - b for a, b in itertools.pairwise(seen[6:]) if a < 40 and b > 10]
    assert set(below_40) == {4}


def test_policies_count_changes_within_their_period():
    """A second step inside the period may change only what the period has left."""
    down = behavior(("pods", 4, 60))
    pol = policy(scale_up=behavior(), scale_down=down)
    seen = simulate(
        20,
        metric_for=lambda current: 100.0 * 5 / current,
        steps=3,
        every=timedelta(seconds=20),
        pol=pol,
    )
    assert seen == [16, 16, 16]  # 4 pods used in the first 60 s window


@pytest.mark.parametrize(
    ("current", "metric", "expected", "why"),
    [
        (1, 1000.0, 5, "1 -> 10 wanted: at most max(4 pods, 100%) = 4 more"),
        (10, 500.0, 20, "10 -> 50 wanted: at most max(4 pods, 100% = 10) more"),
        (2, 150.0, 3, "within the policies: the rule's own answer"),
    ],
)
def test_default_scale_up_behavior(current, metric, expected, why):
    """The default scaleUp: no stabilization; Percent 100 and Pods 4 per 15 s, selectPolicy Max."""
    up = behavior(("percent", 100, 15), ("pods", 4, 15))
    desired, _ = scaling.recommend(
        target=TARGET,
        current=current,
        metric=metric,
        policy=policy(scale_up=up, scale_down=behavior()),
        history=scaling.ScalerHistory(),
        now=NOW,
    )
    assert desired == expected, why


def test_select_policy_min_picks_the_smallest_change():
    """With selectPolicy Min the policy allowing the least change wins (Pods 4 vs Percent 100)."""
    up = behavior(("percent", 100, 15), ("pods", 4, 15), select=spec.SelectPolicy.MIN)
    desired, _ = scaling.recommend(
        target=TARGET,
        current=10,
        metric=500.0,
        policy=policy(scale_up=up, scale_down=behavior()),
        history=scaling.ScalerHistory(),
        now=NOW,
    )
    assert desired == 14


def test_disabled_scale_down():
    """With selectPolicy Disabled on scaleDown the replicas never go down."""
    down = behavior(("percent", 100, 15), select=spec.SelectPolicy.DISABLED)
    desired, _ = scaling.recommend(
        target=TARGET,
        current=10,
        metric=10.0,
        policy=policy(scale_up=behavior(), scale_down=down),
        history=scaling.ScalerHistory(),
        now=NOW,
    )
    assert desired == 10


def test_scale_down_stabilization_uses_the_highest_recent_recommendation():
    """With the default 300 s window, the highest recommendation of the last 5 minutes wins.

    A recommendation stops counting once it is older than the window.
    """
    pol = policy(scale_up=behavior(), scale_down=behavior(window=300))
    history = scaling.ScalerHistory()
    answers = []
    for seconds, metric in [(0, 100.0), (120, 80.0), (240, 50.0), (301, 50.0), (421, 50.0)]:
        desired, history = scaling.recommend(
            target=TARGET,
            current=10,
            metric=metric,
            policy=pol,
            history=history,
            now=NOW + timedelta(seconds=seconds),
        )
        answers.append(desired)
    # raw recommendations: 10, 8, 5, 5, 5; highest within 300 s of each moment
    assert answers == [10, 10, 10, 8, 5]


def test_scale_up_stabilization_uses_the_lowest_recent_recommendation():
    """An up window takes the lowest recommendation in it, so a spike alone does not scale up."""
    pol = policy(scale_up=behavior(window=60), scale_down=behavior())
    history = scaling.ScalerHistory()
    answers = []
    for seconds, metric in [(0, 100.0), (30, 300.0), (61, 300.0)]:
        desired, history = scaling.recommend(
            target=TARGET,
            current=4,
            metric=metric,
            policy=pol,
            history=history,
            now=NOW + timedelta(seconds=seconds),
        )
        answers.append(desired)
    assert answers == [4, 4, 12]
