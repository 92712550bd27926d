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
from temporalio.worker import workflow_sandbox

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


def sandbox_runner() -> workflow_sandbox.SandboxedWorkflowRunner:
    """The sandbox of the worker, with the workflow modules themselves passed through.

    The SDK executes a workflow's own module again for every workflow it builds, unless
    that module is configured as passed through; for these modules that cost more CPU in
    each episode's first workflow tasks than the workflow code itself. They keep no
    module-level state, and ``controller/workflows/ruff.toml`` bans I/O, clocks and
    randomness in them, which is what the sandbox's runtime checks of a reloaded module
    would catch. Tests and the replayer keep the SDK's default sandbox, checks included.
    """
    restrictions = workflow_sandbox.SandboxRestrictions.default.with_passthrough_modules(
        *_PASSED_THROUGH
    )
    return workflow_sandbox.SandboxedWorkflowRunner(restrictions=restrictions)
