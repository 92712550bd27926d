"""The Kubernetes HPA's scaling rule, for any target: pure functions over a small history.

desired = ceil(current x metric / target), unless the ratio is within the tolerance; then
per-direction stabilization (scale up to the lowest, down to the highest recommendation
within the window), rate policies (at most N replicas or N percent per period, the one
allowing most change or least, or none), and finally the min and max bounds. The history
(recent recommendations and changes) lives in the resource workflow's state, so a scale
step in one episode respects the windows of the episodes before it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from controller.plans import spec

_EPSILON = 1e-9
_MAX_ENTRIES = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class Recommendation:
    """What the rule recommended for ``target`` at ``at``, before stabilization."""

    target: str
    at: datetime
    replicas: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """A replica change that was made."""

    target: str
    at: datetime
    before: int
    after: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalerHistory:
    """Recent recommendations and changes, oldest first, pruned to the longest window."""

    recommendations: tuple[Recommendation, ...] = ()
    changes: tuple[Change, ...] = ()


def raw_desired(*, current: int, metric: float, policy: spec.ScalePolicy) -> int:
    """The HPA rule before stabilization, rate limits and bounds."""
    if current <= 0:
        return max(policy.min_replicas, 1)
    ratio = metric / policy.target
    if abs(ratio - 1.0) <= policy.tolerance:
        return current
    return math.ceil(current * ratio - _EPSILON)


def stabilized(
    *,
    target: str,
    current: int,
    raw: int,
    now: datetime,
    history: ScalerHistory,
    policy: spec.ScalePolicy,
) -> int:
    """Scale up only to the lowest, down only to the highest, recommendation in the window."""
    up = [*_window(history, target, now, policy.scale_up.stabilization), raw]
    down = [*_window(history, target, now, policy.scale_down.stabilization), raw]
    up_to = min(up)
    down_to = max(down)
    if current < up_to:
        return up_to
    if current > down_to:
        return down_to
    return current


def _window(history: ScalerHistory, target: str, now: datetime, width: timedelta) -> list[int]:
    return [
        item.replicas
        for item in history.recommendations
        if item.target == target and now - item.at <= width
    ]


def rate_limited(
    *,
    target: str,
    current: int,
    desired: int,
    now: datetime,
    history: ScalerHistory,
    policy: spec.ScalePolicy,
) -> int:
    """Limit the change by the direction's rate policies."""
    if desired == current:
        return current
    growing = desired > current
    behavior = policy.scale_up if growing else policy.scale_down
    if behavior.select is spec.SelectPolicy.DISABLED:
        return current
    if not behavior.policies:
        return desired
    limits = [
        _limit(rate, target, current, now, history, growing=growing) for rate in behavior.policies
    ]
    # "max" selects the policy that allows the largest change.
    most = max(limits) if growing else min(limits)
    least = min(limits) if growing else max(limits)
    limit = most if behavior.select is spec.SelectPolicy.MAX else least
    if growing:
        return min(desired, max(limit, current))
    return max(desired, min(limit, current))


def _limit(
    rate: spec.RatePolicy,
    target: str,
    current: int,
    now: datetime,
    history: ScalerHistory,
    *,
    growing: bool,
) -> int:
    recent = [c for c in history.changes if c.target == target and now - c.at <= rate.period]
    if growing:
        start = current - sum(max(0, c.after - c.before) for c in recent)
        if rate.kind is spec.RatePolicyKind.PODS:
            return start + rate.value
        return math.ceil(start * (1 + rate.value / 100) - _EPSILON)
    start = current + sum(max(0, c.before - c.after) for c in recent)
    if rate.kind is spec.RatePolicyKind.PODS:
        return start - rate.value
    return math.floor(start * (1 - rate.value / 100) + _EPSILON)


def recommend(
    *,
    target: str,
    current: int,
    metric: float,
    policy: spec.ScalePolicy,
    history: ScalerHistory,
    now: datetime,
) -> tuple[int, ScalerHistory]:
    """The replica count to set now, and the history with this recommendation added."""
    raw = raw_desired(current=current, metric=metric, policy=policy)
    steady = stabilized(
        target=target, current=current, raw=raw, now=now, history=history, policy=policy
    )
    limited = rate_limited(
        target=target, current=current, desired=steady, now=now, history=history, policy=policy
    )
    desired = min(max(limited, policy.min_replicas), policy.max_replicas)
    added = replace(
        history,
        recommendations=(
            *history.recommendations,
            Recommendation(target=target, at=now, replicas=raw),
        ),
    )
    return desired, prune(added, now=now, keep=_longest(policy))


def record_change(
    history: ScalerHistory, *, target: str, at: datetime, before: int, after: int
) -> ScalerHistory:
    """The history with a change made at ``at`` added."""
    change = Change(target=target, at=at, before=before, after=after)
    return replace(history, changes=(*history.changes, change)[-_MAX_ENTRIES:])


def prune(history: ScalerHistory, *, now: datetime, keep: timedelta) -> ScalerHistory:
    """Drop entries older than ``keep``, and all but the newest few hundred."""
    return ScalerHistory(
        recommendations=tuple(r for r in history.recommendations if now - r.at <= keep)[
            -_MAX_ENTRIES:
        ],
        changes=tuple(c for c in history.changes if now - c.at <= keep)[-_MAX_ENTRIES:],
    )


def _longest(policy: spec.ScalePolicy) -> timedelta:
    spans = [policy.scale_up.stabilization, policy.scale_down.stabilization]
    spans += [rate.period for rate in (*policy.scale_up.policies, *policy.scale_down.policies)]
    return max(spans, default=timedelta(0))
