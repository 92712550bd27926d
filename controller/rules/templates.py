"""Safe templates for resources, labels and annotations: substitution, never execution.

Prometheus users write ``{{ $labels.instance }}`` and ``{{ $value }}``; Homeostat also
accepts ``{{ labels.instance }}``, ``{{ value }}``, ``{{ body.a.b }}`` (event rules) and
``{{ annotations.x }}`` (Alertmanager rules). Anything else in ``{{ }}`` is an error at load
time: there are no functions, pipes or loops, so a rule file cannot run code.

A missing label renders as the empty string, as Go's ``text/template`` renders a missing
key of Prometheus's ``map[string]string``; values render as Go's ``fmt`` prints a float64.
"""

from __future__ import annotations

import decimal
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

_FIELD = re.compile(r"\{\{-?\s*(?P<expr>.*?)\s*-?\}\}", re.DOTALL)
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_REF = re.compile(
    rf"^(?:(?P<labels>\$labels|labels|\.Labels)\.(?P<label>{_NAME})"
    rf"|(?P<value>\$value|value|\.Value)"
    rf"|(?P<scope>body|annotations)(?P<path>(?:\.{_NAME})+))$"
)


class Scope(StrEnum):
    """What a template field refers to."""

    LABELS = "labels"
    VALUE = "value"
    BODY = "body"
    ANNOTATIONS = "annotations"


@dataclass(frozen=True, slots=True, kw_only=True)
class Field:
    """One ``{{ ... }}`` of a template."""

    scope: Scope
    path: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Template:
    """A parsed template: literal text and fields, alternating."""

    source: str
    parts: tuple[str | Field, ...]

    @property
    def labels(self) -> frozenset[str]:
        """The labels the template reads."""
        return frozenset(
            part.path[0]
            for part in self.parts
            if isinstance(part, Field) and part.scope is Scope.LABELS
        )

    @property
    def scopes(self) -> frozenset[Scope]:
        """The scopes the template reads."""
        return frozenset(part.scope for part in self.parts if isinstance(part, Field))


class TemplateError(ValueError):
    """A template uses something other than plain substitution."""

    def __init__(self, offset: int, message: str) -> None:
        """Remember the 0-based character offset of the problem in the template text."""
        super().__init__(message)
        self.offset = offset


def parse(text: str) -> Template:
    """Parse ``text``, checking every field.

    Raises:
        TemplateError: a field is not a plain reference, or a ``{{`` is never closed.
    """
    parts: list[str | Field] = []
    position = 0
    for found in _FIELD.finditer(text):
        if found.start() > position:
            parts.append(_literal(text, position, found.start()))
        parts.append(_field(found.group("expr"), found.start("expr")))
        position = found.end()
    if position < len(text):
        parts.append(_literal(text, position, len(text)))
    return Template(source=text, parts=tuple(parts))


def _literal(text: str, start: int, end: int) -> str:
    piece = text[start:end]
    opening = piece.find("{{")
    if opening >= 0:
        raise TemplateError(start + opening, "'{{' is never closed with '}}'")
    return piece


def _field(expr: str, offset: int) -> Field:
    found = _REF.fullmatch(expr)
    if found is None:
        raise TemplateError(
            offset,
            f"unsupported template expression {expr!r}: only {{{{ labels.NAME }}}}, "
            "{{ $labels.NAME }}, {{ $value }}, {{ body.PATH }} and {{ annotations.NAME }} are "
            "substituted; rule files never run code",
        )
    if found.group("labels"):
        return Field(scope=Scope.LABELS, path=(found.group("label"),))
    if found.group("value"):
        return Field(scope=Scope.VALUE)
    return Field(scope=Scope(found.group("scope")), path=tuple(found.group("path").split(".")[1:]))


def render(
    template: Template,
    *,
    labels: Mapping[str, str],
    value: float | None = None,
    body: Mapping[str, Any] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> str:
    """Substitute every field of ``template``; what is missing renders as ``""``."""
    if len(template.parts) == 1 and isinstance(template.parts[0], str):
        return template.parts[0]
    out: list[str] = []
    for part in template.parts:
        if isinstance(part, str):
            out.append(part)
        elif part.scope is Scope.LABELS:
            out.append(labels.get(part.path[0], ""))
        elif part.scope is Scope.VALUE:
            out.append("" if value is None else go_float(value))
        elif part.scope is Scope.ANNOTATIONS:
            out.append((annotations or {}).get(part.path[0], ""))
        else:
            out.append(_show(_dig(body or {}, part.path)))
    return "".join(out)


def _dig(body: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    current: Any = body
    for key in path:
        if not isinstance(current, Mapping) or key not in current:
            return None
        current = current[key]
    return current


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str | int):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def go_float(value: float) -> str:
    """Format ``value`` exactly as Go's ``fmt.Sprint(float64)`` does (``%v``).

    That is the shortest representation that round-trips, in ``%e`` form when the decimal
    exponent is below -4 or at least 6 (``1e+06``, ``1.5e-05``), else in ``%f`` form.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    return ("-" if value < 0 else "") + _go_digits(abs(value))


def _go_digits(value: float) -> str:
    _, digit_tuple, exponent = decimal.Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(str(digit) for digit in digit_tuple)
    point = len(digits) + int(exponent)  # value = 0.digits x 10**point
    prefix = ""
    decimal_exponent = point - 1
    if decimal_exponent < -4 or decimal_exponent >= 6:  # noqa: PLR2004 - Go's shortest %g threshold
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        exp_sign = "-" if decimal_exponent < 0 else "+"
        return f"{prefix}{mantissa}e{exp_sign}{abs(decimal_exponent):02d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{prefix}{digits}{'0' * (point - len(digits))}"
    return f"{prefix}{digits[:point]}.{digits[point:]}"
