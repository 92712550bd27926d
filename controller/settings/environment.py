"""``HOMEOSTAT_*`` variables: which name no setting, and which hold broken JSON.

pydantic-settings reads a variable per field (nested on ``__``, case-insensitive) and
ignores one that matches no field, so a typo would silently leave a setting at its
default; and it reports broken JSON in a list or mapping variable without naming the
variable. Both are turned into errors that name the variable here.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any

import pydantic
import pydantic_settings

PREFIX = "HOMEOSTAT_"


def describe_error(
    exc: pydantic_settings.SettingsError,
    environ: Mapping[str, str],
    *,
    model: type[pydantic.BaseModel],
) -> str:
    """Name the ``HOMEOSTAT_*`` variables whose JSON (lists, mappings, groups) is broken."""
    lines = ["invalid configuration (from HOMEOSTAT_* variables):"]
    for name, value in sorted(environ.items()):
        if not name.upper().startswith(PREFIX) or not _structured(name, model):
            continue
        try:
            json.loads(value)
        except ValueError as error:
            lines.append(
                f"  {name}: not valid JSON ({error}); lists and mappings are written as JSON, "
                'e.g. ["a:9092", "b:9092"]'
            )
    if len(lines) == 1:
        lines.append(f"  {exc}")
    return "\n".join(lines)


def _structured(variable: str, model: type[pydantic.BaseModel]) -> bool:
    """Whether the setting a variable names holds a list, a mapping or a group (JSON)."""
    path = variable[len(PREFIX) :].lower().split("__")
    current: Any = model
    annotation: Any = None
    for part in path:
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            return annotation is not None and _is_structured(annotation)
        annotation = fields[part].annotation
        current = _unwrap(annotation)
    return _is_structured(annotation)


def _unwrap(annotation: Any) -> Any:
    """``X`` of ``X | None`` (and of ``Annotated[X, ...]``)."""
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        present = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(present) == 1:
            return _unwrap(present[0])
    return annotation


def _is_structured(annotation: Any) -> bool:
    bare = _unwrap(annotation)
    origin = typing.get_origin(bare) or bare
    return origin in {list, dict, set, tuple} or (
        isinstance(origin, type) and issubclass(origin, pydantic.BaseModel)
    )


_NOT_SETTINGS = frozenset({"HOMEOSTAT_API_URL", "HOMEOSTAT_API_TOKEN", "HOMEOSTAT_VARS"})
"""``HOMEOSTAT_*`` variables that are not settings: the CLI's operator-API options, and the
JSON of variables a command step gets (with ``HOMEOSTAT_VAR_<NAME>`` each)."""
_NOT_SETTINGS_PREFIX = "HOMEOSTAT_VAR_"


def unknown_variables(environ: Mapping[str, str], *, model: type[pydantic.BaseModel]) -> list[str]:
    """Every ``HOMEOSTAT_*`` variable that names no setting, with the closest one that does.

    pydantic-settings ignores a variable that matches no field, so a typo
    (``HOMEOSTAT_WEBHOOK__BEARER_TOKEN``, ``HOMEOSTAT_HTTP_PORT``) would silently leave a
    setting at its default; here it is an error. Names are matched as pydantic-settings
    matches them: case-insensitively, nesting on ``__``, any key inside a mapping.
    """
    found: list[str] = []
    for name in sorted(environ):
        upper = name.upper()
        if (
            not upper.startswith(PREFIX)
            or upper in _NOT_SETTINGS
            or upper.startswith(_NOT_SETTINGS_PREFIX)
        ):
            continue
        path = upper[len(PREFIX) :].lower().split("__")
        if _names_a_setting(model, path):
            continue
        candidates = [PREFIX + "__".join(parts).upper() for parts in _paths(model, [], path)]
        closest = difflib.get_close_matches(upper, candidates, n=1, cutoff=0.6)
        hint = f" (did you mean {closest[0]}?)" if closest else ""
        found.append(f"{name}: unknown setting{hint}")
    return found


def _model(annotation: Any) -> type[pydantic.BaseModel] | None:
    bare = _unwrap(annotation)
    return bare if isinstance(bare, type) and issubclass(bare, pydantic.BaseModel) else None


def _names_a_setting(model: type[pydantic.BaseModel], path: list[str]) -> bool:
    """Whether ``path`` (lower-case parts) names a field of ``model``, or a key of a mapping."""
    field = model.model_fields.get(path[0])
    if field is None:
        return False
    rest = path[1:]
    if not rest:
        return True
    nested = _model(field.annotation)
    if nested is not None:
        return _names_a_setting(nested, rest)
    bare = _unwrap(field.annotation)
    if typing.get_origin(bare) is not dict or not rest[0]:
        return False
    if len(rest) == 1:
        return True
    values = _model(typing.get_args(bare)[1])
    return values is not None and _names_a_setting(values, rest[1:])


def _paths(
    model: type[pydantic.BaseModel], prefix: list[str], wanted: list[str]
) -> list[list[str]]:
    """Every variable path under ``model``; a mapping's key is the one ``wanted`` gives."""
    found: list[list[str]] = []
    for name, field in model.model_fields.items():
        parts = [*prefix, name]
        found.append(parts)
        nested = _model(field.annotation)
        if nested is not None:
            found += _paths(nested, parts, wanted)
            continue
        bare = _unwrap(field.annotation)
        values = _model(typing.get_args(bare)[1]) if typing.get_origin(bare) is dict else None
        if values is not None:
            key = wanted[len(parts)] if len(wanted) > len(parts) else "name"
            found += _paths(values, [*parts, key], wanted)
    return found
