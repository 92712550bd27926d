"""The ticket activities: open (or find) the episode's ticket, comment, resolve.

The activities speak to a ``TicketSystem``; Jira (``jira.Client``, Cloud or Data Center)
is the one shipped. Each activity is idempotent under retries and worker kills:

- ``ticket_create`` searches for the episode's label first and creates only when nothing
  carries it, so a retry after a lost response finds the ticket the first attempt made;
- ``ticket_comment`` marks each comment with its step, and a retry finds the mark;
- ``ticket_resolve`` does nothing to a ticket already done.

Limit: Jira Cloud's search is eventually consistent, so a retry within a second or two of
a create whose response was lost could miss the new ticket; Temporal's retry interval
(seconds) makes that unlikely, not impossible.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from temporalio import activity

from controller import errors
from controller.activities import config as config_module
from controller.activities import failures, jira
from controller.workflows import activity_io


class TicketSystem(Protocol):
    """What the ticket activities need from a ticket system."""

    def url(self, key: str) -> str:
        """The web address of ticket ``key``."""

    async def find(self, *, project: str, label: str) -> jira.Ticket | None:
        """The oldest ticket of ``project`` carrying ``label``."""

    async def create(self, ticket: jira.NewTicket) -> jira.Ticket:
        """Open a ticket."""

    async def comment(self, key: str, text: str, *, marker: str) -> str:
        """Comment unless a comment with ``marker`` exists; the comment's id."""

    async def status(self, key: str) -> tuple[str, bool]:
        """The status name, and whether it counts as done."""

    async def transition(self, key: str, name: str) -> str:
        """Move the ticket by transition ``name``; the new status."""


def marker(context: activity_io.ActivityContext) -> str:
    """The mark a comment of this step carries (short, stable across retries)."""
    digest = hashlib.sha256(context.idempotency_key.encode()).hexdigest()[:16]
    return f"[homeostat:{digest}]"


class TicketingActivities:
    """``ticket_create``, ``ticket_comment`` and ``ticket_resolve`` over one ticket system."""

    def __init__(
        self,
        *,
        system: TicketSystem | None,
        default_project: str = "",
        links: config_module.LinksConfig | None = None,
    ) -> None:
        """Use ``system`` (``None``: ticketing is not configured)."""
        self._system = system
        self._project = default_project
        self._links = links or config_module.LinksConfig()

    @activity.defn(name=activity_io.TICKET_CREATE)
    async def ticket_create(
        self, request: activity_io.TicketCreateInput
    ) -> activity_io.TicketOutput:
        """Find the episode's ticket by its label, or open it."""
        with failures.reported():
            system = self._needed()
            project = request.project or self._project
            found = await system.find(project=project, label=request.episode_label)
            if found is not None:
                return activity_io.TicketOutput(key=found.key, url=found.url, created=False)
            links = tuple((link.text or link.href, link.href) for link in request.links)
            made = await system.create(
                jira.NewTicket(
                    project=project,
                    summary=request.summary,
                    description=request.description,
                    issue_type=request.issue_type,
                    priority=request.priority,
                    labels=tuple(dict.fromkeys((request.episode_label, *request.labels))),
                    links=links + self._episode_link(request.context),
                )
            )
            return activity_io.TicketOutput(key=made.key, url=made.url, created=True)

    @activity.defn(name=activity_io.TICKET_COMMENT)
    async def ticket_comment(
        self, request: activity_io.TicketCommentInput
    ) -> activity_io.TicketCommentOutput:
        """Comment on the ticket (once per step, whatever the retries)."""
        with failures.reported():
            system = self._needed()
            comment_id = await system.comment(
                request.key, request.body, marker=marker(request.context)
            )
            return activity_io.TicketCommentOutput(comment_id=comment_id)

    @activity.defn(name=activity_io.TICKET_RESOLVE)
    async def ticket_resolve(
        self, request: activity_io.TicketResolveInput
    ) -> activity_io.TicketResolveOutput:
        """Comment, then move the ticket to done; a ticket done already is left alone."""
        with failures.reported():
            system = self._needed()
            status, done = await system.status(request.key)
            if done or status.casefold() == request.transition.casefold():
                return activity_io.TicketResolveOutput(key=request.key, status=status)
            if request.comment:
                await system.comment(request.key, request.comment, marker=marker(request.context))
            status = await system.transition(request.key, request.transition)
            return activity_io.TicketResolveOutput(key=request.key, status=status)

    def _needed(self) -> TicketSystem:
        if self._system is None:
            raise errors.PermanentError("ticketing is not configured (no Jira URL)")
        return self._system

    def _episode_link(self, context: activity_io.ActivityContext) -> tuple[tuple[str, str], ...]:
        href = self._links.episode_url(context.episode)
        return (("Episode timeline (Temporal)", href),) if href else ()
