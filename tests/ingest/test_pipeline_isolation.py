from datetime import UTC, datetime

from structlog import testing

from controller import dispatch
from controller.domain import observations
from controller.ingest import pipeline
from controller.observability import metrics as metrics_module
from controller.rules import engine, loader

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


def _failed(job: str) -> observations.Observation:
    return observations.Observation(
        source=observations.SourceKind.WEBHOOK,
        stream="default",
        at=datetime.now(UTC),
        labels={"kind": "job", "job": job},
        body={"status": "failed"},
    )


def _poison() -> observations.Observation:
    """An observation the engine raises on (a time without a timezone: no source makes one)."""
    return observations.Observation(
        source=observations.SourceKind.WEBHOOK,
        stream="default",
        at=datetime.now(UTC).replace(tzinfo=None),
        labels={"kind": "job", "job": "poison"},
        body={"status": "failed"},
    )


def test_an_observation_that_makes_the_engine_raise_does_not_stop_the_others(tmp_path):
    """During a rebuild, an observation the engine chokes on is logged and counted as `error`, and the ones after it are evaluated."""
    (tmp_path / "rules.yaml").write_text(RULES)
    metrics = metrics_module.create()
    pipe = pipeline.Pipeline(
        engine=engine.Engine(loader.load_rule_set(tmp_path, known_remediations=None)),
        dispatcher=dispatch.Dispatcher(lambda *_: None),  # evaluate() dispatches nothing
        metrics=metrics,
    )
    with testing.capture_logs() as logs:
        found = pipe.evaluate([_failed("a"), _poison(), _failed("b")])
    assert [t.resource for t in found] == ["job/a", "job/b"]
    assert [entry["event"] for entry in logs if entry["log_level"] == "error"] == [
        "observation_failed"
    ]
    refused = metrics.registry.get_sample_value(
        "homeostat_observations_refused_total", {"reason": "error"}
    )
    assert refused == 1
