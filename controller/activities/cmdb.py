"""A CMDB REST API as the dynamic inventory: paginated, authenticated, cached.

The contract is NetBox-style (Django REST framework pagination), see
``config.CmdbConfig``: each page answers ``{"count", "next", "results"}`` and ``next`` is
the URL of the following page, or null. A host record has ``name``, ``ip``, ``user``,
``role``, optionally ``groups`` and ``vars``; ``role`` and ``groups`` become Ansible groups,
``ip`` and ``user`` become ``ansible_host`` and ``ansible_user``.

A fetched inventory is reused for ``cache_ttl``; when the CMDB fails, an older one is
used for up to ``max_stale`` (a CMDB outage should not stop remediation), after which the
failure is raised as a ``TransientError``. Only one fetch runs at a time.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import httpx
import structlog

from controller import errors
from controller.activities import ansible_runs, failures
from controller.activities import config as config_module

log = structlog.get_logger(__name__)

_GROUP_CHARS = re.compile(r"[^A-Za-z0-9_]")
_MAX_PAGES = 10_000


def group_name(text: str) -> str:
    """An Ansible-safe group name (letters, digits, underscores) for a role or group."""
    name = _GROUP_CHARS.sub("_", text.strip())
    return f"_{name}" if name[:1].isdigit() else name


@dataclass(frozen=True, slots=True, kw_only=True)
class Host:
    """A host as the CMDB lists it.

    Attributes:
        name: the inventory host name.
        ip: address to connect to.
        user: user to connect as.
        role: the host's role (an Ansible group).
        groups: further Ansible groups.
        vars: further host variables.
    """

    name: str
    ip: str = ""
    user: str = ""
    role: str = ""
    groups: tuple[str, ...] = ()
    vars: Mapping[str, Any] = field(default_factory=dict)

    def group_names(self) -> set[str]:
        """Every Ansible group of the host."""
        return {group_name(g) for g in (self.role, *self.groups) if g}

    def fields(self) -> dict[str, str]:
        """What an inventory selector matches against: the record's fields, then its vars."""
        found = {key: str(value) for key, value in self.vars.items()}
        found.update(name=self.name, ip=self.ip, user=self.user, role=self.role)
        return found

    def hostvars(self) -> dict[str, Any]:
        """The host's Ansible variables."""
        found: dict[str, Any] = dict(self.vars)
        if self.ip:
            found["ansible_host"] = self.ip
        if self.user:
            found["ansible_user"] = self.user
        if self.role:
            found["homeostat_role"] = self.role
        return found


def ansible_inventory(hosts: list[Host]) -> dict[str, Any]:
    """The hosts as a YAML-inventory structure (``all.hosts`` and ``all.children``)."""
    children: dict[str, dict[str, Any]] = {}
    for host in hosts:
        for group in sorted(host.group_names()):
            children.setdefault(group, {"hosts": {}})["hosts"][host.name] = None
    return {
        "all": {
            "hosts": {host.name: host.hostvars() for host in hosts},
            "children": children,
        }
    }


class Client:
    """Reads every host of the CMDB, through a cache."""

    def __init__(
        self, settings: config_module.CmdbConfig, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        """Prepare a client; nothing is sent until the first ``hosts()``."""
        self._settings = settings
        headers = {"Accept": "application/json"}
        if settings.token:
            headers["Authorization"] = f"{settings.scheme} {settings.token}"
        self._http = httpx.Client(
            headers=headers,
            timeout=settings.timeout.total_seconds(),
            verify=config_module.tls_verify(settings.ca_file),
            transport=transport,
        )
        self._lock = threading.Lock()
        self._cached: list[Host] | None = None
        self._fetched_at = 0.0
        self.fetches = 0
        """How many times the CMDB was read (not the cache), for tests and metrics."""

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def hosts(self) -> list[Host]:
        """Every host, from the cache when it is fresh enough.

        Raises:
            errors.TransientError: the CMDB failed and no usable older answer is cached.
            errors.PermanentError: the CMDB refused the request (4xx) or answers nonsense.
        """
        with self._lock:
            age = time.monotonic() - self._fetched_at
            if self._cached is not None and age < self._settings.cache_ttl.total_seconds():
                return self._cached
            try:
                hosts = self._fetch()
            except errors.TransientError as exc:
                if self._cached is not None and age < self._settings.max_stale.total_seconds():
                    log.warning("cmdb_unavailable_using_cache", age_s=round(age), error=str(exc))
                    return self._cached
                raise
            self._cached = hosts
            self._fetched_at = time.monotonic()
            return hosts

    def _fetch(self) -> list[Host]:
        self.fetches += 1
        base = self._settings.url.rstrip("/") + "/"
        url: str | None = urljoin(base, "hosts/")
        params: dict[str, Any] | None = {"limit": self._settings.page_size}
        found: dict[str, Host] = {}
        for _ in range(_MAX_PAGES):
            if url is None:
                return sorted(found.values(), key=lambda h: h.name)
            with failures.http_errors("CMDB"):
                response = self._http.get(url, params=params)
                response.raise_for_status()
            body = failures.json_or_none(response)
            if not isinstance(body, Mapping) or not isinstance(body.get("results"), list):
                raise errors.PermanentError("CMDB: a page is not {'results': [...], 'next': ...}")
            for record in body["results"]:
                host = _host(record)
                try:
                    ansible_runs.check_host(host.name)
                except errors.PermanentError as exc:
                    log.warning("cmdb_host_skipped", reason=str(exc))
                    continue
                found[host.name] = host
            following = body.get("next")
            url = urljoin(base, following) if isinstance(following, str) and following else None
            params = None  # ``next`` carries its own query
        raise errors.PermanentError(f"CMDB: more than {_MAX_PAGES} pages")


def _host(record: Any) -> Host:
    if not isinstance(record, Mapping) or not isinstance(record.get("name"), str):
        raise errors.PermanentError(f"CMDB: a host record has no name: {str(record)[:200]}")
    groups = record.get("groups") or ()
    variables = record.get("vars") or {}
    if not isinstance(groups, list | tuple) or not isinstance(variables, Mapping):
        raise errors.PermanentError(f"CMDB: host {record['name']!r} has malformed groups or vars")
    return Host(
        name=record["name"],
        ip=str(record.get("ip") or ""),
        user=str(record.get("user") or ""),
        role=str(record.get("role") or ""),
        groups=tuple(str(g) for g in groups),
        vars=dict(variables),
    )
