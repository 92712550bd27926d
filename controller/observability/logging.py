"""structlog, configured once, with the standard library's loggers routed through it.

temporalio, kafka, uvicorn and ansible_runner log through the standard library; a
``ProcessorFormatter`` on the root handler renders their records exactly like ours, so
one process writes one format: JSON when stderr is not a TTY, a readable console otherwise.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, TextIO

import structlog

ROUTED_LOGGERS = (
    "temporalio",
    "kafka",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "ansible_runner",
    "httpx",
    "fastapi",
)

_SECRET_KEYS = frozenset(
    {
        "token",
        "password",
        "secret",
        "api_key",
        "routing_key",
        "authorization",
        "hmac_secret",
        "bearer_token",
    }
)


def _redact_secrets(
    _logger: Any, _method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    """Never let a field named like a secret reach the output."""
    for key in event_dict:
        if key.lower() in _SECRET_KEYS:
            event_dict[key] = "**********"
    return event_dict


def _masking(mask: Callable[[str], str]) -> structlog.types.Processor:
    """A processor applying ``mask`` to every string of an event, exception text included."""

    def masked(value: Any) -> Any:
        if isinstance(value, str):
            return mask(value)
        if isinstance(value, dict):
            return {key: masked(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [masked(item) for item in value]
        return value

    def processor(
        _logger: Any, _method: str, event_dict: structlog.types.EventDict
    ) -> structlog.types.EventDict:
        for key, value in event_dict.items():
            event_dict[key] = masked(value)
        return event_dict

    return processor


def configure(
    *,
    level: str = "info",
    json: bool | None = None,
    stream: TextIO | None = None,
    mask: Callable[[str], str] | None = None,
) -> None:
    """Configure structlog and the standard library's logging.

    Args:
        level: the minimum level name (``debug`` ... ``critical``).
        json: render JSON; ``None`` decides by whether the stream is a TTY.
        stream: where to write; standard error by default.
        mask: applied to every string of every event once exceptions are formatted
            (the configured secrets, masked in every form they are sent).
    """
    out = stream if stream is not None else sys.stderr
    as_json = (not out.isatty()) if json is None else json
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_secrets,
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    # The list structlog holds is changed in place, never replaced: a logger cached on first
    # use keeps that list, so a new list would leave every logger already used on the old
    # configuration (and out of reach of structlog.testing.capture_logs, which edits it).
    processors = structlog.get_config()["processors"]
    processors[:] = [*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter]
    structlog.configure(
        processors=processors,
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            *([_masking(mask)] if mask is not None else []),
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ROUTED_LOGGERS:
        routed = logging.getLogger(name)
        routed.handlers[:] = []
        routed.propagate = True
    # kafka-python is chatty at INFO about every connection; keep its warnings.
    logging.getLogger("kafka").setLevel(max(logging.WARNING, root.level))
