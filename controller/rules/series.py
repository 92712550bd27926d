"""Input series written the way ``promtool test rules`` writes them.

``series: 'cpu{service="web"}'`` with ``values: '0.5+0.1x10 _ stale 1x3'``: a number, the
expanding notations ``a+bxN`` / ``a-bxN`` (``N + 1`` values, each one ``b`` further, added
repeatedly as promtool does), ``axN`` (``a`` repeated ``N + 1`` times), ``_`` for a missing
sample, ``_xN`` for ``N`` of them, and ``stale`` for a staleness marker.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass

_NUMBER = r"(?:[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|Inf|inf|NaN|nan))"
_EXPAND = re.compile(rf"^(?P<a>{_NUMBER})(?:(?P<op>[-+])(?P<b>{_NUMBER}))?x(?P<n>\d+)$")
_BLANKS = re.compile(r"^(?P<what>_|stale)x(?P<n>\d+)$")
_NAME = re.compile(r"\s*([A-Za-z_:][A-Za-z0-9_:]*)?\s*")
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,)?')
_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}


class Missing:
    """No sample at this step (``_``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        """Render as promtool writes it."""
        return "_"


class Stale:
    """A staleness marker at this step (``stale``)."""

    __slots__ = ()

    def __repr__(self) -> str:
        """Render as promtool writes it."""
        return "stale"


STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]
"""Prometheus's staleness marker: a NaN with this exact bit pattern."""
MISSING = Missing()
STALE = Stale()
Value = float | Missing | Stale


@dataclass(frozen=True, slots=True, kw_only=True)
class InputSeries:
    """One series: its labels (``__name__`` included) and a value per step."""

    labels: dict[str, str]
    values: tuple[Value, ...]


def parse_selector(text: str) -> dict[str, str]:
    """``metric{a="b"}`` to its labels, ``__name__`` included.

    Raises:
        ValueError: the text is not a series selector with ``=`` matchers only.
    """
    found = _NAME.match(text)
    labels: dict[str, str] = {}
    position = found.end() if found else 0
    if found and found.group(1):
        labels["__name__"] = found.group(1)
    rest = text[position:].strip()
    if rest:
        if not (rest.startswith("{") and rest.endswith("}")):
            raise ValueError(f'{text!r} is not a series like metric{{label="value"}}')
        inner = rest[1:-1]
        index = 0
        while index < len(inner.strip()) and inner[index:].strip():
            label = _LABEL.match(inner, index)
            if label is None:
                raise ValueError(f"{text!r}: cannot read a label at {inner[index:]!r}")
            labels[label.group(1)] = re.sub(
                r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), label.group(2)
            )
            index = label.end()
            if label.group(3) is None and inner[index:].strip():
                raise ValueError(f"{text!r}: expected ',' before {inner[index:]!r}")
    if not labels:
        raise ValueError(f"{text!r} names no series")
    return labels


def expand(text: str) -> tuple[Value, ...]:
    """Expand a promtool ``values`` string.

    Raises:
        ValueError: a token is none of the notations above.
    """
    out: list[Value] = []
    for word in text.split():
        if word == "_":
            out.append(MISSING)
        elif word == "stale":
            out.append(STALE)
        elif blanks := _BLANKS.match(word):
            out += [MISSING if blanks.group("what") == "_" else STALE] * int(blanks.group("n"))
        elif expanding := _EXPAND.match(word):
            value = _number(expanding.group("a"))
            step = _number(expanding.group("b")) if expanding.group("b") else 0.0
            if expanding.group("op") == "-":
                step = -step
            for _ in range(int(expanding.group("n")) + 1):
                out.append(value)
                value += step
        else:
            try:
                out.append(_number(word))
            except ValueError:
                raise ValueError(
                    f"{word!r} is not a number, a+bxN, a-bxN, axN, _ or stale"
                ) from None
    return tuple(out)


def _number(text: str) -> float:
    lowered = text.lower().lstrip("+")
    if lowered in {"inf", "-inf"}:
        return math.inf if lowered == "inf" else -math.inf
    if lowered in {"nan", "-nan"}:
        return math.nan
    if not re.fullmatch(_NUMBER, text):
        raise ValueError(text)
    return float(text)
