"""``{{ ... }}`` references in plans: substitution into data, never into code.

A plan writes ``{{ labels.instance }}`` (or ``{{ $labels.instance }}``, as in rule files),
``{{ annotations.summary }}``, ``{{ vars.service }}``, ``{{ item }}`` (inside
``for_each``), ``{{ resource }}``, ``{{ resource.kind }}``, ``{{ resource.name }}``,
``{{ episode }}``, ``{{ rule }}``, ``{{ severity }}`` and, in a step, what an earlier step
of its list gave: ``{{ steps.ID.ok }}``, ``{{ steps.ID.outcome }}``,
``{{ steps.ID.seconds }}`` (how long it took), ``{{ steps.ID.output.KEY.KEY }}``. There are
no functions, filters or loops. A string that is one reference to a step's output takes
that value as it is (an object, a list, a number) in structured inputs (``render_data``);
inside text, such a value is JSON.

The loader checks every reference; the remediation workflow substitutes them into
structured values (extra vars, environment variables, JSON fields, PromQL string literals
with escaping, percent-encoded URL parts), never into a command line.

Pure standard library: the workflow sandbox imports this module.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

_FIELD = re.compile(r"\{\{\s*(?P<expr>.*?)\s*\}\}", re.DOTALL)
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_KEY = r"[A-Za-z0-9_][A-Za-z0-9_-]*"
_REF = re.compile(
    rf"^\$?(?P<root>labels|annotations|vars)\.(?P<name>{_NAME})$"
    r"|^(?P<simple>item|resource|resource\.kind|resource\.name|episode|rule|severity)$"
    rf"|^steps\.(?P<step>{_NAME}\.(?:ok|outcome|seconds|output(?:\.{_KEY})*))$"
)
_WHOLE = re.compile(r"^\{\{[^{}]*\}\}$")
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
    """One ``{{ }}`` field: ``root`` is ``labels``, ``vars``, ``item`` ...; ``name`` its key.

    For ``steps``, ``name`` is the path below it: ``provision.output.json.address``.
    """

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
    steps: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Earlier steps by id: ``{"ok": bool, "outcome": str, "seconds": int, "output": {...}}``."""


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
                "annotations.NAME, vars.NAME, " + ", ".join(SIMPLE) + ", steps.ID.ok, "
                "steps.ID.outcome, steps.ID.seconds, steps.ID.output.KEY; they never run code",
            )
        if ref.group("step"):
            step = Reference(root="steps", name=ref.group("step"), offset=match.start("expr"))
            found.append(step)
        elif ref.group("simple"):
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


def lookup(ref: Reference, scope: Scope) -> Any:
    """The value ``ref`` stands for in ``scope``, or ``None`` when it is missing.

    Every root gives a string, except ``steps``, which gives the step's value as it is.
    """
    if ref.root == "steps":
        found: Any = scope.steps
        for key in ref.name.split("."):
            if not isinstance(found, Mapping) or key not in found:
                return None
            found = found[key]
        return found
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
        out.append(escape(value if isinstance(value, str) else _json(value)))
        position = match.end()
    out.append(text[position:])
    return "".join(out)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)


def render_data(value: Any, scope: Scope) -> Any:
    """``render`` (strict) applied to every string inside a JSON-like value.

    A string that is exactly one reference to a step's output becomes that value itself,
    so objects, lists and numbers pass from step to step as structured values.
    """
    if isinstance(value, str):
        if _WHOLE.match(value.strip()):
            refs = references(value)
            if refs and refs[0].root == "steps":
                found = lookup(refs[0], scope)
                if found is None:
                    raise TemplateError(refs[0].offset, f"{_show(refs[0])} has no value")
                return found
        return render(value, scope)
    if isinstance(value, Mapping):
        return {key: render_data(item, scope) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [render_data(item, scope) for item in value]
    return value


def promql_string(value: str) -> str:
    """Escape ``value`` for use inside a double-quoted PromQL string literal."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")


def promql_problems(text: str) -> list[TemplateError]:
    """Every reference of a PromQL template that is not inside a plain double-quoted string.

    ``promql_string`` escapes a value for exactly one place: a ``"..."`` literal. Anywhere
    else (a ``'...'`` or backtick literal, a regular expression after ``=~``/``!~``, a
    comment, or bare PromQL) the same value could close the literal and add PromQL of its
    own, so such a reference is refused. The scan follows PromQL's lexer: strings with
    backslash escapes, raw backtick strings, ``#`` comments to the end of the line.

    Raises:
        TemplateError: a field is not a plain reference (see ``references``).
    """
    refs = iter(references(text))
    found: list[TemplateError] = []
    state = _Lexer()
    position = 0
    for match in _FIELD.finditer(text):
        ref = next(refs)
        state.feed(text[position : match.start()])
        where = state.place()
        if where:
            found.append(
                TemplateError(
                    match.start(),
                    f"{_show(ref)} is {where}: a value reaches PromQL only inside a "
                    'double-quoted string, as in up{instance="{{ labels.instance }}"}',
                )
            )
        position = match.end()
    return found


def render_promql(text: str, scope: Scope) -> str:
    """``render`` for PromQL: every reference must sit inside ``"..."``; values are escaped.

    Raises:
        TemplateError: a reference outside a double-quoted string, or a missing value.
    """
    problems = promql_problems(text)
    if problems:
        raise problems[0]
    return render(text, scope, escape=promql_string)


class _Lexer:
    """Just enough of PromQL's lexer to know what kind of text comes next."""

    def __init__(self) -> None:
        self.quote = ""
        """The open string's quote (``"``, ``'`` or a backtick), or ``""``."""
        self.comment = False
        self.regex = False
        """Whether the open string is the pattern of a ``=~`` or ``!~`` matcher."""
        self._escaped = False
        self._code = ""
        """The code (outside strings) seen so far, to tell a pattern from a value."""

    def feed(self, chunk: str) -> None:
        for char in chunk:
            self._step(char)

    def _step(self, char: str) -> None:
        if self.comment:
            self.comment = char != "\n"
        elif self.quote:
            if self._escaped:
                self._escaped = False
            elif char == "\\" and self.quote != "`":
                self._escaped = True
            elif char == self.quote:
                self.quote = ""
        elif char == "#":
            self.comment = True
        elif char in {'"', "'", "`"}:
            self.quote = char
            self.regex = self._code.rstrip().endswith(("=~", "!~"))
        else:
            self._code = (self._code + char)[-8:]

    def place(self) -> str:
        """Where a value would land now, or ``""`` inside a plain double-quoted string."""
        if self.comment:
            return "in a comment"
        if self.quote == '"':
            return "in a regular expression (=~ or !~)" if self.regex else ""
        if self.quote == "'":
            return "in a single-quoted string"
        if self.quote == "`":
            return "in a backtick (raw) string"
        return "outside a string"


def slack_text(value: str) -> str:
    """Escape ``value`` for Slack's mrkdwn: no mention, link or formatting can hide in it."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def url_part(value: str) -> str:
    """Percent-encode ``value`` so it stays one URL component."""
    return urllib.parse.quote(value, safe="")


def _show(ref: Reference) -> str:
    return f"{{{{ {ref.root}.{ref.name} }}}}" if ref.name else f"{{{{ {ref.root} }}}}"
