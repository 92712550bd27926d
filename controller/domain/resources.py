"""What a resource is called, and the one place Temporal workflow ids are built."""

from __future__ import annotations

import re
from typing import NewType

ResourceKey = NewType("ResourceKey", str)
"""A resource as ``kind/name``, for example ``service/web`` or ``host/db-1``."""

EpisodeId = NewType("EpisodeId", str)
"""A firing episode, deterministic from (rule, resource, episode start)."""

_BAD_SEGMENTS = frozenset({"", ".", ".."})
_KEY = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}/[A-Za-z0-9][A-Za-z0-9_.:@/-]{0,254}$")


def parse_resource_key(text: str) -> ResourceKey:
    """Check that ``text`` is ``kind/name`` and return it as a key.

    Raises:
        ValueError: the text is not a resource key; the message says why.
    """
    if not _KEY.fullmatch(text):
        raise ValueError(
            f"resource {text!r} is not 'kind/name' (kind: lower-case letters, digits, '_.-'; "
            "name: letters, digits, '_.:@/-'; at most 320 characters)"
        )
    # The name may have '/'-separated segments, but no empty, '.' or '..' one: such a key
    # would name another resource in any path or URL built from it (and look like one).
    segments = text.split("/")
    if any(segment in _BAD_SEGMENTS for segment in segments):
        raise ValueError(
            f"resource {text!r} has an empty, '.' or '..' segment ('//', '/./', '/../' or "
            "a trailing '/'); refused"
        )
    return ResourceKey(text)


def resource_kind(key: ResourceKey) -> str:
    """The ``kind`` part of ``kind/name``."""
    return key.split("/", 1)[0]


def resource_name(key: ResourceKey) -> str:
    """The ``name`` part of ``kind/name``."""
    return key.split("/", 1)[1]


def resource_workflow_id(key: ResourceKey) -> str:
    """The id of the one long-lived workflow that owns ``key``."""
    return f"resource/{key}"


def resource_key_of(workflow_id: str) -> ResourceKey:
    """The resource whose workflow has id ``workflow_id`` (``resource_workflow_id``'s inverse)."""
    return ResourceKey(workflow_id.removeprefix(resource_workflow_id(ResourceKey(""))))


def remediation_workflow_id(episode: EpisodeId) -> str:
    """The id of the child workflow that runs the remediation of one episode."""
    return f"episode/{episode}"
