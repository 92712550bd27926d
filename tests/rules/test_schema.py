from __future__ import annotations

import json

from controller.rules import schema


def test_committed_schema_matches_the_model():
    """schema.json is generated from the model; `homeostat rules schema --write` regenerates it."""
    assert schema.SCHEMA_PATH.read_text() == schema.json_schema_text()


def test_schema_forbids_unknown_keys_and_knows_for():
    """The schema is strict like the loader, and spells `for` as users write it."""
    rule = json.loads(schema.SCHEMA_PATH.read_text())["$defs"]["RuleSpec"]
    assert rule["additionalProperties"] is False
    assert "for" in rule["properties"]
    assert "for_" not in rule["properties"]
