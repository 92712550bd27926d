"""``{{ ... }}`` references in plans: substitution into data, never into code.

A plan writes ``{{ labels.instance }}`` (or ``{{ $labels.instance }}``, as in rule files),
``{{ annotations.summary }}``, ``{{ vars.service }}``, ``{{ item }}`` (inside
``for_each``), ``{{ resource }}``, ``{{ resource.kind }}``, ``{{ resource.name }}``,
``{{ episode }}``, ``{{ rule }}`` and ``{{ severity }}``. There are no functions, filters or
loops. The loader checks every reference; the remediation workflow substitutes them into
structured values (extra vars, environment variables, JSON fields, PromQL string literals
with escaping, percent-encoded URL parts), never into a command line.

Pure standard library: the workflow sandbox imports this module.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_FIELD = re.compile(r"\{\{\s*(?P<expr>.*?)\s*\}\}", re.DOTALL)
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_REF = re.compile(
    rf"^\$?(?P<root>labels|annotations|vars)\.(?P<name>{_NAME})$"
    r"|^(?P<simple>item|resource|resource\.kind|resource\.name|episode|rule|severity)$"
)
SIMPLE = ("item", "resource", "resource.kind", "resource.name", "episode", "rule", "severity")


class TemplateError(ValueError):
    """A ``{{ }}`` field is not a supported reference, or a value it needs is missing.

    ``offset`` is the 0-based position of the problem in the template text.
    """

    def __init__(self, offset: int, message: str) -> None:
        """Remember where in the text the problem is."""
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True, slots=True, kw_only=True)
class Reference:
    """One ``{{ }}`` field: ``root`` is ``labels``, ``vars``, ``item`` ...; ``name`` its key."""

    root: str
    name: str = ""
    offset: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """The values a template of one step sees."""

    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    vars: Mapping[str, str] = field(default_factory=dict)
    resource: str = ""
    episode: str = ""
    rule: str = ""
    severity: str = ""
    item: str | None = None


def references(text: str) -> list[Reference]:
    """The references of ``text``, in order.

    Raises:
        TemplateError: a field is not a plain reference, or a ``{{`` is never closed.
    """
    found: list[Reference] = []
    position = 0
    for match in _FIELD.finditer(text):
        _check_literal(text, position, match.start())
        expr = match.group("expr")
        ref = _REF.fullmatch(expr)
        if ref is None:
            raise TemplateError(
                match.start("expr"),
                f"unsupported reference {{{{ {expr} }}}}: plans substitute only labels.NAME, "
                "annotations.NAME, vars.NAME, " + ", ".join(SIMPLE) + "; they never run code",
            )
        if ref.group("simple"):
            found.append(Reference(root=ref.group("simple"), offset=match.start("expr")))
        else:
            found.append(
                Reference(
                    root=ref.group("root"), name=ref.group("name"), offset=match.start("expr")
                )
            )
        position = match.end()
    _check_literal(text, position, len(text))
    return found


def _check_literal(text: str, start: int, end: int) -> None:
    opening = text.find("{{", start, end)
    if opening >= 0:
        raise TemplateError(opening, "'{{' is never closed with '}}'")


def lookup(ref: Reference, scope: Scope) -> str | None:
    """The value ``ref`` stands for in ``scope``, or ``None`` when it is missing."""
    if ref.root in {"labels", "annotations", "vars"}:
        table: Mapping[str, str] = getattr(scope, ref.root)
        return table.get(ref.name)
    kind, _, name = scope.resource.partition("/")
    simple: dict[str, str | None] = {
        "item": scope.item,
        "resource": scope.resource,
        "resource.kind": kind,
        "resource.name": name,
        "episode": scope.episode,
        "rule": scope.rule,
        "severity": scope.severity,
    }
    return simple[ref.root]


def render(
    text: str,
    scope: Scope,
    *,
    strict: bool = True,
    escape: Callable[[str], str] = str,
) -> str:
    """Substitute every reference of ``text``.

    Args:
        text: the template.
        scope: the values.
        strict: a missing value is an error (for action inputs); otherwise it renders
            as ``""`` (for summaries and messages, as Prometheus renders a missing label).
        escape: applied to each substituted value (PromQL string escaping, URL quoting).

    Raises:
        TemplateError: an unsupported reference, or (``strict``) a missing value.
    """
    if "{{" not in text:
        return text
    out: list[str] = []
    position = 0
    refs = iter(references(text))
    for match in _FIELD.finditer(text):
        ref = next(refs)
        out.append(text[position : match.start()])
        value = lookup(ref, scope)
        if value is None:
            if strict:
                raise TemplateError(ref.offset, f"{_show(ref)} has no value for this episode")
            value = ""
        out.append(escape(value))
        position = match.end()
    out.append(text[position:])
    return "".join(out)


def render_data(value: Any, scope: Scope) -> Any:
    """``render`` (strict) applied to every string inside a JSON-like value."""
    if isinstance(value, str):
        return render(value, scope)
    if isinstance(value, Mapping):
        return {key: render_data(item, scope) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render_data(item, scope) for item in value]
    return value


def promql_string(value: str) -> str:
    """Escape ``value`` for use inside a double-quoted PromQL string literal."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def url_part(value: str) -> str:
    """Percent-encode ``value`` so it stays one URL component."""
    return urllib.parse.quote(value, safe="")


def _show(ref: Reference) -> str:
    return f"{{{{ {ref.root}.{ref.name} }}}}" if ref.name else f"{{{{ {ref.root} }}}}"
