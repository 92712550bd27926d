"""Temporal names are a wire contract: every workflow, signal, update and query name.

Renaming any of these breaks running workflows and the dispatcher; they change only
with a migration. Workflows, the dispatcher and the CLI all take names from here.
"""

from typing import Final

RESOURCE_WORKFLOW: Final = "ResourceWorkflow"
REMEDIATION_WORKFLOW: Final = "RemediationWorkflow"

SIGNAL_TRANSITION: Final = "transition"
"""Signal of the resource workflow; its one argument is a ``domain.transitions.Transition``."""

SEARCH_ATTRIBUTES: Final = {
    "HomeostatResourceKind": "Keyword",
    "HomeostatResource": "Keyword",
    "HomeostatPhase": "Keyword",
    "HomeostatRule": "Keyword",
    "HomeostatSeverity": "Keyword",
}
"""Custom search attributes and their types; registered before any workflow upserts them."""
