"""What a plan's CEL conditions read, checked before the plan runs.

CEL compiles ``steps.frist.ok`` happily: ``steps`` is a map, and a missing key is only an
error when evaluated, which a ``when`` treats as false, so the step is skipped and the
plan reports success. This module reads the references of a condition (outside its string
literals) and reports, by their offset in the condition:

- ``steps.ID`` naming no step before this one at the same level (those are the only
  results a condition sees), and ``steps.ID.FIELD`` other than ``ok``, ``outcome``,
  ``output``;
- ``vars.NAME`` not declared in ``variables``;
- a field read from a string variable (``resource.kind``): ``resource``, ``episode``,
  ``rule``, ``severity`` and ``item`` are strings (their methods, ``resource.startsWith(..)``,
  are fine).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

RESULT_FIELDS = ("ok", "outcome", "seconds", "output")
"""What ``steps.ID`` holds (see ``workflows.actions.Env.cel_variables``)."""
_STRINGS = frozenset({"resource", "episode", "rule", "severity", "item"})
_CHAIN = re.compile(
    r"(?<![\w.])(?P<root>steps|vars|resource|episode|rule|severity|item)"
    r"(?P<members>(?:\s*\.\s*[A-Za-z_]\w*)+)"
)
_MEMBER = re.compile(r"\.\s*(?P<name>[A-Za-z_]\w*)")


def problems(
    source: str, *, steps: Iterable[str], declared: Iterable[str]
) -> list[tuple[int, str]]:
    """Every unknown reference of ``source`` as (offset of the name, message).

    Args:
        source: a CEL condition that compiles.
        steps: ids of the steps whose results the condition sees.
        declared: the plan's variable names.
    """
    known_steps = list(steps)
    known_vars = sorted(declared)
    masked = _mask_strings(source)
    found: list[tuple[int, str]] = []
    for chain in _CHAIN.finditer(masked):
        members = [
            (chain.start("members") + member.start("name"), member.group("name"))
            for member in _MEMBER.finditer(chain.group("members"))
        ]
        root = chain.group("root")
        called = masked[chain.end() :].lstrip().startswith("(")
        found += _check(root, members, called=called, steps=known_steps, variables=known_vars)
    return found


def _check(
    root: str,
    members: list[tuple[int, str]],
    *,
    called: bool,
    steps: list[str],
    variables: list[str],
) -> list[tuple[int, str]]:
    if root == "steps":
        return _step_problems(members, steps)
    offset, name = members[0]
    if root == "vars" and name not in variables:
        declared = ", ".join(variables) or "none"
        return [(offset, f"unknown variable vars.{name} (declared: {declared})")]
    if root in _STRINGS and not (called and len(members) == 1):
        message = (
            f"{root} is a string: {root}.{name} reads no field "
            f"(use the template {{{{ {root}.{name} }}}} in a step, or {root}.startsWith(...))"
        )
        return [(offset, message)]
    return []


def _step_problems(members: list[tuple[int, str]], steps: list[str]) -> list[tuple[int, str]]:
    offset, name = members[0]
    if name not in steps:
        before = ", ".join(steps) or "none"
        message = f"unknown step id {name!r} in steps.{name} (steps before this one: {before})"
        return [(offset, message)]
    if len(members) > 1 and members[1][1] not in RESULT_FIELDS:
        field_offset, field_name = members[1]
        message = (
            f"steps.{name} has no field {field_name!r} "
            f"(a step result has {', '.join(RESULT_FIELDS)})"
        )
        return [(field_offset, message)]
    return []


def _mask_strings(source: str) -> str:
    """``source`` with the contents of its string literals blanked (offsets kept)."""
    out: list[str] = []
    quote = ""
    escaped = False
    for char in source:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
                out.append(char)
                continue
            out.append(" ")
        else:
            if char in {"'", '"'}:
                quote = char
            out.append(char)
    return "".join(out)
