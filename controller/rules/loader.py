"""Rule files to a ``model.RuleSet``, with every problem reported as ``file:line:column``.

``lint`` returns every problem it finds (it carries on past one rule's errors to the next);
``load_rule_set`` raises ``RuleSetError`` carrying the same list, or returns the rule set.
Beyond the schema it checks what only the loader can: which keys each ``source`` allows,
CEL syntax (positioned inside the expression), templates, unknown remediation plans, and a
template that reads a label the PromQL expression cannot produce.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic

from controller import errors
from controller.domain import durations, observations, resources
from controller.rules import (
    expressions,
    model,
    promql_labels,
    revision,
    schema,
    sourcemap,
    templates,
)

RULE_SUFFIXES = (".yaml", ".yml")
TEST_SUFFIXES = (".test.yaml", ".test.yml")
"""Rule-test files may sit beside rule files; they are not rules."""

_EVENT_VARIABLES = frozenset({"labels", "body", "stream"})
_ALERT_VARIABLES = frozenset({"labels", "annotations"})
SILENCE_VARIABLES = frozenset({"labels", "rule", "resource"})
"""What a silence's ``match`` sees."""

_SCOPES = {
    model.Family.PROMETHEUS: frozenset({templates.Scope.LABELS, templates.Scope.VALUE}),
    model.Family.EVENT: frozenset({templates.Scope.LABELS, templates.Scope.BODY}),
    model.Family.ALERTMANAGER: frozenset({templates.Scope.LABELS, templates.Scope.ANNOTATIONS}),
}
_FORBIDDEN = {
    model.Family.PROMETHEUS: (
        "stream",
        "match",
        "when",
        "all",
        "any",
        "within",
        "count",
        "stale_after",
    ),
    model.Family.EVENT: ("expr",),
    model.Family.ALERTMANAGER: (
        "expr",
        "when",
        "all",
        "any",
        "within",
        "count",
        "stale_after",
        "for",
        "keep_firing_for",
    ),
}
_WHY = {
    model.Family.PROMETHEUS: "a prometheus rule's condition is its expr",
    model.Family.EVENT: "event rules use match/when over events, not PromQL",
    model.Family.ALERTMANAGER: "the alert already fired upstream, where Prometheus applied its for",
}


class RuleSetError(errors.RuleFileError):
    """A rule set did not load; ``problems`` lists every problem, the first one in the message."""

    def __init__(self, problems: Sequence[errors.RuleFileError]) -> None:
        """Keep every problem; the exception reads as the first one."""
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(first.position, first.message + more)
        self.problems = list(problems)


def rule_files(rules_dir: Path) -> list[Path]:
    """Every rule file under ``rules_dir``, sorted; rule-test files are left out."""
    if rules_dir.is_file():
        return [rules_dir]
    return sorted(
        path
        for path in rules_dir.rglob("*")
        if path.is_file()
        and path.name.endswith(RULE_SUFFIXES)
        and not path.name.endswith(TEST_SUFFIXES)
    )


def load_rule_set(rules_dir: Path, *, known_remediations: set[str] | None) -> model.RuleSet:
    """Load every rule file under ``rules_dir`` (or that one file).

    Args:
        rules_dir: a folder of rule files, or one rule file.
        known_remediations: plan names that exist; ``None`` skips that check.

    Raises:
        RuleSetError: at least one problem; ``problems`` has all of them.
    """
    files = rule_files(rules_dir)
    base = rules_dir if rules_dir.is_dir() else rules_dir.parent
    rule_set, problems = compile_files(files, known_remediations=known_remediations, base=base)
    if problems:
        raise RuleSetError(problems)
    return rule_set


def lint(
    paths: Iterable[Path], *, known_remediations: set[str] | None
) -> list[errors.RuleFileError]:
    """Every problem in the rule files at ``paths`` (folders or files), in file order."""
    files: list[Path] = []
    for path in paths:
        if not path.exists():
            position = errors.SourcePosition(path=str(path), line=1, column=1)
            return [errors.RuleFileError(position, "no such file or folder")]
        files.extend(rule_files(path))
    _, problems = compile_files(files, known_remediations=known_remediations, base=Path())
    return problems


def compile_files(
    files: Sequence[Path], *, known_remediations: set[str] | None, base: Path
) -> tuple[model.RuleSet, list[errors.RuleFileError]]:
    """Compile ``files`` into one rule set, collecting problems instead of stopping."""
    state = _Compilation(known=known_remediations)
    contents: list[tuple[str, bytes]] = []
    for path in files:
        try:
            raw = sourcemap.read_bytes(path)
        except errors.RuleFileError as exc:
            state.problems.append(exc)
            continue
        contents.append((_relative(path, base), raw))
        state.file(str(path), raw.decode("utf-8", errors="replace"))
    rule_set = model.RuleSet(
        groups=tuple(state.groups),
        silences=tuple(state.silences),
        revision=model.Revision(
            content_hash=revision.content_hash(contents), commit=revision.git_commit(base)
        ),
    )
    return rule_set, state.problems


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.resolve().relative_to(base.resolve()))
    except ValueError:
        return str(path)


@dataclass(kw_only=True)
class _Compilation:
    known: set[str] | None
    problems: list[errors.RuleFileError] = field(default_factory=list)
    groups: list[model.Group] = field(default_factory=list)
    silences: list[model.Silence] = field(default_factory=list)
    rule_names: set[str] = field(default_factory=set)
    group_names: set[str] = field(default_factory=set)

    def fail(self, position: errors.SourcePosition, message: str) -> None:
        self.problems.append(errors.RuleFileError(position, message))

    def file(self, name: str, text: str) -> None:
        try:
            data, source_map = sourcemap.load(text, file=name)
        except errors.RuleFileError as exc:
            self.problems.append(exc)
            return
        if data is None:
            return
        context = _FileContext(text=text, source_map=source_map, state=self)
        try:
            spec = schema.RuleFileSpec.model_validate(data)
        except pydantic.ValidationError as exc:
            self.problems.extend(sourcemap.validation_errors(exc, source_map))
            context.salvage(data)
            return
        for group_index, group in enumerate(spec.groups):
            self.groups.append(context.group(group, ("groups", group_index)))
        for index, silence in enumerate(spec.silences):
            built = context.silence(silence, ("silences", index))
            if built is not None:
                self.silences.append(built)


@dataclass(kw_only=True)
class _FileContext:
    text: str
    source_map: sourcemap.SourceMap
    state: _Compilation

    def fail(self, path: sourcemap.Path, message: str, *, key: bool = False) -> None:
        position = self.source_map.key_at(path) if key else self.source_map.value_at(path)
        self.state.fail(position, message)

    def group(self, spec: schema.GroupSpec, path: sourcemap.Path) -> model.Group:
        if spec.name in self.state.group_names:
            self.fail((*path, "name"), f"duplicate group name {spec.name!r}")
        self.state.group_names.add(spec.name)
        rules: list[model.Rule] = []
        for index, rule in enumerate(spec.rules):
            built = self.rule(rule, group=spec.name, path=(*path, "rules", index))
            if built is not None and rule.enabled:
                rules.append(built)
        interval = durations.parse_duration(spec.interval) if spec.interval else None
        return model.Group(name=spec.name, interval=interval, rules=tuple(rules))

    def salvage(self, data: Any) -> None:
        """Check the rules that are valid on their own in a file that is not, for more errors."""
        groups = data.get("groups") if isinstance(data, dict) else None
        for group_index, group in enumerate(groups if isinstance(groups, list) else []):
            rules = group.get("rules") if isinstance(group, dict) else None
            for index, raw in enumerate(rules if isinstance(rules, list) else []):
                try:
                    spec = schema.RuleSpec.model_validate(raw)
                except pydantic.ValidationError:
                    continue  # already reported
                self.rule(spec, group="", path=("groups", group_index, "rules", index))

    def rule(self, spec: schema.RuleSpec, *, group: str, path: sourcemap.Path) -> model.Rule | None:
        before = len(self.state.problems)
        if spec.name in self.state.rule_names:
            self.fail((*path, "name"), f"duplicate rule name {spec.name!r}")
        self.state.rule_names.add(spec.name)
        family = _family(spec.source)
        written = set(spec.model_fields_set)
        for key in _FORBIDDEN[family]:
            if _field_name(key) in written:
                self.fail(
                    (*path, key),
                    f"{key!r} does not apply to {spec.source} rules: {_WHY[family]}",
                    key=True,
                )
        self._shape(spec, family=family, path=path)
        allowed = _EVENT_VARIABLES if family is model.Family.EVENT else _ALERT_VARIABLES
        match = self.expression(spec.match, (*path, "match"), allowed)
        when = self.expression(spec.when, (*path, "when"), allowed)
        correlation = self._correlation(spec, path)
        count = (
            model.Count(
                threshold=spec.count.threshold, within=durations.parse_duration(spec.count.within)
            )
            if spec.count is not None
            else None
        )
        scopes = _SCOPES[family]
        resource = self.template(
            spec.resource, (*path, "resource"), scopes - {templates.Scope.VALUE}
        )
        labels = tuple(
            (name, self.template(text, (*path, "labels", name), scopes))
            for name, text in spec.labels.items()
        )
        annotations = tuple(
            (name, self.template(text, (*path, "annotations", name), scopes))
            for name, text in spec.annotations.items()
        )
        if resource is not None:
            self._check_resource(resource, (*path, "resource"))
        if (
            spec.remediation is not None
            and self.state.known is not None
            and spec.remediation not in self.state.known
        ):
            known = ", ".join(sorted(self.state.known)) or "none"
            self.fail(
                (*path, "remediation"), f"unknown remediation {spec.remediation!r} (known: {known})"
            )
        if family is model.Family.PROMETHEUS and spec.expr is not None:
            self._check_labels(spec, path)
        if len(self.state.problems) > before or resource is None:
            return None
        rule = model.Rule(
            name=spec.name,
            group=group,
            source=observations.SourceKind(spec.source.value),
            family=family,
            expr=spec.expr,
            stream=spec.stream,
            match=match,
            when=when,
            correlation=correlation,
            count=count,
            hold=durations.parse_duration(spec.for_),
            keep_firing_for=durations.parse_duration(spec.keep_firing_for),
            stale_after=durations.parse_duration(spec.stale_after)
            if spec.stale_after
            else model.DEFAULT_STALE_AFTER,
            resource=resource,
            remediation=spec.remediation,
            severity=spec.severity,
            cooldown=durations.parse_duration(spec.cooldown),
            group_by=tuple(spec.group_by),
            labels=tuple((name, text) for name, text in labels if text is not None),
            annotations=tuple((name, text) for name, text in annotations if text is not None),
        )
        return _with_digest(rule)

    def _shape(self, spec: schema.RuleSpec, *, family: model.Family, path: sourcemap.Path) -> None:
        if family is model.Family.PROMETHEUS and spec.expr is None:
            self.fail(
                path,
                "missing required key 'expr' (a prometheus rule fires for every series it returns)",
            )
        if family is model.Family.ALERTMANAGER and spec.match is None:
            self.fail(
                path, "missing required key 'match' (CEL over the alert's labels and annotations)"
            )
        if family is not model.Family.EVENT:
            return
        if spec.all is not None and spec.any is not None:
            self.fail((*path, "any"), "use either 'all' or 'any', not both", key=True)
        if (spec.all is not None or spec.any is not None) and spec.within is None:
            self.fail(path, "missing required key 'within' (the window of 'all'/'any')")
        if spec.within is not None and spec.all is None and spec.any is None:
            self.fail(
                (*path, "within"), "'within' needs 'all' or 'any' ('count' has its own)", key=True
            )
        if spec.count is not None and (spec.all is not None or spec.any is not None):
            self.fail((*path, "count"), "'count' cannot be combined with 'all'/'any'", key=True)
        if spec.match is None and spec.all is None and spec.any is None:
            self.fail(
                path, "missing required key 'match' (CEL selecting the events this rule reads)"
            )

    def _correlation(self, spec: schema.RuleSpec, path: sourcemap.Path) -> model.Correlation | None:
        combine, conditions = (
            (model.Combine.ALL, spec.all) if spec.all is not None else (model.Combine.ANY, spec.any)
        )
        if conditions is None or spec.within is None:
            return None
        if not conditions:
            self.fail((*path, combine.value), f"'{combine.value}' needs at least one condition")
            return None
        compiled = [
            self.expression(
                condition.match, (*path, combine.value, index, "match"), _EVENT_VARIABLES
            )
            for index, condition in enumerate(conditions)
        ]
        if any(item is None for item in compiled):
            return None
        return model.Correlation(
            combine=combine,
            conditions=tuple(item for item in compiled if item is not None),
            within=durations.parse_duration(spec.within),
        )

    def expression(
        self, source: str | None, path: sourcemap.Path, allowed: frozenset[str]
    ) -> expressions.Expression | None:
        if source is None:
            return None
        try:
            return expressions.compile_expression(source, allowed=allowed)
        except expressions.ExpressionError as exc:
            position = self._inside(path, line=exc.line, column=exc.column)
            self.state.fail(position, exc.message)
            return None

    def template(
        self, text: str, path: sourcemap.Path, scopes: frozenset[templates.Scope]
    ) -> templates.Template | None:
        try:
            parsed = templates.parse(text)
        except templates.TemplateError as exc:
            line, column = sourcemap.line_column(text, exc.offset)
            self.state.fail(self._inside(path, line=line, column=column), f"template: {exc}")
            return None
        outside = sorted(scope.value for scope in parsed.scopes - scopes)
        if outside:
            offset = text.find(outside[0])
            line, column = sourcemap.line_column(text, max(offset, 0))
            allowed = ", ".join(sorted(scope.value for scope in scopes))
            self.state.fail(
                self._inside(path, line=line, column=column),
                f"template: {outside[0]!r} is not available here (available: {allowed})",
            )
            return None
        return parsed

    def _check_resource(self, resource: templates.Template, path: sourcemap.Path) -> None:
        sample = "".join(part if isinstance(part, str) else "x" for part in resource.parts)
        try:
            resources.parse_resource_key(sample)
        except ValueError as exc:
            self.fail(path, f"resource template cannot render a resource key: {exc}")

    def _check_labels(self, spec: schema.RuleSpec, path: sourcemap.Path) -> None:
        produced = promql_labels.output_labels(spec.expr or "")
        if produced is None:
            return
        checks = [
            ("resource", spec.resource),
            *((("labels", name), text) for name, text in spec.labels.items()),
        ]
        checks += [(("annotations", name), text) for name, text in spec.annotations.items()]
        for where, text in checks:
            try:
                used = templates.parse(text).labels
            except templates.TemplateError:
                continue
            for label in sorted(used - produced):
                key = (*path, *((where,) if isinstance(where, str) else where))
                found = re.search(rf"labels\.{re.escape(label)}\b", text)
                offset = found.start() + len("labels.") if found else 0
                line, column = sourcemap.line_column(text, max(offset, 0))
                have = ", ".join(sorted(produced)) or "no labels"
                self.state.fail(
                    self._inside(key, line=line, column=column),
                    f"template reads label {label!r}, which the expression cannot produce "
                    f"(its series carry {have})",
                )
        for index, label in enumerate(spec.group_by):
            if label not in produced:
                self.fail(
                    (*path, "group_by", index),
                    f"group_by label {label!r} is not produced by the expression",
                )

    def silence(self, spec: schema.SilenceSpec, path: sourcemap.Path) -> model.Silence | None:
        match = self.expression(spec.match, (*path, "match"), SILENCE_VARIABLES)
        if spec.starts_at.tzinfo is None or spec.ends_at.tzinfo is None:
            self.fail(
                (*path, "starts_at"),
                "silence times need a time zone (for example 2026-01-01T00:00:00Z)",
            )
            return None
        if spec.ends_at <= spec.starts_at:
            self.fail((*path, "ends_at"), "ends_at must be after starts_at")
            return None
        if match is None:
            return None
        return model.Silence(
            name=spec.name,
            match=match,
            starts_at=spec.starts_at,
            ends_at=spec.ends_at,
            comment=spec.comment,
        )

    def _inside(self, path: sourcemap.Path, *, line: int, column: int) -> errors.SourcePosition:
        """The file position of (line, column) inside the scalar at ``path``."""
        start = self.source_map.value_at(path)
        return sourcemap.inside(self.text, start, line=line, column=column)


def _family(source: schema.Source) -> model.Family:
    if source is schema.Source.PROMETHEUS:
        return model.Family.PROMETHEUS
    if source is schema.Source.ALERTMANAGER:
        return model.Family.ALERTMANAGER
    return model.Family.EVENT


def _field_name(key: str) -> str:
    return "for_" if key == "for" else key


def _with_digest(rule: model.Rule) -> model.Rule:
    parts = (
        rule.family,
        rule.source,
        rule.expr,
        rule.stream,
        rule.match.source if rule.match else None,
        rule.when.source if rule.when else None,
        (
            rule.correlation.combine,
            tuple(c.source for c in rule.correlation.conditions),
            rule.correlation.within,
        )
        if rule.correlation
        else None,
        (rule.count.threshold, rule.count.within) if rule.count else None,
        rule.hold,
        rule.keep_firing_for,
        rule.stale_after,
        rule.resource.source,
        rule.group_by,
        tuple((name, text.source) for name, text in rule.labels),
    )
    return dataclasses.replace(rule, digest=hashlib.sha256(repr(parts).encode()).hexdigest())
