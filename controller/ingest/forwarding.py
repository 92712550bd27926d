"""Webhook events through Kafka, so that several ingest replicas never split a window.

In ``webhooks.mode: kafka`` a replica that receives a generic event or a GitLab webhook
does not evaluate it: it produces the decoded observation to a Kafka topic, keyed by the
resource the first matching rule derives from it, and answers once the broker
acknowledged it. The replicas' consumer group reads that topic like any other: every
event of one resource goes to one partition and so to one replica, and a rule's ``for``
window, count or correlation sees all of them. Alertmanager notifications stay direct:
Alertmanager sends each alert's whole state every time and episode ids are
deterministic, so any replica may take them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import kafka
import kafka.admin
import kafka.errors
import structlog

from controller import dispatch, errors
from controller.domain import observations

log = structlog.get_logger(__name__)

MARKER = "homeostat_forwarded"
"""The key that tells a forwarded observation from any other message."""
_FORWARDED_SOURCES = {observations.SourceKind.WEBHOOK, observations.SourceKind.GITLAB}

KeyOf = Callable[[observations.Observation], str | None]
"""The partitioning key of an observation: the resource its rules are about, if any."""


def wrap(observation: observations.Observation) -> bytes:
    """The observation as a message of the forwarding topic."""
    return json.dumps(
        {
            MARKER: 1,
            "source": observation.source.value,
            "stream": observation.stream,
            "at": observation.at.isoformat(),
            "labels": dict(observation.labels),
            "body": observation.body,
        },
        separators=(",", ":"),
    ).encode()


def unwrap(value: Any) -> observations.Observation:
    """The observation a forwarded message carries, as the receiving replica decoded it.

    Raises:
        errors.PayloadError: not a forwarded observation.
    """
    if not isinstance(value, dict) or value.get(MARKER) != 1:
        raise errors.PayloadError("(message)", "not a forwarded webhook event")
    try:
        source = observations.SourceKind(value["source"])
        at = datetime.fromisoformat(value["at"])
        labels = {str(name): str(text) for name, text in dict(value["labels"]).items()}
        body = value["body"]
        stream = str(value["stream"])
    except (KeyError, ValueError, TypeError) as exc:
        raise errors.PayloadError("(message)", f"malformed forwarded event: {exc}") from None
    if source not in _FORWARDED_SOURCES or at.tzinfo is None or not isinstance(body, dict):
        raise errors.PayloadError("(message)", "malformed forwarded event")
    return observations.Observation(source=source, stream=stream, at=at, labels=labels, body=body)


def ensure_topic(
    *,
    bootstrap_servers: Sequence[str],
    topic: str,
    partitions: int,
    client_options: dict[str, Any] | None = None,
) -> None:
    """Create ``topic`` with ``partitions`` partitions unless it exists."""
    admin = kafka.admin.KafkaAdminClient(
        bootstrap_servers=list(bootstrap_servers), **(client_options or {})
    )
    try:
        admin.create_topics(
            [kafka.admin.NewTopic(name=topic, num_partitions=partitions, replication_factor=1)]
        )
        log.info("forwarding_topic_created", topic=topic, partitions=partitions)
    except kafka.errors.TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


class Forwarder:
    """Produces webhook observations to the forwarding topic; one producer per process."""

    def __init__(
        self,
        *,
        bootstrap_servers: Sequence[str],
        topic: str,
        key_of: KeyOf,
        client_options: dict[str, Any] | None = None,
        timeout: timedelta = timedelta(seconds=10),
    ) -> None:
        """Produce to ``topic``, keyed by ``key_of``; give up after ``timeout``."""
        self._topic = topic
        self._key_of = key_of
        self._timeout = timeout
        self._producer = kafka.KafkaProducer(
            bootstrap_servers=list(bootstrap_servers),
            acks="all",
            linger_ms=2,
            **(client_options or {}),
        )

    @property
    def topic(self) -> str:
        """The forwarding topic."""
        return self._topic

    async def forward(self, found: Sequence[observations.Observation]) -> None:
        """Produce ``found`` and return once the broker acknowledged every message.

        Raises:
            dispatch.DispatchTimeoutError: the broker did not acknowledge in time (retry).
            dispatch.DispatchError: the broker refused a message.
        """
        if not found:
            return
        pending = []
        for observation in found:
            key = self._key_of(observation) or observation.stream
            pending.append(
                self._producer.send(self._topic, value=wrap(observation), key=key.encode())
            )
        seconds = self._timeout.total_seconds()

        def wait() -> None:
            for future in pending:
                future.get(timeout=seconds)

        try:
            await asyncio.to_thread(wait)
        except kafka.errors.KafkaTimeoutError as exc:
            raise dispatch.DispatchTimeoutError(
                f"Kafka did not take the event within {seconds:g} s: {exc}"
            ) from None
        except kafka.errors.KafkaError as exc:
            raise dispatch.DispatchError(f"Kafka refused the event: {exc}") from None

    def close(self) -> None:
        """Flush and close the producer."""
        self._producer.close(timeout=5)
