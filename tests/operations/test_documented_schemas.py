"""The JSON examples in docs/examples/operations are exactly what the views encode: no field missing, none extra."""

import json
from pathlib import Path

import pydantic
import pytest

from controller.operations import encoding, rule_state, views
from controller.operations import timeline_model as tm

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples" / "operations"
DOCS = Path(__file__).parents[2] / "docs" / "operations.md"


class RulesStatus(pydantic.BaseModel):
    alerts: rule_state.AlertsReport
    rules: rule_state.RulesReport


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("resource-list.json", views.ResourceList),
        ("resource-show.json", views.ResourceView),
        ("history-episode.json", tm.Timeline),
        ("rules-status.json", RulesStatus),
    ],
)
def test_each_documented_example_round_trips_through_its_view(name, kind):
    """Reading the example into its dataclass and encoding it again gives the example back, and the docs link to it."""
    example = json.loads((EXAMPLES / name).read_text())
    value = pydantic.TypeAdapter(kind).validate_python(example)
    encoded = (
        {"alerts": encoding.to_json(value.alerts), "rules": encoding.to_json(value.rules)}
        if isinstance(value, RulesStatus)
        else encoding.to_json(value)
    )
    assert encoded == example
    assert f"examples/operations/{name}" in DOCS.read_text()
