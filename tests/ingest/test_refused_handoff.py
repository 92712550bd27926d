import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf import duration_pb2
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client

from controller import assembly, dispatch
from controller.domain import observations
from controller.ingest import pipeline
from controller.rules import engine, loader
from controller.workflows import converter

RULES = """\
groups:
  - name: jobs
    rules:
      - name: JobFailed
        source: webhook
        match: labels.kind == 'job'
        when: body.status == 'failed'
        resource: job/{{ labels.job }}
"""


@pytest.mark.timeout(120)
async def test_a_refused_hand_off_leaves_no_state_so_the_senders_retry_starts_the_episode(
    tmp_path, temporal_dev_server
):
    """When Temporal refuses a transition for good (its namespace does not exist yet), the engine forgets the episode, so the same event sent again once the namespace exists starts it."""
    (tmp_path / "rules.yaml").write_text(RULES)
    eng = engine.Engine(loader.load_rule_set(tmp_path, known_remediations=None))
    namespace = f"later-{uuid.uuid4().hex[:6]}"
    client = await Client.connect(
        temporal_dev_server.address, namespace=namespace, data_converter=converter.DATA_CONVERTER
    )
    fast = dispatch.Backoff(initial=timedelta(milliseconds=10), maximum=timedelta(milliseconds=50))
    pipe = pipeline.Pipeline(
        engine=eng,
        dispatcher=dispatch.Dispatcher(assembly.temporal_sender(client, "q"), backoff=fast),
    )
    failed = observations.Observation(
        source=observations.SourceKind.WEBHOOK,
        stream="default",
        at=datetime.now(UTC),
        labels={"kind": "job", "job": "backup"},
        body={"status": "failed"},
    )
    with pytest.raises(dispatch.DispatchRejectedError):
        await pipe.ingest([failed])
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace,
            workflow_execution_retention_period=duration_pb2.Duration(seconds=86400),
        )
    )
    deadline = time.monotonic() + 60
    while True:  # the server takes a few seconds to know a new namespace
        try:
            found = await pipe.ingest([failed])
        except dispatch.DispatchRejectedError:
            assert time.monotonic() < deadline, "the namespace never became usable"
            continue
        break
    assert [(t.kind, t.resource) for t in found] == [("fired", "job/backup")]
    described = await client.get_workflow_handle("resource/job/backup").describe()
    assert described.id == "resource/job/backup"
