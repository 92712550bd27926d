"""CEL conditions: compiled once per rule, evaluated per observation.

Rule files never run Python: ``match`` and ``when`` are CEL expressions over the
observation (``labels``, ``body``, ``stream``; ``annotations`` for Alertmanager alerts).
Compiling happens at load time, so a syntax error is reported with its position.

Two things keep evaluation cheap. The top-level ``labels.NAME == 'literal'`` conjuncts of an
expression are exposed as ``equalities`` so the engine can index rules by them. And an
expression that is nothing but such equalities and numeric comparisons of ``body`` fields
gets a plain-Python twin (``fast``) whose answer is the same as CEL's: a test compares them.
An evaluation error (a missing key, a type mismatch) counts as "no", as in a CEL
``has()``-guarded condition.

The CEL extension is Rust: a parser panic reaches Python as ``PanicException``, a
``BaseException``, and a long enough operator chain overflows its stack while evaluating,
which kills the process. So an expression longer than ``MAX_LENGTH`` characters or nested
deeper than ``MAX_NESTING`` brackets is refused before CEL sees it, and a panic while
compiling or evaluating is caught here, at the boundary, as an error of that expression.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import operator
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_SYNTAX = re.compile(r"<input>:(?P<line>\d+):(?P<column>\d+): (?P<message>[^\n]*)")
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_LABEL_TEST = re.compile(
    rf"^labels\.(?P<name>{_NAME})\s*(?P<op>==|!=)\s*(?P<lit>'[^'\\]*'|\"[^\"\\]*\")$"
)
_BODY_TEST = re.compile(
    rf"^body(?P<path>(?:\.{_NAME})+)\s*(?P<op>>=|<=|>|<)\s*(?P<lit>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)$"
)
_INT64 = 2**63
MAX_LENGTH = 4096
"""The longest CEL expression compiled (the shipped ones are under 100 characters)."""
MAX_NESTING = 32
"""The deepest nesting of parentheses, brackets and braces in a CEL expression."""
_OPENING = frozenset("([{")
_CLOSING = frozenset(")]}")

Variables = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Problem:
    """Why an expression could not be evaluated for an input (it then counts as "no").

    Attributes:
        reason: ``missing_field``, ``wrong_type`` or ``error``: a bounded set, for metrics.
        detail: what exactly, for logs and ``/v1/rules``.
    """

    reason: str
    detail: str


FastPath = Callable[[Variables], "bool | Problem | None"]
"""A plain-Python twin of a CEL expression; ``None`` means "ask CEL", a ``Problem`` "no"."""


class ExpressionError(ValueError):
    """A CEL expression does not compile; ``line`` and ``column`` are 1-based in its text."""

    def __init__(self, *, line: int, column: int, message: str) -> None:
        """Remember where in the expression the problem is."""
        super().__init__(message)
        self.line = line
        self.column = column
        self.message = message


@dataclass(frozen=True, slots=True, kw_only=True)
class Expression:
    """A compiled CEL condition."""

    source: str
    program: Any = field(repr=False, compare=False)
    variables: frozenset[str]
    equalities: tuple[tuple[str, str], ...] = ()
    fast: FastPath | None = field(default=None, repr=False, compare=False)
    conjuncts: int = 0
    """How many atoms a plain conjunction has (0: not a plain conjunction)."""

    @property
    def only_equality(self) -> bool:
        """Whether the expression is exactly one ``labels.NAME == 'value'`` test."""
        return self.conjuncts == 1 and len(self.equalities) == 1


def compile_expression(source: str, *, allowed: frozenset[str]) -> Expression:
    """Compile ``source``, checking that it reads only ``allowed`` variables.

    Raises:
        ExpressionError: a syntax error, with CEL's position, or an unknown variable.
    """
    _check_size(source)
    try:
        program = _cel().compile(source.rstrip())
    except ValueError as exc:
        found = _SYNTAX.search(str(exc))
        if found is None:
            raise ExpressionError(line=1, column=1, message=f"CEL: {exc}") from None
        raise ExpressionError(
            line=int(found.group("line")),
            column=int(found.group("column")),
            message=f"CEL {found.group('message')}",
        ) from None
    except BaseException as exc:
        if not _panicked(exc):
            raise
        message = f"CEL could not parse this expression: {exc}"
        raise ExpressionError(line=1, column=1, message=message) from None
    variables = frozenset(program.variables())
    unknown = sorted(variables - allowed)
    if unknown:
        raise ExpressionError(
            line=1,
            column=_first(source, unknown[0]),
            message=f"CEL: unknown variable {unknown[0]!r}; this rule's expressions see "
            + ", ".join(sorted(allowed)),
        )
    conjuncts = _conjuncts(source)
    return Expression(
        source=source,
        program=program,
        variables=variables,
        equalities=_equalities(conjuncts),
        fast=_fast_path(conjuncts),
        conjuncts=len(conjuncts or ()),
    )


def _check_size(source: str) -> None:
    """Refuse what could crash the CEL extension: too long, or nested too deep."""
    if len(source) > MAX_LENGTH:
        raise ExpressionError(
            line=1,
            column=MAX_LENGTH + 1,
            message=f"CEL expression is longer than {MAX_LENGTH} characters ({len(source)})",
        )
    depth = 0
    line, column = 1, 0
    quote = ""
    for char in source:
        column += 1
        if char == "\n":
            line, column = line + 1, 0
        if quote:
            quote = "" if char == quote else quote
        elif char in {"'", '"'}:
            quote = char
        elif char in _OPENING:
            depth += 1
            if depth > MAX_NESTING:
                raise ExpressionError(
                    line=line,
                    column=column,
                    message=f"CEL expression nests deeper than {MAX_NESTING} brackets",
                )
        elif char in _CLOSING:
            depth -= 1


def _panicked(exc: BaseException) -> bool:
    """Whether ``exc`` is a Rust panic surfacing through PyO3 (``pyo3_runtime.PanicException``)."""
    return type(exc).__name__ == "PanicException" and not isinstance(exc, Exception)


@functools.cache
def _cel() -> Any:
    """The CEL extension module, loaded on first use.

    The ``cel`` package's ``__init__`` also imports its interactive CLI (prompt_toolkit,
    rich), about 0.35 s here; the engine needs only the compiled extension, so it is
    loaded directly when it can be found, and through the package otherwise.
    """
    loaded = sys.modules.get("cel.cel")
    if loaded is not None:  # the package was imported already: the extension may load once
        return loaded
    spec = importlib.util.find_spec("cel")
    folder = Path(spec.origin).parent if spec is not None and spec.origin else None
    for candidate in sorted(folder.glob("cel.*.so")) if folder is not None else []:
        loader = importlib.machinery.ExtensionFileLoader("cel.cel", str(candidate))
        extension = importlib.util.spec_from_file_location("cel.cel", candidate, loader=loader)
        if extension is None:
            continue
        module = importlib.util.module_from_spec(extension)
        sys.modules["cel.cel"] = module  # a later `import cel` reuses it instead of a 2nd init
        loader.exec_module(module)
        return module
    return importlib.import_module("cel")  # pragma: no cover - a build without a .so


def _first(source: str, name: str) -> int:
    found = re.search(rf"\b{re.escape(name)}\b", source)
    return found.start() + 1 if found else 1


def evaluate(
    expression: Expression, variables: Variables, problems: list[Problem] | None = None
) -> bool:
    """Whether ``expression`` is true for ``variables``; errors and non-booleans are false.

    Why an evaluation failed (a missing field, a wrong type) is appended to ``problems``.
    """
    if expression.fast is not None:
        answer = expression.fast(variables)
        if answer is True or answer is False:
            return answer
        if answer is not None:
            if problems is not None:
                problems.append(answer)
            return False
    return evaluate_cel(expression, variables, problems)


def evaluate_cel(
    expression: Expression, variables: Variables, problems: list[Problem] | None = None
) -> bool:
    """Like ``evaluate`` but always through CEL (the reference for the fast path)."""
    context = {name: variables[name] for name in expression.variables if name in variables}
    try:
        result = expression.program.execute(context)
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        if problems is not None:
            problems.append(_problem(expression, exc))
        return False
    except BaseException as exc:
        if not _panicked(exc):
            raise
        if problems is not None:
            problems.append(Problem("error", f"{expression.source}: evaluation failed"))
        return False
    if result is not True and result is not False and problems is not None:
        problems.append(Problem("wrong_type", f"{expression.source}: not a boolean"))
    return result is True


def _problem(expression: Expression, exc: Exception) -> Problem:
    if isinstance(exc, KeyError):
        return Problem("missing_field", f"{expression.source}: no field {exc}")
    if isinstance(exc, TypeError):
        return Problem("wrong_type", f"{expression.source}: a value has the wrong type")
    return Problem("error", f"{expression.source}: {str(exc)[:200]}")


def _conjuncts(source: str) -> list[str] | None:
    """The top-level ``&&`` operands, if the expression is a plain conjunction of atoms."""
    if any(token in source for token in ("||", "(", ")", "?", "[")):
        return None
    return [part.strip() for part in source.split("&&")]


def _equalities(conjuncts: list[str] | None) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    for part in conjuncts or []:
        test = _LABEL_TEST.fullmatch(part)
        if test is not None and test.group("op") == "==":
            found.append((test.group("name"), test.group("lit")[1:-1]))
    return tuple(found)


def _fast_path(conjuncts: list[str] | None) -> FastPath | None:
    if not conjuncts:
        return None
    checks: list[FastPath] = []
    for part in conjuncts:
        label = _LABEL_TEST.fullmatch(part)
        body = _BODY_TEST.fullmatch(part)
        if label is not None:
            checks.append(
                _label_check(label.group("name"), label.group("op"), label.group("lit")[1:-1])
            )
        elif body is not None:
            checks.append(
                _body_check(
                    tuple(body.group("path").split(".")[1:]), body.group("op"), body.group("lit")
                )
            )
        else:
            return None
    if len(checks) == 1:
        return checks[0]

    def conjunction(variables: Variables) -> bool | Problem | None:
        undecided = False
        for check in checks:
            answer = check(variables)
            if answer is False or (answer is not None and answer is not True):
                return answer
            undecided = undecided or answer is None
        return None if undecided else True

    return conjunction


def _label_check(name: str, op: str, literal: str) -> FastPath:
    equal = op == "=="

    def check(variables: Variables) -> bool | None:
        try:
            value = variables["labels"][name]
        except (KeyError, TypeError, IndexError):
            return False
        if type(value) is not str:
            return None
        return (value == literal) is equal

    return check


_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
"""The comparisons, as built-in functions: cheaper to call than a Python function."""


def _body_check(path: tuple[str, ...], op: str, literal: str) -> FastPath:
    bound = float(literal)
    compare = _COMPARE[op]
    field = "body." + ".".join(path)
    missing = Problem("missing_field", f"{field} is missing")
    not_a_number = Problem("wrong_type", f"{field} is not a number")

    def check(variables: Variables) -> bool | Problem | None:
        current: Any = variables.get("body")
        try:
            for key in path:
                if type(current) is not dict and not isinstance(current, Mapping):
                    return missing
                current = current[key]
        except KeyError:
            return missing
        kind = type(current)
        if kind is float:
            return compare(current, bound)
        if kind is not int:
            return None if isinstance(current, int | float) and kind is not bool else not_a_number
        if not -_INT64 <= current < _INT64:
            return None
        return compare(float(current), bound)

    return check
