"""A stand-in for ResourceWorkflow that records the transitions it is signalled with.

Used only by the dispatcher's own tests, which check delivery (start-once, order,
coalescing) rather than what the real workflow does with a transition.
"""

from datetime import timedelta

from temporalio import workflow

from controller.domain import contract

with workflow.unsafe.imports_passed_through():
    from controller.domain import transitions


@workflow.defn(name=contract.RESOURCE_WORKFLOW)
class RecorderWorkflow:
    """Keeps the transition ids it received, in order, until told to stop."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.batches = 0

    @workflow.run
    async def run(self, _resource: str) -> list[str]:
        await workflow.wait_condition(lambda: False, timeout=timedelta(hours=1))
        return self.received

    @workflow.signal(name=contract.SIGNAL_TRANSITIONS)
    def transitions(self, batch: transitions.TransitionBatch) -> None:
        self.batches += 1
        self.received.extend(t.transition_id for t in batch.transitions)

    @workflow.query(name="received")
    def query_received(self) -> list[str]:
        return self.received

    @workflow.query(name="batches")
    def query_batches(self) -> int:
        return self.batches
