"""Deterministic workflow code: the resource and remediation workflows and their payloads.

``WORKFLOWS`` is what a worker registers. Nothing here does I/O, reads a clock or settings
(``controller/workflows/ruff.toml`` bans it); activities are called by the names in
``activity_io``.

Inside the workflow sandbox this package registers its modules, passed through and by
full name, before anything else imports them. Two things depend on it: the sandbox reuses
the workflow modules instead of executing them again for every workflow it builds (they
keep no module-level state; the ruff config above stands in for the sandbox's runtime
checks), and pydantic, which resolves payload annotations through ``sys.modules``, finds
the payload modules there.
"""

from temporalio import workflow

_PASSED_THROUGH = (
    "controller.domain.resources",
    "controller.domain.transitions",
    "controller.plans.spec",
    "controller.workflows.scaling",
    "controller.workflows.activity_io",
    "controller.workflows.remediation_io",
    "controller.workflows.resource_io",
    "controller.workflows.resource_memo",
    "controller.workflows.remediation",
    "controller.workflows.resource",
)

with workflow.unsafe.imports_passed_through():
    for _module in _PASSED_THROUGH:
        __import__(_module)
    from controller.workflows import remediation, resource

WORKFLOWS: list[type] = [resource.ResourceWorkflow, remediation.RemediationWorkflow]
"""The workflow classes a Homeostat worker runs."""
