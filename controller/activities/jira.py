"""Jira REST, Cloud (v3) and Data Center (v2): search, create, comment, transition.

The two flavors differ in three places, all handled here: the API version in paths, the
body format (Cloud wants Atlassian Document Format, Data Center plain text), and search
(Cloud ``GET /rest/api/3/search/jql``; Data Center ``GET /rest/api/2/search``).
Authentication is basic with an e-mail and API token (Cloud), basic with a user and
password, or a bearer personal access token (Data Center).

Idempotency, for retried activities and killed workers: a ticket is found by its episode
label before one is created, and every comment ends with a marker of the step that wrote
it, so a retried comment finds its earlier copy instead of adding a second one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from controller import errors
from controller.activities import config as config_module
from controller.activities import failures

_DONE = "done"
_COMMENT_WINDOW = 50
"""Most recent comments searched for a retried comment's marker."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Ticket:
    """A Jira issue: key, web address and status name."""

    key: str
    url: str
    status: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class NewTicket:
    """What a new ticket says."""

    project: str
    summary: str
    description: str
    issue_type: str
    priority: str
    labels: tuple[str, ...]
    links: tuple[tuple[str, str], ...] = ()
    """(text, href) pairs listed under the description."""


def jql_string(value: str) -> str:
    """``value`` as a JQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def adf(text: str, links: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    """Plain text (paragraphs split on blank lines) and links as an ADF document."""
    content: list[dict[str, Any]] = [
        {"type": "paragraph", "content": [{"type": "text", "text": paragraph}]}
        for paragraph in (p.strip() for p in text.split("\n\n"))
        if paragraph
    ]
    for label, href in links:
        mark = {"type": "link", "attrs": {"href": href}}
        content.append(
            {"type": "paragraph", "content": [{"type": "text", "text": label, "marks": [mark]}]}
        )
    return {"type": "doc", "version": 1, "content": content}


def plain(text: str, links: Sequence[tuple[str, str]] = ()) -> str:
    """Plain text and links as a Data Center body."""
    lines = [text.strip()] if text.strip() else []
    lines += [f"{label}: {href}" for label, href in links]
    return "\n\n".join(lines)


class Client:
    """One Jira server."""

    def __init__(
        self,
        settings: config_module.JiraConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Talk to the server of ``settings``; nothing is sent yet."""
        self._settings = settings
        self._cloud = settings.flavor is config_module.JiraFlavor.CLOUD
        self._api = "/rest/api/3" if self._cloud else "/rest/api/2"
        auth: httpx.Auth | None = None
        headers = {"Accept": "application/json"}
        if settings.user:
            auth = httpx.BasicAuth(settings.user, settings.token)
        elif settings.token:
            headers["Authorization"] = f"Bearer {settings.token}"
        self._http = httpx.AsyncClient(
            base_url=settings.url.rstrip("/"),
            auth=auth,
            headers=headers,
            timeout=settings.timeout.total_seconds(),
            verify=config_module.tls_verify(settings.ca_file),
            transport=transport,
        )

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()

    def url(self, key: str) -> str:
        """The web address of issue ``key``."""
        return f"{self._settings.url.rstrip('/')}/browse/{key}"

    def body(self, text: str, links: Sequence[tuple[str, str]] = ()) -> Any:
        """A description or comment body in the server's format."""
        return adf(text, links) if self._cloud else plain(text, links)

    async def find(self, *, project: str, label: str) -> Ticket | None:
        """The oldest issue of ``project`` carrying ``label``, if any."""
        jql = (
            f"project = {jql_string(project)} AND labels = {jql_string(label)} ORDER BY created ASC"
        )
        params = {"jql": jql, "fields": "status", "maxResults": "5"}
        path = f"{self._api}/search/jql" if self._cloud else f"{self._api}/search"
        found = await self._request("GET", path, "search", params=params)
        issues = found.get("issues") if isinstance(found, Mapping) else None
        if not issues:
            return None
        first = issues[0]
        return Ticket(key=str(first["key"]), url=self.url(str(first["key"])), status=_status(first))

    async def create(self, ticket: NewTicket) -> Ticket:
        """Create an issue."""
        fields: dict[str, Any] = {
            "project": {"key": ticket.project},
            "summary": ticket.summary[:255],
            "issuetype": {"name": ticket.issue_type},
            "labels": list(ticket.labels),
            "description": self.body(ticket.description, ticket.links),
        }
        if ticket.priority:
            fields["priority"] = {"name": ticket.priority}
        made = await self._request("POST", f"{self._api}/issue", "create", json={"fields": fields})
        key = str(made["key"])
        return Ticket(key=key, url=self.url(key))

    async def comment(self, key: str, text: str, *, marker: str) -> str:
        """Add a comment ending in ``marker``, unless a comment with it exists; its id."""
        path = f"{self._api}/issue/{key}/comment"
        params = {"orderBy": "-created", "maxResults": str(_COMMENT_WINDOW)}
        listed = await self._request("GET", path, "list comments", params=params)
        for comment in listed.get("comments", []) if isinstance(listed, Mapping) else []:
            if marker in json.dumps(comment.get("body", "")):
                return str(comment.get("id", ""))
        made = await self._request(
            "POST", path, "comment", json={"body": self.body(f"{text}\n\n{marker}")}
        )
        return str(made.get("id", ""))

    async def status(self, key: str) -> tuple[str, bool]:
        """The issue's status name, and whether it is in the done category."""
        issue = await self._request(
            "GET", f"{self._api}/issue/{key}", "read", params={"fields": "status"}
        )
        return _status(issue), _category(issue) == _DONE

    async def transition(self, key: str, name: str) -> str:
        """Move the issue by the transition called (or leading to a status called) ``name``.

        Returns the new status name.

        Raises:
            errors.PermanentError: no such transition is available from its status.
        """
        path = f"{self._api}/issue/{key}/transitions"
        listed = await self._request("GET", path, "list transitions")
        options = listed.get("transitions", []) if isinstance(listed, Mapping) else []
        wanted = name.casefold()
        chosen = next(
            (t for t in options if str(t.get("name", "")).casefold() == wanted),
            None,
        ) or next(
            (t for t in options if str(t.get("to", {}).get("name", "")).casefold() == wanted),
            None,
        )
        if chosen is None:
            names = ", ".join(sorted(str(t.get("name")) for t in options)) or "none"
            raise errors.PermanentError(
                f"Jira: {key} has no transition {name!r} (available: {names})"
            )
        await self._request("POST", path, "transition", json={"transition": {"id": chosen["id"]}})
        return str(chosen.get("to", {}).get("name", name))

    async def _request(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        with failures.http_errors(f"Jira {what}"):
            response = await self._http.request(method, path, **kwargs)
        if response.is_success:
            return failures.json_or_none(response) or {}
        error = failures.status_error(response.status_code, f"Jira {what}")
        detail = _jira_errors(response)
        raise type(error)(f"{error}: {detail}" if detail else str(error))


def _status(issue: Mapping[str, Any]) -> str:
    return str(((issue.get("fields") or {}).get("status") or {}).get("name", ""))


def _category(issue: Mapping[str, Any]) -> str:
    status = (issue.get("fields") or {}).get("status") or {}
    return str((status.get("statusCategory") or {}).get("key", ""))


def _jira_errors(response: httpx.Response) -> str:
    """Jira's ``errorMessages`` and field ``errors``, which say what was wrong."""
    body = failures.json_or_none(response)
    if not isinstance(body, Mapping):
        return ""
    parts = [str(m) for m in body.get("errorMessages", []) or []]
    parts += [f"{k}: {v}" for k, v in (body.get("errors") or {}).items()]
    return "; ".join(parts)[:500]
