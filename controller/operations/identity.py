"""Who asks: an authenticated name, the channel that authenticated it, its approver groups.

The operator API authenticates a named token, the Slack endpoint a signed click
(``slack:<user id>``), and the CLI talking straight to Temporal takes the operating-system
user (Temporal access is administrator access: such a caller could send any name). The
approver groups of the settings (``api.groups``) say which groups each name belongs to;
a plan's ``approvers:`` may name those groups.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from controller.domain import approvals


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """An authenticated caller.

    Attributes:
        name: the name every change is recorded under.
        channel: what authenticated it.
        groups: the approver groups it belongs to.
    """

    name: str
    channel: approvals.Channel
    groups: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Directory:
    """The approver groups: group name to member names."""

    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, groups: Mapping[str, Iterable[str]]) -> Directory:
        """A directory of ``groups`` (as the settings list them)."""
        return cls(groups={name: frozenset(members) for name, members in groups.items()})

    def identify(self, name: str, channel: approvals.Channel) -> Identity:
        """``name``, authenticated by ``channel``, with the groups it belongs to."""
        member_of = sorted(group for group, members in self.groups.items() if name in members)
        return Identity(name=name, channel=channel, groups=tuple(member_of))

    def members(self, group: str) -> frozenset[str]:
        """The names in ``group`` (none when there is no such group)."""
        return self.groups.get(group, frozenset())
