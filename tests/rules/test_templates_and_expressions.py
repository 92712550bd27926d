from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.domain import durations
from controller.rules import expressions, templates

ALL = frozenset({"labels", "body", "stream"})


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e6, "1e+06"),
        (123456.0, "123456"),
        (0.0001, "0.0001"),
        (1e-5, "1e-05"),
        (95.5, "95.5"),
        (-3.0, "-3"),
        (12345678.9, "1.23456789e+07"),
        (float("nan"), "NaN"),
        (float("-inf"), "-Inf"),
        (0.0, "0"),
    ],
)
def test_values_render_like_go(value, text):
    """{{ $value }} renders as Prometheus (Go's fmt) prints a float64."""
    assert templates.go_float(value) == text


def test_templates_substitute_labels_value_body():
    """Labels, value and body paths are substituted; missing ones render empty."""
    parsed = templates.parse(
        "{{ $labels.a }}/{{labels.b}} {{ $value }} {{ body.x.y }} {{ .Labels.missing }}!"
    )
    out = templates.render(parsed, labels={"a": "1", "b": "2"}, value=0.5, body={"x": {"y": True}})
    assert out == "1/2 0.5 true !"
    assert parsed.labels == {"a", "b", "missing"}


@pytest.mark.parametrize(
    "text", ["{{ .Labels.a | toUpper }}", '{{ printf "%s" 1 }}', "{{ $labels.a", "{{ }}"]
)
def test_templates_never_run_code(text):
    """Pipes, functions and unclosed fields are errors, not code."""
    with pytest.raises(templates.TemplateError):
        templates.parse(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0),
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("1d", 86400),
        ("1w", 604800),
        ("250ms", 0.25),
    ],
)
def test_durations(text, seconds):
    """Prometheus durations parse, and format back."""
    assert durations.parse_duration(text) == timedelta(seconds=seconds)
    assert durations.parse_duration(
        durations.format_duration(durations.parse_duration(text))
    ) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "5", "5 m", "1m1h", "-5m", "5M"])
def test_bad_durations(text):
    """Malformed durations are rejected."""
    with pytest.raises(ValueError, match="is not a duration"):
        durations.parse_duration(text)


def test_equalities_are_indexable():
    """Top-level label equalities are exposed for the index; others are not."""
    expr = expressions.compile_expression(
        "labels.type == 'lag' && body.n > 3 && labels.x != 'y'", allowed=ALL
    )
    assert expr.equalities == (("type", "lag"),)
    assert expr.fast is not None
    assert (
        expressions.compile_expression("labels.a == 'b' || labels.c == 'd'", allowed=ALL).equalities
        == ()
    )


FAST_SOURCES = [
    "labels.kind == 'probe'",
    "labels.kind != 'probe'",
    "body.n > 3",
    "body.n <= -2.5",
    "body.deep.n >= 10 && labels.kind == 'probe'",
    "labels.kind == 'probe' && labels.zone != 'b' && body.n < 1e3",
]
values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=3),
)


@settings(max_examples=400, deadline=None)
@given(
    source=st.sampled_from(FAST_SOURCES),
    kind=st.sampled_from(["probe", "other", None]),
    zone=st.sampled_from(["a", "b", None]),
    n=values,
    deep=values,
)
def test_fast_path_agrees_with_cel(source, kind, zone, n, deep):
    """The plain-Python twin of an expression answers exactly as CEL does."""
    expr = expressions.compile_expression(source, allowed=ALL)
    assert expr.fast is not None
    labels = {name: value for name, value in (("kind", kind), ("zone", zone)) if value is not None}
    body = {"n": n, "deep": {"n": deep}}
    variables = {"labels": labels, "body": body, "stream": "s"}
    assert expressions.evaluate(expr, variables) == expressions.evaluate_cel(expr, variables)


def test_cel_errors_count_as_false():
    """A missing key or type mismatch makes a condition false, not an exception."""
    expr = expressions.compile_expression("body.a.b == 'x' || body.n + 1 > 2", allowed=ALL)
    assert expr.fast is None
    assert expressions.evaluate(expr, {"body": {"n": "text"}}) is False
