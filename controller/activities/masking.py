"""The last net: every activity's result and failure leaves the worker with secrets masked.

Each activity masks what it captures (``redaction``), but a secret can still travel out
another way: a library's exception text, the cause of a translated error (Temporal
records the whole ``__cause__`` chain in the history), a field nobody thought of. The
``Interceptor`` here sits between every activity and Temporal: it masks every known
secret, in each of its forms, in the result (strings anywhere inside dataclasses, dicts,
lists and tuples) and in the failure (message, details, and each cause, re-raised as an
``ApplicationError`` of the original type name, so retry decisions are unchanged).

Only exact known values are masked here, and only those of at least ``MINIMUM``
characters: unlike free text, results carry identifiers (ticket keys, dedup keys) that a
short, weak secret could match and garble.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from temporalio import exceptions
from temporalio import worker as temporal_worker

from controller.activities import redaction

MINIMUM = 8
"""Shortest secret masked at the boundary (captured output masks from four characters)."""


class Boundary:
    """Masks results and failures with a redactor's known values."""

    def __init__(self, redactor: redaction.Redactor) -> None:
        """Mask what ``redactor`` knows."""
        self._redactor = redactor

    def output(self, value: Any) -> Any:
        """``value`` with every string inside masked; the same object when nothing changed."""
        if isinstance(value, str) and not isinstance(value, enum.Enum):
            return self._redactor.known(value)
        if isinstance(value, dict):
            items = {key: self.output(item) for key, item in value.items()}
            return items if _changed(value.values(), items.values()) else value
        if isinstance(value, list | tuple):
            masked = [self.output(item) for item in value]
            if not _changed(value, masked):
                return value
            return masked if isinstance(value, list) else type(value)(masked)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = [field.name for field in dataclasses.fields(value) if field.init]
            changes = {
                name: masked
                for name in fields
                if (masked := self.output(getattr(value, name))) is not getattr(value, name)
            }
            return dataclasses.replace(value, **changes) if changes else value
        return value

    def failure(self, error: BaseException) -> BaseException:
        """The error to report instead of ``error``: itself when it carries no secret.

        Cancellations and other control-flow exceptions pass through untouched.
        """
        if not isinstance(error, Exception) or isinstance(error, exceptions.CancelledError):
            return error
        chain = _chain(error)
        if all(self._clean(link) for link in chain):
            return error
        masked: BaseException | None = None
        for link in reversed(chain):
            current = self._masked(link)
            if masked is not None:
                current.__cause__ = masked
            masked = current
        assert masked is not None  # noqa: S101 - the chain holds ``error`` at least
        return masked

    def _clean(self, error: BaseException) -> bool:
        if self._redactor.known(str(error)) != str(error):
            return False
        if not isinstance(error, exceptions.ApplicationError):
            return True
        details = tuple(error.details)
        return self.output(details) is details

    def _masked(self, error: BaseException) -> exceptions.ApplicationError:
        if isinstance(error, exceptions.ApplicationError):
            return exceptions.ApplicationError(
                self._redactor.known(error.message),
                *self.output(tuple(error.details)),
                type=error.type,
                non_retryable=error.non_retryable,
                next_retry_delay=error.next_retry_delay,
                category=error.category,
            )
        return exceptions.ApplicationError(
            self._redactor.known(str(error)), type=type(error).__name__
        )


def _changed(before: Any, after: Any) -> bool:
    return any(old is not new for old, new in zip(before, after, strict=True))


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and its causes (explicit, or implicit when not suppressed), outermost first."""
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not seen for seen in found):
        found.append(current)
        cause = current.__cause__
        if cause is None and not current.__suppress_context__:
            cause = current.__context__
        current = cause
    return found


class _Inbound(temporal_worker.ActivityInboundInterceptor):
    def __init__(
        self, following: temporal_worker.ActivityInboundInterceptor, boundary: Boundary
    ) -> None:
        super().__init__(following)
        self._boundary = boundary

    async def execute_activity(self, input: temporal_worker.ExecuteActivityInput) -> Any:  # noqa: A002 - the SDK's name
        try:
            result = await super().execute_activity(input)
        except BaseException as error:
            masked = self._boundary.failure(error)
            if masked is error:
                raise
            raise masked from masked.__cause__
        return self._boundary.output(result)


class Interceptor(temporal_worker.Interceptor):
    """A worker interceptor masking every activity's result and failure."""

    def __init__(self, boundary: Boundary) -> None:
        """Mask with ``boundary``."""
        self._boundary = boundary

    def intercept_activity(
        self,
        next: temporal_worker.ActivityInboundInterceptor,  # noqa: A002 - the SDK's name
    ) -> temporal_worker.ActivityInboundInterceptor:
        """Wrap the activity's inbound calls."""
        return _Inbound(next, self._boundary)
