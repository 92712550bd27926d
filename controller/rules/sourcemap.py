"""YAML with positions, so every error in a rule or plan file names its file:line:column.

PyYAML forgets where a value came from once it is constructed. This module composes the
node graph instead, builds plain Python values from it, and keeps a map from each value's
path (the same tuple pydantic reports as an error's ``loc``) to the position of the key
and of the value in the file.

Rule and plan files arrive through ``git pull`` and hot reload, so a hostile or broken file
must cost little and fail with a position: a file is at most ``MAX_FILE_BYTES``, nests at
most ``MAX_DEPTH`` levels, and builds at most ``MAX_NODES`` values with its aliases
expanded (a 352-byte "billion laughs" would otherwise build 9**9). A tag whose value does
not construct (``!!int "abc"``, ``!!python/name:...``) is a positioned problem too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path as FilePath
from typing import Any

import pydantic
import yaml

from controller import errors

Path = tuple[str | int, ...]

MAX_FILE_BYTES = 1 << 20
"""The largest rule, plan or rule-test file read (1 MiB; the shipped ones are a few KiB)."""
MAX_DEPTH = 64
"""How deep collections may nest."""
MAX_NODES = 100_000
"""How many values one document may build, every alias expanded."""

_CORE = "tag:yaml.org,2002:"
_SHOWN = 40
_COLLECTION_TAGS = frozenset({f"{_CORE}map", f"{_CORE}seq"})


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


def read_bytes(path: FilePath) -> bytes:
    """The bytes of a rule or plan file, refusing one larger than ``MAX_FILE_BYTES``.

    Raises:
        errors.RuleFileError: the file cannot be read, or is too large.
    """
    start = errors.SourcePosition(path=str(path), line=1, column=1)
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise errors.RuleFileError(start, f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise errors.RuleFileError(start, _too_big())
    return raw


def read(path: FilePath) -> str:
    """``read_bytes`` decoded as UTF-8 (undecodable bytes replaced, then reported by YAML)."""
    return read_bytes(path).decode("utf-8", errors="replace")


def _too_big() -> str:
    return f"file is larger than {MAX_FILE_BYTES // 1024} KiB; rule and plan files are small"


class _LimitError(errors.HomeostatError):
    """A document went past one of the limits; carries where."""

    def __init__(self, mark: yaml.Mark | None, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe composer, refusing documents that nest too deep or hold too many nodes.

    PyYAML composes recursively: the depth is checked before each level, so a deep document
    is refused before Python's recursion limit is reached.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise _LimitError(self._next_mark(), _too_many())
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _LimitError(self._next_mark(), f"nested deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def _next_mark(self) -> yaml.Mark:
        event = self.peek_event()  # type: ignore[no-untyped-call] # untyped in types-PyYAML
        mark: yaml.Mark = event.start_mark
        return mark


def _too_many() -> str:
    return (
        f"more than {MAX_NODES} values (aliases expanded); "
        "a rule file this large is refused to keep reloads cheap"
    )


def load(text: str, *, file: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document into plain values and a map of their positions.

    Raises:
        errors.RuleFileError: the text is not YAML, holds several documents, uses a
            duplicate key (which PyYAML would silently accept, keeping the last), is too
            large or too deep, expands aliases past ``MAX_NODES``, or has a tagged value
            that does not construct.
    """
    if len(text) > MAX_FILE_BYTES:
        raise errors.RuleFileError(errors.SourcePosition(path=file, line=1, column=1), _too_big())
    try:
        node = _compose(text)
    except _LimitError as exc:
        raise errors.RuleFileError(_at(file, exc.mark), exc.message) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise errors.RuleFileError(
            _at(file, mark), f"not valid YAML: {exc.problem or exc}"
        ) from None
    except yaml.YAMLError as exc:
        raise errors.RuleFileError(_at(file, None), f"not valid YAML: {exc}") from None
    source_map = SourceMap(file=file)
    if node is None:
        return None, source_map
    builder = _Builder(source_map)
    try:
        _check_expansion(node)
        return builder.build(node, ()), source_map
    except _LimitError as exc:
        raise errors.RuleFileError(_at(file, exc.mark), exc.message) from None


def _compose(text: str) -> yaml.Node | None:
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand past ``MAX_NODES``, before building any of it.

    The node graph shares aliased nodes, so its expanded size is counted once per node; the
    problem is reported at the deepest node that alone expands too far.
    """
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(item) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(key) + size(value) for key, value in node.value)
        sizes[id(node)] = total
        return total

    if size(root) <= MAX_NODES:
        return
    node = root
    while True:
        children: list[yaml.Node] = (
            [part for pair in node.value for part in pair]
            if isinstance(node, yaml.MappingNode)
            else list(node.value)
        )
        bigger = next((child for child in children if sizes[id(child)] > MAX_NODES), None)
        if bigger is None:
            break
        node = bigger
    raise _LimitError(
        node.start_mark,
        f"aliases expand this to {sizes[id(node)]} values, more than {MAX_NODES}",
    )


def _at(file: str, mark: yaml.Mark | None) -> errors.SourcePosition:
    if mark is None:
        return errors.SourcePosition(path=file, line=1, column=1)
    return _position(file, mark)


class _Builder:
    """Plain values from a node graph, counting every value built (aliases expand)."""

    def __init__(self, source_map: SourceMap) -> None:
        self.source_map = source_map
        self.built = 0
        self.constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.built += 1
        if self.built > MAX_NODES:
            raise _LimitError(node.start_mark, _too_many())
        source_map = self.source_map
        source_map.values[path] = _position(source_map.file, node.start_mark)
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and (
            node.tag not in _COLLECTION_TAGS
        ):
            raise _LimitError(node.start_mark, f"tag {_show_tag(node.tag)} is not supported here")
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = _scalar(key_node, self.constructor)
                if not isinstance(key, str | int | float | bool):
                    raise errors.RuleFileError(
                        _position(source_map.file, key_node.start_mark),
                        "a key must be a plain scalar",
                    )
                name = str(key)
                if name in result:
                    raise errors.RuleFileError(
                        _position(source_map.file, key_node.start_mark), f"duplicate key {name!r}"
                    )
                source_map.keys[(*path, name)] = _position(source_map.file, key_node.start_mark)
                result[name] = self.build(value_node, (*path, name))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        return _scalar(node, self.constructor)


def _scalar(node: yaml.Node, constructor: yaml.SafeLoader) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return node
    try:
        return constructor.construct_object(node, deep=True)
    except Exception as exc:  # noqa: BLE001 - PyYAML's constructors raise many kinds
        text = str(node.value)
        shown = text if len(text) <= _SHOWN else f"{text[:_SHOWN]}... ({len(text)} characters)"
        reason = exc.problem if isinstance(exc, yaml.MarkedYAMLError) and exc.problem else exc
        message = f"not a valid {_show_tag(node.tag)} value {shown!r}: {str(reason).split(';')[0]}"
        raise _LimitError(node.start_mark, message) from None


def _show_tag(tag: str) -> str:
    return f"!!{tag.removeprefix(_CORE)}" if tag.startswith(_CORE) else tag


def inside(
    text: str, start: errors.SourcePosition, *, line: int, column: int
) -> errors.SourcePosition:
    """The file position of (``line``, ``column``) of a scalar's value that starts at ``start``.

    Args:
        text: the whole file.
        start: where the scalar is written (``SourceMap.value_at``).
        line: 1-based line within the scalar's value.
        column: 1-based column within that line of the value.
    """
    lines = text.splitlines()
    first = lines[start.line - 1] if 0 < start.line <= len(lines) else ""
    marker = first[start.column - 1 : start.column]
    if marker in {"|", ">"}:  # block scalar: content starts on the next line
        content = lines[start.line] if start.line < len(lines) else ""
        indent = len(content) - len(content.lstrip(" "))
        return errors.SourcePosition(
            path=start.path, line=start.line + line, column=indent + column
        )
    shift = 1 if marker in {"'", '"'} else 0
    if line == 1:
        return errors.SourcePosition(
            path=start.path, line=start.line, column=start.column + shift + column - 1
        )
    return errors.SourcePosition(path=start.path, line=start.line + line - 1, column=column)


def line_column(text: str, offset: int) -> tuple[int, int]:
    """The 1-based (line, column) of ``offset`` in ``text``."""
    before = text[:offset]
    line = before.count("\n") + 1
    return line, offset - (before.rfind("\n") + 1) + 1


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
