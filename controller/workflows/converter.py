"""The one data converter of every Temporal client, worker and replayer of Homeostat.

Workflow and activity payloads are frozen dataclasses holding ``timedelta``, ``datetime``,
tuples, enums and nested dataclasses; Temporal's default JSON converter cannot carry a
``timedelta``, pydantic's can. The dispatcher, the CLI, the worker and the replay tests
must all pass ``data_converter=DATA_CONVERTER`` to ``Client.connect`` (or ``Replayer``):
a mismatch fails to decode payloads at run or replay time.

The payloads are those of ``temporalio.contrib.pydantic`` (encoding ``json/plain``); the
difference is speed. The worker builds a new payload converter for every workflow it
runs, and pydantic's converter keeps its type adapters per instance, so each workflow
would build them again (hundreds of milliseconds for a plan, inside the workflow task,
under the deadlock detector). Here every instance shares one cache; ``warm_up`` fills it
before a worker starts.
"""

from __future__ import annotations

import functools
from typing import Any, Final

from pydantic import TypeAdapter
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)

_ADAPTERS: functools._lru_cache_wrapper[TypeAdapter[Any]] = functools.lru_cache(maxsize=1024)(
    TypeAdapter
)


class _SharedJSONConverter(PydanticJSONPlainPayloadConverter):
    """Pydantic's JSON converter with the process-wide type adapter cache."""

    def __init__(self) -> None:
        super().__init__()
        self._type_adapter = _ADAPTERS


class PayloadConverter(CompositePayloadConverter):
    """Temporal's default converters, with pydantic (shared cache) for JSON."""

    def __init__(self) -> None:
        """Build the converter list (the worker calls this once per workflow)."""
        super().__init__(
            *(
                _SharedJSONConverter() if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


DATA_CONVERTER: Final = DataConverter(payload_converter_class=PayloadConverter)


def warm_up() -> None:
    """Build the type adapter of every payload type now, outside any workflow task.

    A worker should call this once before it starts polling; otherwise the first
    workflows of a burst build them inside their workflow tasks.
    """
    from controller.domain import transitions  # noqa: PLC0415 - keeps import time low
    from controller.workflows import (  # noqa: PLC0415
        activity_io,
        remediation_io,
        resource_io,
        resource_memo,
    )

    payload_types: list[Any] = [transitions.Transition, transitions.TransitionBatch]
    for module in (activity_io, remediation_io, resource_io, resource_memo):
        payload_types += [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and value.__module__ == module.__name__
            and hasattr(value, "__dataclass_fields__")
        ]
    for payload_type in payload_types:
        _ADAPTERS(payload_type)
