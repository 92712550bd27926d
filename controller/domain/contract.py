"""Temporal names are a wire contract: every workflow, signal, update and query name.

Renaming any of these breaks running workflows and the dispatcher; they change only
with a migration. Workflows, the dispatcher and the CLI all take names from here.
"""

from typing import Final

RESOURCE_WORKFLOW: Final = "ResourceWorkflow"
REMEDIATION_WORKFLOW: Final = "RemediationWorkflow"

SIGNAL_TRANSITION: Final = "transition"
"""Signal of the resource workflow; its one argument is a ``domain.transitions.Transition``."""

SIGNAL_TRANSITIONS: Final = "transitions"
"""Signal of the resource workflow carrying several transitions for it, in order; its one
argument is a ``domain.transitions.TransitionBatch``. The dispatcher sends this one: a
burst for one resource is one call. Each item is handled exactly like ``transition``."""

SEARCH_ATTRIBUTES: Final = {
    "HomeostatResourceKind": "Keyword",
    "HomeostatResource": "Keyword",
    "HomeostatPhase": "Keyword",
    "HomeostatRule": "Keyword",
    "HomeostatSeverity": "Keyword",
}
"""Custom search attributes and their types; registered before any workflow upserts them."""

# Added with the resource and remediation workflows (issue 6).

MANUAL_RULE: Final = "manual"
"""Rule name of transitions sent by ``homeostat run``: the episode ends with its remediation
(no ``resolved`` transition follows)."""

QUERY_STATE: Final = "state"
"""Query of the resource workflow; answers a ``workflows.resource_io.ResourceState``."""

UPDATE_APPROVE: Final = "approve"
UPDATE_DENY: Final = "deny"
"""Updates of the resource workflow; argument ``workflows.resource_io.DecisionRequest``,
result ``workflows.resource_io.DecisionAck``. Rejected unless the episode awaits an answer
that nobody gave yet, from one of the step's approvers."""

NOT_AN_APPROVER: Final = "NotAnApprover"
"""``ApplicationError.type`` of an approve/deny update rejected because the identity that
sent it is not one of the step's approvers (nor a member of one of its groups)."""

APPROVAL_CLOSED: Final = "ApprovalClosed"
"""``ApplicationError.type`` of an approve/deny update whose answer arrived after the step
stopped waiting (it timed out, or the episode resolved): nothing was decided by it."""

UPDATE_RESET: Final = "reset"
"""Update of the resource workflow: forget cooldowns and/or budget use; argument
``workflows.resource_io.ResetRequest``, result its ``ResourceState``."""

UPDATE_SILENCE: Final = "silence"
UPDATE_UNSILENCE: Final = "unsilence"
UPDATE_PAUSE: Final = "pause"
UPDATE_RESUME: Final = "resume"
"""Updates of the resource workflow; argument ``workflows.resource_io.SilenceRequest``
(silence) or ``workflows.resource_io.OperatorRequest`` (the others), result its
``ResourceState``."""

SIGNAL_REMEDIATION_PROGRESS: Final = "remediation_progress"
SIGNAL_REMEDIATION_FINISHED: Final = "remediation_finished"
"""Signals from a remediation workflow to its resource workflow (by workflow id)."""

SIGNAL_DECISION: Final = "decision"
SIGNAL_EPISODE_RESOLVED: Final = "episode_resolved"
SIGNAL_REPORT_RESULT: Final = "report_result"
QUERY_PROGRESS: Final = "progress"
"""Signals and query of the remediation workflow: an approver's decision, the episode's
resolution, a request to signal the result to the resource workflow (which is about to
continue as new), and its step-by-step progress (``workflows.remediation_io.Progress``)."""

# Added with eager episode starts (issue 14).

MEMO_STARTED_BY: Final = "homeostat_started_by"
"""Memo key of a remediation workflow started by ``start_episode``: the run id of the
resource workflow that decided to start it (a retried start recognises its own)."""
