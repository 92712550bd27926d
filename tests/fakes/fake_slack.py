"""Slack's Web API, as documented, for the methods Homeostat uses: chat.postMessage, chat.update, auth.test.

Documented contract (api.slack.com/methods and /web): every method is
``POST https://slack.com/api/<method>`` with the token in ``Authorization: Bearer``; the
arguments come as JSON (``application/json``) or as a form; the answer is HTTP 200 with
``{"ok": true, ...}``, or ``{"ok": false, "error": "<code>"}`` (``invalid_auth``,
``not_authed``, ``channel_not_found``, ``message_not_found``, ``no_text``,
``invalid_blocks``); 429 with ``Retry-After`` when rate limited.

- ``chat.postMessage`` (channel, text and/or blocks): answers the channel's id, the new
  message's ``ts`` and the message.
- ``chat.update`` (channel id, ts, text and/or blocks): answers channel, ts and text.
- ``auth.test``: answers the workspace and bot identity.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from fake_http import FakeService, Request


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    updates: list[dict[str, Any]] = field(default_factory=list)


class FakeSlack(FakeService):
    def __init__(self, *, token: str, channels: dict[str, str]) -> None:
        """``channels`` maps names (``#ops``) to ids (``C0OPS``); ids work as themselves."""
        super().__init__()
        self.token = token
        self.channels = channels
        self.messages: list[Message] = []
        self._ts = itertools.count(1)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def calls(self, method: str) -> list[Request]:
        return [r for r in self.requests if r.path == f"/api/{method}"]

    def route(self, request: Request) -> tuple[int, Any]:
        if request.method != "POST" or not request.path.startswith("/api/"):
            return 404, {"ok": False, "error": "unknown_method"}
        if request.headers.get("authorization") != f"Bearer {self.token}":
            if "authorization" not in request.headers:
                return 200, {"ok": False, "error": "not_authed"}
            return 200, {"ok": False, "error": "invalid_auth"}
        args = self._args(request)
        method = request.path.removeprefix("/api/")
        handler = {
            "chat.postMessage": self._post,
            "chat.update": self._update,
            "auth.test": self._auth_test,
        }.get(method)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}
        return 200, handler(args)

    @staticmethod
    def _args(request: Request) -> dict[str, Any]:
        if isinstance(request.body, dict):
            return request.body
        if isinstance(request.body, str) and request.body:
            return {key: values[-1] for key, values in parse_qs(request.body).items()}
        return dict(request.query)

    def _channel(self, name: str) -> str | None:
        if name in self.channels.values():
            return name
        return self.channels.get(name)

    def _post(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("text") and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        blocks = args.get("blocks") or []
        if not isinstance(blocks, list) or any("type" not in block for block in blocks):
            return {"ok": False, "error": "invalid_blocks"}
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        message = Message(channel=channel, ts=ts, text=str(args.get("text", "")), blocks=blocks)
        self.messages.append(message)
        return {
            "ok": True,
            "channel": channel,
            "ts": ts,
            "message": {"type": "message", "text": message.text, "blocks": blocks, "ts": ts},
        }

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        found = next(
            (
                m
                for m in self.messages
                if m.channel == args.get("channel") and m.ts == args.get("ts")
            ),
            None,
        )
        if found is None:
            return {"ok": False, "error": "message_not_found"}
        found.updates.append(args)
        found.text = str(args.get("text", found.text))
        found.blocks = args.get("blocks") or found.blocks
        return {"ok": True, "channel": found.channel, "ts": found.ts, "text": found.text}

    @staticmethod
    def _auth_test(args: dict[str, Any]) -> dict[str, Any]:
        del args
        return {
            "ok": True,
            "url": "https://homeostat-test.slack.com/",
            "team": "Homeostat Test",
            "user": "homeostat",
            "team_id": "T0TEST",
            "user_id": "U0BOT",
            "bot_id": "B0BOT",
        }
