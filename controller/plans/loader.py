"""Load and lint remediation plans, with every problem at its file:line:column.

``load_plan`` gives the ``spec.Plan`` the workflows run (the ``load_plan`` activity calls
``find_plan``); ``lint_plans`` reports every problem of a directory of plans, as
``homeostat rules lint`` prints them: YAML errors, unknown keys and step types, bad
durations, unknown ``{{ }}`` references, CEL conditions that do not compile or read
unknown variables, duplicate step ids, and playbooks that do not exist.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pydantic

from controller import errors
from controller.plans import convert, model, references, spec, templates
from controller.rules import expressions, sourcemap

PLAN_SUFFIXES = (".yaml", ".yml")
_NAME_PATTERN = "lower-case letters, digits and '_.-'"
_WHEN_VARIABLES = frozenset(
    {"labels", "annotations", "vars", "resource", "episode", "rule", "severity", "steps"}
)
"""What a step's ``when`` (and a ``verify.cel``) sees; plus ``item`` inside ``for_each``."""


def plan_files(directory: Path) -> list[Path]:
    """The plan files of ``directory``, sorted by name."""
    return sorted(
        path for path in directory.iterdir() if path.suffix in PLAN_SUFFIXES and path.is_file()
    )


def load_plan(path: Path) -> spec.Plan:
    """Load one plan file; its name is the file name without the suffix.

    Raises:
        errors.RuleFileError: the first problem of the file.
    """
    plan, problems = check_text(sourcemap.read(path), file=str(path), name=path.stem)
    if problems or plan is None:
        raise problems[0]
    return plan


def find_plan(directory: Path, name: str) -> spec.Plan | None:
    """The plan called ``name`` in ``directory``, or ``None`` when there is no such file.

    Raises:
        errors.RuleFileError: the plan exists but is invalid.
    """
    for suffix in PLAN_SUFFIXES:
        path = directory / f"{name}{suffix}"
        if path.is_file() and path.parent == directory:
            return load_plan(path)
    return None


def load_plans(directory: Path) -> dict[str, spec.Plan]:
    """Every plan of ``directory`` by name.

    Raises:
        errors.RuleFileError: the first problem found.
    """
    return {path.stem: load_plan(path) for path in plan_files(directory)}


def lint_plans(directory: Path, *, playbooks_dir: Path | None) -> list[errors.RuleFileError]:
    """Every problem of every plan in ``directory``, in file order; empty when all is well."""
    return check_plans(directory, playbooks_dir=playbooks_dir)[1]


def check_plans(
    directory: Path, *, playbooks_dir: Path | None
) -> tuple[dict[str, spec.Plan], list[errors.RuleFileError]]:
    """Every valid plan of ``directory`` by name, and every problem of the others.

    Args:
        directory: the remediations folder.
        playbooks_dir: when given, playbooks the plans name must exist there.
    """
    plans: dict[str, spec.Plan] = {}
    found: list[errors.RuleFileError] = []
    seen: dict[str, Path] = {}
    for path in plan_files(directory):
        if path.stem in seen:
            found.append(
                errors.RuleFileError(
                    errors.SourcePosition(path=str(path), line=1, column=1),
                    f"plan {path.stem!r} is defined twice (also in {seen[path.stem].name})",
                )
            )
            continue
        seen[path.stem] = path
        try:
            text = sourcemap.read(path)
        except errors.RuleFileError as exc:
            found.append(exc)
            continue
        plan, problems = check_text(
            text,
            file=str(path),
            name=path.stem,
            playbooks_dir=playbooks_dir,
        )
        found.extend(problems)
        if plan is not None:
            plans[path.stem] = plan
    return plans, found


def check_text(
    text: str, *, file: str, name: str, playbooks_dir: Path | None = None
) -> tuple[spec.Plan | None, list[errors.RuleFileError]]:
    """Validate a plan's text; the plan when it is valid, and every problem found.

    Args:
        text: the file's content.
        file: the path shown in errors.
        name: the plan's name (the file's stem).
        playbooks_dir: when given, playbooks the plan names must exist there.
    """
    try:
        data, source_map = sourcemap.load(text, file=file)
    except errors.RuleFileError as exc:
        return None, [exc]
    if not isinstance(data, dict):
        return None, [source_map.error((), "a plan file is a mapping (description, steps ...)")]
    problems = _step_type_problems(data.get("steps"), ("steps",), source_map)
    unknown_keys = {str(problem.position) for problem in problems}
    variables = data.get("variables")
    where = _Where(
        text=text,
        source_map=source_map,
        declared=frozenset(variables) if isinstance(variables, dict) else frozenset(),
    )
    problems += _raw_step_problems(data.get("steps"), ("steps",), where, in_for_each=False)
    problems += _template_problems(data, (), source_map, variables=data.get("variables"))
    problems += _promql_problems(data, text, source_map)
    plan: model.PlanModel | None = None
    try:
        plan = model.PlanModel.model_validate(data)
    except pydantic.ValidationError as exc:
        problems += [
            problem
            for problem in sourcemap.validation_errors(exc, source_map)
            if str(problem.position) not in unknown_keys
        ]
    if plan is not None:
        problems += _name_problems(plan, name=name, source_map=source_map)
        if playbooks_dir is not None:
            problems += _playbook_problems(plan, playbooks_dir, source_map)
    if problems or plan is None:
        return None, sorted(problems, key=_order)
    revision = hashlib.sha256(text.encode()).hexdigest()[:12]
    return convert.to_spec(plan, name=name, source=file, revision=revision), []


def _order(problem: errors.RuleFileError) -> tuple[int, int]:
    return problem.position.line, problem.position.column


def _step_type_problems(
    steps: Any, path: sourcemap.Path, source_map: sourcemap.SourceMap
) -> list[errors.RuleFileError]:
    """Keys of a step that are neither a step type nor a common key."""
    if not isinstance(steps, list):
        return []
    found: list[errors.RuleFileError] = []
    known = (*model.STEP_TYPES, *model.COMMON_KEYS)
    for index, step in enumerate(steps):
        if not isinstance(step, dict):
            continue
        found.extend(
            errors.RuleFileError(
                source_map.key_at((*path, index, key)),
                f"unknown step type {key!r} (step types: {', '.join(model.STEP_TYPES)}; "
                f"other step keys: {', '.join(model.COMMON_KEYS)})",
            )
            for key in step
            if key not in known
        )
        fan = step.get("for_each")
        if isinstance(fan, dict):
            found += _step_type_problems(
                fan.get("steps"), (*path, index, "for_each", "steps"), source_map
            )
    return found


def _name_problems(
    plan: model.PlanModel, *, name: str, source_map: sourcemap.SourceMap
) -> list[errors.RuleFileError]:
    found: list[errors.RuleFileError] = []
    if plan.name is not None and plan.name != name:
        found.append(
            source_map.error(("name",), f"name {plan.name!r} differs from the file name {name!r}")
        )
    if not model_name_ok(name):
        found.append(source_map.error((), f"plan name {name!r} must use {_NAME_PATTERN}"))
    return found


def model_name_ok(name: str) -> bool:
    """Whether ``name`` is a valid plan name."""
    return (
        bool(name)
        and name[0].isalnum()
        and all(char.isalnum() or char in "_.-" for char in name)
        and name == name.lower()
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Where:
    """What checking a plan's conditions needs beyond the condition: positions, variables."""

    text: str
    source_map: sourcemap.SourceMap
    declared: frozenset[str]


def _raw_step_problems(
    steps: Any,
    path: sourcemap.Path,
    where: _Where,
    *,
    in_for_each: bool,
) -> list[errors.RuleFileError]:
    """Duplicate step ids and CEL problems, found even when the model does not validate.

    A condition sees the results of the steps before it at its own level (a ``for_each``
    runs its steps with results of their own), so only those ids may follow ``steps.``.
    """
    if not isinstance(steps, list):
        return []
    found: list[errors.RuleFileError] = []
    ids: list[str] = []
    allowed = _WHEN_VARIABLES | ({"item"} if in_for_each else set())
    for index, step in enumerate(steps):
        if not isinstance(step, dict):
            continue
        step_id = step.get("id") or f"step_{index + 1}"
        if step_id in ids:
            found.append(
                where.source_map.error((*path, index, "id"), f"duplicate step id {step_id!r}")
            )
        found += _step_reference_problems(step, (*path, index), where.source_map, earlier=set(ids))
        earlier = tuple(ids)
        ids.append(step_id)
        if isinstance(step.get("when"), str) and step["when"]:
            found += _cel_problems(
                step["when"], (*path, index, "when"), where, allowed, earlier=earlier
            )
        verify = step.get("verify")
        if isinstance(verify, dict) and isinstance(verify.get("cel"), str) and verify["cel"]:
            extra = {"response"} if verify.get("http") else set()
            found += _cel_problems(
                verify["cel"],
                (*path, index, "verify", "cel"),
                where,
                allowed | extra,
                earlier=earlier,
            )
        fan = step.get("for_each")
        if isinstance(fan, dict):
            found += _raw_step_problems(
                fan.get("steps"), (*path, index, "for_each", "steps"), where, in_for_each=True
            )
    return found


def _step_reference_problems(
    step: dict[str, Any],
    path: sourcemap.Path,
    source_map: sourcemap.SourceMap,
    *,
    earlier: set[str],
) -> list[errors.RuleFileError]:
    """``{{ steps.ID... }}`` in a step must name an earlier step of its own list."""
    found: list[errors.RuleFileError] = []
    own = {key: value for key, value in step.items() if key != "for_each"}
    fan = step.get("for_each")
    if isinstance(fan, dict):
        own["for_each"] = {key: value for key, value in fan.items() if key != "steps"}
    for where, text in _strings(own, path):
        if _is_cel(where):
            continue
        try:
            refs = templates.references(text)
        except templates.TemplateError:
            continue  # reported by _template_problems
        for ref in refs:
            named = ref.name.split(".", 1)[0]
            if ref.root == "steps" and named not in earlier:
                found.append(
                    source_map.error(
                        where,
                        f"{{{{ steps.{ref.name} }}}}: {named!r} is not an earlier step of this "
                        f"list (earlier: {', '.join(sorted(earlier)) or 'none'})",
                    )
                )
    return found


def _cel_problems(
    source: str,
    path: sourcemap.Path,
    where: _Where,
    allowed: frozenset[str],
    *,
    earlier: tuple[str, ...],
) -> list[errors.RuleFileError]:
    try:
        expressions.compile_expression(source, allowed=allowed)
    except expressions.ExpressionError as exc:
        return [where.source_map.error(path, exc.message)]
    found: list[errors.RuleFileError] = []
    for offset, message in references.problems(source, steps=earlier, declared=where.declared):
        line, column = sourcemap.line_column(source, offset)
        start = where.source_map.value_at(path)
        position = sourcemap.inside(where.text, start, line=line, column=column)
        found.append(errors.RuleFileError(position, message))
    return found


def _template_problems(
    value: Any, path: sourcemap.Path, source_map: sourcemap.SourceMap, *, variables: Any
) -> list[errors.RuleFileError]:
    """Check every ``{{ }}`` reference of every string in the plan."""
    declared = sorted(variables) if isinstance(variables, dict) else []
    found: list[errors.RuleFileError] = []
    for where, text in _strings(value, path):
        if _is_cel(where):
            continue
        try:
            refs = templates.references(text)
        except templates.TemplateError as exc:
            found.append(source_map.error(where, str(exc)))
            continue
        for ref in refs:
            if ref.root == "vars" and ref.name not in declared:
                found.append(
                    source_map.error(
                        where,
                        f"{{{{ vars.{ref.name} }}}} is not declared in 'variables' "
                        f"(declared: {', '.join(declared) or 'none'})",
                    )
                )
            if ref.root == "item" and "for_each" not in where:
                found.append(source_map.error(where, "{{ item }} is only defined inside for_each"))
            if ref.root == "steps" and "steps" not in where:
                found.append(
                    source_map.error(where, "{{ steps.ID }} is only defined in steps, not here")
                )
    return found


_PROMQL_PLACES = (("verify", "promql"), ("policy", "metric"))
"""Where a plan writes PromQL: a verify step's query and the HPA policy's metric."""


def _promql_problems(
    data: Any, text: str, source_map: sourcemap.SourceMap
) -> list[errors.RuleFileError]:
    """References in PromQL that are not inside a double-quoted string, at their column."""
    found: list[errors.RuleFileError] = []
    for where, query in _strings(data, ()):
        if where[-2:] not in _PROMQL_PLACES:
            continue
        try:
            refused = templates.promql_problems(query)
        except templates.TemplateError:
            continue  # reported by _template_problems
        for problem in refused:
            line, column = sourcemap.line_column(query, problem.offset)
            start = source_map.value_at(where)
            position = sourcemap.inside(text, start, line=line, column=column)
            found.append(errors.RuleFileError(position, str(problem)))
    return found


def _is_cel(where: sourcemap.Path) -> bool:
    return bool(where) and (where[-1] == "when" or where[-2:] == ("verify", "cel"))


def _strings(value: Any, path: sourcemap.Path) -> Iterator[tuple[sourcemap.Path, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def _playbook_problems(
    plan: model.PlanModel, playbooks_dir: Path, source_map: sourcemap.SourceMap
) -> list[errors.RuleFileError]:
    found: list[errors.RuleFileError] = []
    for path, playbook in _playbooks(plan.steps, ("steps",)):
        relative = PurePosixPath(playbook)
        if relative.is_absolute() or ".." in relative.parts:
            found.append(
                source_map.error(path, f"playbook {playbook!r} must be inside the playbooks dir")
            )
        elif not (playbooks_dir / relative).is_file():
            found.append(
                source_map.error(path, f"unknown playbook {playbook!r} (not in {playbooks_dir})")
            )
    return found


def _playbooks(
    steps: list[model.StepModel], path: sourcemap.Path
) -> Iterator[tuple[sourcemap.Path, str]]:
    for index, step in enumerate(steps):
        if step.playbook is not None:
            yield (*path, index, "playbook", "path"), step.playbook.path
        if step.scale is not None and step.scale.target.playbook:
            yield (*path, index, "scale", "target", "playbook"), step.scale.target.playbook
        if step.for_each is not None:
            yield from _playbooks(step.for_each.steps, (*path, index, "for_each", "steps"))
