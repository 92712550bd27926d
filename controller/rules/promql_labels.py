"""Which labels a PromQL expression's result can carry, when that can be known cheaply.

Lint uses it to catch a template such as ``service/{{ labels.service }}`` on an expression
like ``sum by (job) (...) > 1``, whose series only ever carry ``job``. It understands the
common shapes (an aggregation with ``by``, an aggregation without grouping, either one
compared with a number) and answers ``None`` ("cannot tell") for everything else, so it
never reports a false error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_AGGREGATORS = "sum|min|max|avg|count|stddev|stdvar|group"
_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_COMPARISON = re.compile(r"(==|!=|>=|<=|>|<)(\s*bool\b)?")
_PREFIX_BY = re.compile(
    rf"^(?:{_AGGREGATORS})\s+(?P<kind>by|without)\s*\((?P<labels>[^()]*)\)\s*\(", re.IGNORECASE
)
_BARE = re.compile(rf"^(?:{_AGGREGATORS})\s*\(", re.IGNORECASE)
_SUFFIX_BY = re.compile(r"\)\s*(?P<kind>by|without)\s*\((?P<labels>[^()]*)\)$", re.IGNORECASE)


def output_labels(expr: str) -> frozenset[str] | None:
    """The label names every result series has and no others, or ``None`` if unknown."""
    vector = _vector_side(expr.strip())
    if vector is None:
        return None
    prefix = _PREFIX_BY.match(vector)
    if prefix is not None and _closes_at_end(vector, prefix.end() - 1):
        return _names(prefix.group("labels")) if prefix.group("kind").lower() == "by" else None
    bare = _BARE.match(vector)
    if bare is not None:
        suffix = _SUFFIX_BY.search(vector)
        if suffix is not None and _closes_at(vector, bare.end() - 1, suffix.start()):
            return _names(suffix.group("labels")) if suffix.group("kind").lower() == "by" else None
        if _closes_at_end(vector, bare.end() - 1):
            return frozenset()
    return None


def _vector_side(expr: str) -> str | None:
    """Strip one top-level comparison with a number; ``None`` if another operator remains."""
    for index, char in _top_level(expr):
        found = _COMPARISON.match(expr, index)
        if found is not None and char in "=!<>":
            left, right = expr[:index].strip(), expr[found.end() :].strip()
            if _NUMBER.match(right):
                return left if _plain(left) else None
            if _NUMBER.match(left):
                return right if _plain(right) else None
            return None
        if char in "+-*/%^" or expr.startswith(("and ", "or ", "unless "), index):
            return None
    return expr


def _top_level(expr: str) -> Iterator[tuple[int, str]]:
    """The characters outside brackets and quotes, with their offsets."""
    depth = 0
    quote: str | None = None
    for index, char in enumerate(expr):
        if quote:
            quote = None if char == quote else quote
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0:
            yield index, char


def _plain(expr: str) -> bool:
    return _vector_side(expr) == expr


def _closes_at(expr: str, opening: int, closing: int) -> bool:
    depth = 0
    for index in range(opening, len(expr)):
        if expr[index] == "(":
            depth += 1
        elif expr[index] == ")":
            depth -= 1
            if depth == 0:
                return index == closing
    return False


def _closes_at_end(expr: str, opening: int) -> bool:
    return _closes_at(expr, opening, len(expr) - 1)


def _names(text: str) -> frozenset[str]:
    return frozenset(name.strip() for name in text.split(",") if name.strip())
