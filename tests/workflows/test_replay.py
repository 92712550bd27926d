"""Committed histories replay against today's workflow code: a change that breaks running workflows fails here.

The histories in ``histories/`` were recorded by ``test_plan_timeline.py`` with
``HOMEOSTAT_RECORD_HISTORIES=1``. When a change to the workflows is deliberately
incompatible (and running workflows are migrated), record them again and say so.
"""

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from controller import workflows
from controller.workflows import converter

HISTORIES = sorted(Path(__file__).with_name("histories").glob("*.json"))


def test_histories_are_committed():
    """Both workflows have recorded histories, a continue-as-new among them."""
    names = {path.stem for path in HISTORIES}
    assert {"resource_full", "resource_continued_as_new", "remediation_full"} <= names


@pytest.mark.parametrize("path", HISTORIES, ids=[path.stem for path in HISTORIES])
async def test_history_replays(path):
    """The recorded history replays without a nondeterminism error."""
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=workflows.WORKFLOWS, data_converter=converter.DATA_CONVERTER)
    result = await replayer.replay_workflow(history)
    assert result.replay_failure is None
