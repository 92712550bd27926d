"""Who may answer an approval step, and the wire format of Slack's Approve/Deny buttons.

An approval carries an identity that something authenticated: the name of an operator
API token, ``slack:<user id>`` for a click in Slack (the signature proves Slack sent it),
or the operating-system user of a CLI that talks straight to Temporal (whoever can reach
Temporal is an administrator, so that identity is only as good as Temporal's access
control). A plan's ``approvers:`` lists identities and approver-group names; the groups an
identity belongs to come from the settings and travel with the decision, so the
workflows check membership without reading settings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from controller.domain import resources


class Channel(StrEnum):
    """How an operator reached Homeostat."""

    API = "api"
    """The ``/v1`` operator API, with a named token (also the CLI given ``--api``)."""
    SLACK = "slack"
    """A button in a Slack message, signed by Slack."""
    CLI = "cli"
    """The CLI talking straight to Temporal, as the operating-system user."""


SLACK_PREFIX: Final = "slack:"
"""Identities of Slack users are ``slack:<user id>``."""


def slack_identity(user_id: str) -> str:
    """The identity of the Slack user ``user_id`` (``slack:U0123``)."""
    return f"{SLACK_PREFIX}{user_id}"


def may_decide(approvers: Iterable[str], *, by: str, groups: Iterable[str] = ()) -> bool:
    """Whether ``by`` (member of ``groups``) may answer a step restricted to ``approvers``.

    An empty list lets anyone who authenticated answer.
    """
    allowed = set(approvers)
    if not allowed:
        return True
    return by in allowed or not allowed.isdisjoint(groups)


APPROVE_ACTION: Final = "homeostat_approve"
DENY_ACTION: Final = "homeostat_deny"
"""``action_id`` of the Approve and Deny buttons of an approval message."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ButtonValue:
    """What an Approve/Deny button carries back (its ``value``, at most 2,000 characters).

    Attributes:
        resource: the resource whose workflow receives the decision.
        episode: the episode whose approval step is answered.
        step: the approval step's path, for the record.
    """

    resource: resources.ResourceKey
    episode: resources.EpisodeId
    step: str = ""

    def encode(self) -> str:
        """The button's ``value``: compact JSON."""
        return json.dumps(
            {"resource": self.resource, "episode": self.episode, "step": self.step},
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, value: str) -> ButtonValue:
        """Read a button's ``value``.

        Raises:
            ValueError: it is not a value this module encoded.
        """
        try:
            data = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc.msg}") from None
        fields = data if isinstance(data, dict) else {}
        resource, episode, step = (_text(fields, key) for key in ("resource", "episode", "step"))
        if not resource or not episode:
            raise ValueError("expected a JSON object with the strings 'resource' and 'episode'")
        return cls(
            resource=resources.parse_resource_key(resource),
            episode=resources.EpisodeId(episode),
            step=step,
        )


def _text(fields: dict[str, object], key: str) -> str:
    value = fields.get(key)
    return value if isinstance(value, str) else ""
