"""YAML with positions, so every error in a rule or plan file names its file:line:column.

PyYAML forgets where a value came from once it is constructed. This module composes the
node graph instead, builds plain Python values from it, and keeps a map from each value's
path (the same tuple pydantic reports as an error's ``loc``) to the position of the key
and of the value in the file.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pydantic
import yaml

from controller import errors

Path = tuple[str | int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceMap:
    """Where each value of a loaded YAML document was written."""

    file: str
    values: dict[Path, errors.SourcePosition] = field(default_factory=dict)
    keys: dict[Path, errors.SourcePosition] = field(default_factory=dict)

    def value_at(self, path: Iterable[str | int]) -> errors.SourcePosition:
        """The position of the value at ``path``, or of its nearest written ancestor."""
        return _nearest(self.values, tuple(path), self.file)

    def key_at(self, path: Iterable[str | int]) -> errors.SourcePosition:
        """The position of the key that holds ``path``, falling back to the value's."""
        wanted = tuple(path)
        if wanted in self.keys:
            return self.keys[wanted]
        return self.value_at(wanted)

    def error(self, path: Iterable[str | int], message: str) -> errors.RuleFileError:
        """A ``RuleFileError`` at the value found at ``path``."""
        return errors.RuleFileError(self.value_at(path), message)


def _nearest(
    table: dict[Path, errors.SourcePosition], path: Path, file: str
) -> errors.SourcePosition:
    for end in range(len(path), -1, -1):
        found = table.get(path[:end])
        if found is not None:
            return found
    return errors.SourcePosition(path=file, line=1, column=1)


def _position(file: str, mark: yaml.Mark) -> errors.SourcePosition:
    return errors.SourcePosition(path=file, line=mark.line + 1, column=mark.column + 1)


def load(text: str, *, file: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document into plain values and a map of their positions.

    Raises:
        errors.RuleFileError: the text is not YAML, holds several documents, or uses a
            duplicate key (which PyYAML would silently accept, keeping the last).
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        position = (
            _position(file, mark)
            if mark is not None
            else errors.SourcePosition(path=file, line=1, column=1)
        )
        raise errors.RuleFileError(position, f"not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise errors.RuleFileError(
            errors.SourcePosition(path=file, line=1, column=1), f"not valid YAML: {exc}"
        ) from None
    source_map = SourceMap(file=file)
    if node is None:
        return None, source_map
    return _build(node, (), source_map), source_map


def _build(node: yaml.Node, path: Path, source_map: SourceMap) -> Any:
    source_map.values[path] = _position(source_map.file, node.start_mark)
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if not isinstance(key, str | int | float | bool):
                raise errors.RuleFileError(
                    _position(source_map.file, key_node.start_mark), "a key must be a plain scalar"
                )
            name = str(key)
            if name in result:
                raise errors.RuleFileError(
                    _position(source_map.file, key_node.start_mark), f"duplicate key {name!r}"
                )
            source_map.keys[(*path, name)] = _position(source_map.file, key_node.start_mark)
            result[name] = _build(value_node, (*path, name), source_map)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, index), source_map) for index, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return node
    return yaml.SafeLoader("").construct_object(node, deep=True)


def validation_errors(
    exc: pydantic.ValidationError, source_map: SourceMap, *, prefix: Path = ()
) -> list[errors.RuleFileError]:
    """Translate a pydantic validation error into positioned errors, one per problem.

    Args:
        exc: the error pydantic raised while validating a value loaded by ``load``.
        source_map: the positions of that value.
        prefix: the path of the validated value inside the document.
    """
    found: list[errors.RuleFileError] = []
    for problem in exc.errors(include_url=False):
        loc = (*prefix, *(part for part in problem["loc"] if isinstance(part, str | int)))
        if problem["type"] == "extra_forbidden":
            position = source_map.key_at(loc)
            message = f"unknown key {loc[-1]!r}" + _where(loc[:-1])
        elif problem["type"] == "missing":
            position = source_map.value_at(loc[:-1])
            message = f"missing required key {loc[-1]!r}" + _where(loc[:-1])
        else:
            position = source_map.value_at(loc)
            message = f"{_dotted(loc)}: {_clean(problem['msg'])}"
        found.append(errors.RuleFileError(position, message))
    return found


def _dotted(loc: Path) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(document)"


def _where(loc: Path) -> str:
    return f" in {_dotted(loc)}" if loc else ""


def _clean(message: str) -> str:
    return message.removeprefix("Value error, ")
