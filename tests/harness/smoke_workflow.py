"""A workflow that only sleeps, to prove a Temporal server runs workflows and timers."""

from datetime import timedelta

from temporalio import workflow


@workflow.defn(name="HarnessSleep")
class SleepWorkflow:
    """Sleeps for the given number of seconds, then returns how long it slept."""

    @workflow.run
    async def run(self, seconds: float) -> float:
        start = workflow.now()
        await workflow.sleep(timedelta(seconds=seconds))
        return (workflow.now() - start).total_seconds()
