"""CEL conditions inside workflows: ``when`` of a step, over the episode and earlier results.

Evaluation is a pure function of the expression and the values, so it is safe to replay;
the loader has already compiled every expression once. As in rule files, an expression
that cannot be evaluated (a missing label, a type mismatch) counts as false, and the
reason is kept for the step's record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import cel


def holds(expression: str, variables: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether ``expression`` is true for ``variables``, and why not when it could not tell."""
    try:
        result = cel.evaluate(expression, dict(variables))
    except (ValueError, TypeError, RuntimeError, KeyError) as exc:
        return False, f"condition could not be evaluated: {exc}"
    if not isinstance(result, bool):
        return False, f"condition gave {type(result).__name__}, not a boolean"
    return result, ""
