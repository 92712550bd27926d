"""What the Prometheus poller tests share."""

from __future__ import annotations

from controller.domain import transitions


class Recorder:
    """Stands in for Temporal: keeps what would have been signalled."""

    def __init__(self) -> None:
        self.sent: list[transitions.Transition] = []

    async def __call__(self, _resource: object, batch: list[transitions.Transition]) -> None:
        self.sent.extend(batch)
