"""Where hosts come from: the ``fetch_inventory`` activity and the inventory playbooks use.

Two sources, one interface: a CMDB REST API (``cmdb``; it wins when configured) or a
static Ansible inventory file, read with ``ansible-inventory --list`` so that every
format Ansible accepts works (INI, YAML, a directory) and reread only when the file
changes. ``fetch_inventory`` lists a group (``all`` for every host), narrowed by a
selector of ``field: value`` pairs matched against the host's fields and variables.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from temporalio import activity

from controller import errors
from controller.activities import cmdb, failures, processes
from controller.workflows import activity_io

_LIST_TIMEOUT = 120


class Inventory:
    """Hosts by group, from the CMDB or a static file (or neither)."""

    def __init__(
        self,
        *,
        cmdb_client: cmdb.Client | None,
        static: Path | None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Use ``cmdb_client`` if given, else ``static`` (read with ``env`` set)."""
        self._cmdb = cmdb_client
        self._static = static
        self._env = dict(env or {})
        self._lock = threading.Lock()
        self._listed: tuple[float, dict[str, Any]] | None = None

    def ansible_inventory(self) -> Mapping[str, Any] | None:
        """The CMDB's hosts as a YAML-inventory structure; ``None`` without a CMDB.

        Raises:
            errors.RemediationError: the CMDB cannot be read.
        """
        if self._cmdb is None:
            return None
        return cmdb.ansible_inventory(self._cmdb.hosts())

    def group(self, name: str, selector: Mapping[str, str]) -> tuple[str, ...]:
        """The hosts of group ``name`` matching ``selector``, sorted.

        Raises:
            errors.PermanentError: no inventory is configured, or it cannot be parsed.
            errors.TransientError: the CMDB cannot be reached.
        """
        if self._cmdb is not None:
            wanted = cmdb.group_name(name)
            found = [
                host.name
                for host in self._cmdb.hosts()
                if (name == "all" or wanted in host.group_names())
                and _matches(host.fields(), selector)
            ]
            return tuple(sorted(set(found)))
        if self._static is None:
            raise errors.PermanentError("no inventory configured (neither a CMDB nor a file)")
        listed = self._static_listing(self._static)
        hostvars = listed.get("_meta", {}).get("hostvars", {})
        if name != "all" and name not in listed:
            return ()
        members = _members(listed, name)
        return tuple(
            sorted(
                host
                for host in members
                if _matches({k: str(v) for k, v in hostvars.get(host, {}).items()}, selector)
            )
        )

    def _static_listing(self, path: Path) -> dict[str, Any]:
        try:
            stamp = path.stat().st_mtime
        except OSError as exc:
            raise errors.PermanentError(f"inventory {path} cannot be read: {exc}") from exc
        with self._lock:
            if self._listed is not None and self._listed[0] == stamp:
                return self._listed[1]
            listed = _ansible_inventory_list(path, self._env)
            self._listed = (stamp, listed)
            return listed


def _ansible_inventory_list(path: Path, env: Mapping[str, str]) -> dict[str, Any]:
    try:
        done = subprocess.run(
            [processes.executable("ansible-inventory"), "-i", str(path), "--list"],
            capture_output=True,
            text=True,
            timeout=_LIST_TIMEOUT,
            check=False,
            env={**_inherited_env(), "ANSIBLE_NOCOLOR": "1", **env},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise errors.TransientError(f"ansible-inventory failed: {exc}") from exc
    if done.returncode != 0:
        raise errors.PermanentError(
            f"inventory {path} cannot be parsed: {done.stderr.strip()[-1000:]}"
        )
    try:
        listed = json.loads(done.stdout)
    except ValueError as exc:
        raise errors.PermanentError(f"ansible-inventory printed no JSON for {path}") from exc
    if not isinstance(listed, dict):
        raise errors.PermanentError(f"ansible-inventory printed no mapping for {path}")
    return listed


def _inherited_env() -> dict[str, str]:
    """What ansible-inventory gets of the worker's environment: the basics and ANSIBLE_*."""
    return {
        name: value
        for name, value in os.environ.items()
        if name in {"PATH", "HOME", "LANG", "USER", "TMPDIR"} or name.startswith("ANSIBLE_")
    }


def _members(listed: Mapping[str, Any], group: str) -> set[str]:
    """Hosts of ``group`` and of its child groups, recursively."""
    seen: set[str] = set()
    hosts: set[str] = set()
    pending = [group]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        entry = listed.get(name) or {}
        hosts.update(entry.get("hosts", []))
        pending.extend(entry.get("children", []))
    return hosts


def _matches(fields: Mapping[str, str], selector: Mapping[str, str]) -> bool:
    return all(fields.get(key) == value for key, value in selector.items())


class InventoryActivities:
    """``fetch_inventory``, with its inventory injected."""

    def __init__(self, *, hosts: Inventory) -> None:
        """List hosts from ``hosts``."""
        self._hosts = hosts

    @activity.defn(name=activity_io.FETCH_INVENTORY)
    def fetch_inventory(
        self, request: activity_io.FetchInventoryInput
    ) -> activity_io.FetchInventoryOutput:
        """The hosts of a group, sorted and without duplicates."""
        with failures.reported():
            return activity_io.FetchInventoryOutput(
                hosts=self._hosts.group(request.group, request.selector)
            )
