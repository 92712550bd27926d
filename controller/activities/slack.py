"""Approval messages in Slack, through ``slack_sdk``'s ``WebClient``.

An approval step that names a channel posts one Block Kit message (``chat.postMessage``):
the episode's summary, the question, the step, the deadline, links to the Temporal Web UI
and to ``homeostat history``, and Approve/Deny buttons whose value names the resource and
episode (``domain.approvals.ButtonValue``). When the step ends, the buttons are replaced
by what happened (``chat.update``): who approved or denied it and how, or that nobody
answered in time and what follows. The click itself reaches Homeostat through the operator
API (``/v1/slack/interactions``), not through here.

Text from labels and annotations is escaped for Slack's mrkdwn (``&``, ``<``, ``>``), so
an alert cannot mention ``@channel`` or forge a link. The bot token lives in the client
only, never in an activity's input or output.

Errors: Slack answers ``ok: false`` with an error code; rate limits, Slack's own failures
and network errors are ``TransientError`` (Temporal retries), anything else
(``channel_not_found``, ``not_in_channel``, ``invalid_auth`` ...) is ``PermanentError``.
"""

from __future__ import annotations

import contextlib
import threading
import urllib.error
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

import slack_sdk
from slack_sdk import errors as slack_errors
from temporalio import activity

from controller import errors
from controller.activities import config as config_module
from controller.activities import failures
from controller.domain import approvals, resources
from controller.workflows import activity_io, slack_io

_TRANSIENT_CODES = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
_SECTION_LIMIT = 2900
"""Slack refuses section texts over 3,000 characters."""
_HEADER_LIMIT = 150
_END_LINES = {
    slack_io.ApprovalEnd.APPROVED: ":white_check_mark: *Approved* by {by}",
    slack_io.ApprovalEnd.DENIED: ":x: *Denied* by {by}",
    slack_io.ApprovalEnd.TIMED_OUT: ":alarm_clock: *No answer* by the deadline",
    slack_io.ApprovalEnd.CANCELLED: ":heavy_minus_sign: *No longer needed*",
}


def make_client(settings: config_module.SlackConfig) -> slack_sdk.WebClient:
    """A Web API client that leaves every retry to Temporal."""
    verify = config_module.tls_verify(settings.ca_file)
    return slack_sdk.WebClient(
        token=settings.bot_token,
        base_url=settings.api_url if settings.api_url.endswith("/") else settings.api_url + "/",
        timeout=max(1, round(settings.timeout.total_seconds())),
        ssl=verify if not isinstance(verify, bool) else None,
        retry_handlers=[],
    )


def escape(text: str) -> str:
    """``text`` as literal mrkdwn: no mentions, links or formatting can hide in it."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@contextlib.contextmanager
def translated(what: str) -> Iterator[None]:
    """Translate ``slack_sdk`` and network exceptions raised inside into remediation errors."""
    try:
        yield
    except slack_errors.SlackApiError as exc:
        status = exc.response.status_code
        code = exc.response.get("error", "") if isinstance(exc.response.data, dict) else ""
        why = f"{what}: Slack answered HTTP {status}" + (f" {code}" if code else "")
        if status == 429 or status >= 500 or code in _TRANSIENT_CODES:  # noqa: PLR2004
            raise errors.TransientError(why) from None
        raise errors.PermanentError(why) from None
    except slack_errors.SlackClientError as exc:
        raise errors.PermanentError(f"{what}: {type(exc).__name__}: {exc}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise errors.TransientError(f"{what}: {type(exc).__name__}: {exc}") from None


class SlackActivities:
    """``slack_post_approval`` and ``slack_update_approval``, with Slack's settings injected."""

    def __init__(
        self,
        *,
        settings: config_module.SlackConfig | None,
        links: config_module.LinksConfig,
        client_factory: Callable[[config_module.SlackConfig], slack_sdk.WebClient] = make_client,
    ) -> None:
        """Post through ``settings`` (``None``: Slack is not configured)."""
        self._settings = settings
        self._links = links
        self._factory = client_factory
        self._client: slack_sdk.WebClient | None = None
        self._posted: dict[str, slack_io.SlackMessage] = {}
        self._posted_lock = threading.Lock()

    def _web(self) -> slack_sdk.WebClient:
        if self._settings is None:
            raise errors.PermanentError("Slack is not configured (slack.bot_token)")
        if self._client is None:
            self._client = self._factory(self._settings)
        return self._client

    @activity.defn(name=activity_io.SLACK_POST_APPROVAL)
    def slack_post_approval(self, request: slack_io.SlackApprovalInput) -> slack_io.SlackMessage:
        """Post the approval question with Approve/Deny buttons."""
        with failures.reported():
            client = self._web()
            with translated("chat.postMessage"):
                answer = client.chat_postMessage(
                    channel=request.channel,
                    text=_fallback(request.question, request.summary),
                    blocks=self.question_blocks(request),
                    unfurl_links=False,
                    unfurl_media=False,
                )
            return slack_io.SlackMessage(channel=str(answer["channel"]), ts=str(answer["ts"]))

    @activity.defn(name=activity_io.SLACK_NOTIFY)
    def slack_notify(self, request: slack_io.SlackNotifyInput) -> slack_io.SlackMessage:
        """Post a ``slack`` step's message; a retry of a posted step answers the same message.

        The step's idempotency key is remembered for the worker's lifetime, so a retry after
        a lost answer (or a timeout after Slack accepted) does not post twice.
        """
        with failures.reported():
            key = request.context.idempotency_key
            with self._posted_lock:
                if key in self._posted:
                    return self._posted[key]
            client = self._web()
            with translated("chat.postMessage"):
                answer = client.chat_postMessage(
                    channel=request.channel,
                    text=request.text[:_SECTION_LIMIT],
                    blocks=[
                        _section(request.text[:_SECTION_LIMIT]),
                        self._links_block(request.context.episode),
                    ],
                    unfurl_links=False,
                    unfurl_media=False,
                )
            posted = slack_io.SlackMessage(channel=str(answer["channel"]), ts=str(answer["ts"]))
            with self._posted_lock:
                self._posted[key] = posted
            return posted

    @activity.defn(name=activity_io.SLACK_UPDATE_APPROVAL)
    def slack_update_approval(
        self, request: slack_io.SlackApprovalUpdateInput
    ) -> slack_io.SlackMessage:
        """Replace the buttons with how the step ended."""
        with failures.reported():
            client = self._web()
            with translated("chat.update"):
                answer = client.chat_update(
                    channel=request.message.channel,
                    ts=request.message.ts,
                    text=_fallback(request.question, request.summary),
                    blocks=self.end_blocks(request),
                )
            return slack_io.SlackMessage(channel=str(answer["channel"]), ts=str(answer["ts"]))

    def question_blocks(self, request: slack_io.SlackApprovalInput) -> list[dict[str, Any]]:
        """The Block Kit of the question: summary, question, facts, links, buttons."""
        context = request.context
        value = approvals.ButtonValue(
            resource=context.resource, episode=context.episode, step=context.step
        ).encode()
        facts = {
            "Resource": f"`{escape(context.resource)}`",
            "Step": f"`{escape(context.step)}` of plan `{escape(context.plan)}`",
            "Severity": escape(request.severity.value),
            "Deadline": _date(request.deadline),
            "Approvers": escape(", ".join(request.approvers)) or "anyone allowed to answer",
            "If nobody answers": escape(request.on_timeout),
        }
        return [
            _header(f"Approval needed: {context.plan} on {context.resource}"),
            _section(escape(request.summary)),
            _section(f"*{escape(request.question)}*"),
            {"type": "section", "fields": [_mrkdwn(f"*{k}*\n{v}") for k, v in facts.items()]},
            self._links_block(context.episode),
            {
                "type": "actions",
                "block_id": "homeostat_approval",
                "elements": [
                    _button(approvals.APPROVE_ACTION, "Approve", "primary", value),
                    _button(approvals.DENY_ACTION, "Deny", "danger", value),
                ],
            },
        ]

    def end_blocks(self, request: slack_io.SlackApprovalUpdateInput) -> list[dict[str, Any]]:
        """The Block Kit once the step ended: the question again, and what happened."""
        context = request.context
        line = _END_LINES[request.end].format(by=_who(request.by, request.via))
        if request.comment:
            line += f": {escape(request.comment)}"
        if request.then:
            line += f" ({escape(request.then)})"
        return [
            _header(f"Approval: {context.plan} on {context.resource}"),
            _section(escape(request.summary)),
            _section(f"*{escape(request.question)}*"),
            _section(line),
            self._links_block(context.episode),
        ]

    def _links_block(self, episode: resources.EpisodeId) -> dict[str, Any]:
        parts = [f"`homeostat history {escape(episode)}`"]
        url = self._links.episode_url(episode)
        if url:
            parts.insert(0, f"<{url}|Temporal Web UI>")
        return {"type": "context", "elements": [_mrkdwn(" · ".join(parts))]}


def _fallback(question: str, summary: str) -> str:
    return escape(f"Approval needed: {question} ({summary})")[:_SECTION_LIMIT]


def _who(by: str, via: approvals.Channel | None) -> str:
    if by.startswith(approvals.SLACK_PREFIX):
        return f"<@{escape(by.removeprefix(approvals.SLACK_PREFIX))}>"
    shown = f"`{escape(by)}`" if by else "someone"
    return f"{shown} ({via.value})" if via is not None else shown


def _date(when: datetime) -> str:
    stamp = int(when.timestamp())
    return f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{when.isoformat()}>"


def _mrkdwn(text: str) -> Mapping[str, str]:
    return {"type": "mrkdwn", "text": text[:_SECTION_LIMIT]}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": text[:_HEADER_LIMIT]}}


def _button(action_id: str, text: str, style: str, value: str) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "style": style,
        "text": {"type": "plain_text", "text": text},
        "value": value,
    }
