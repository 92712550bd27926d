"""Build the ingest side of a running Homeostat from settings: engine to dispatcher.

A composition root beside ``service`` and ``worker``: it reads settings and turns them into
the plain values each layer takes (``values``), assembles and runs the ingest side
(``ingest``: ``Ingest`` owns the Kafka consumer thread, the Prometheus poller, the engine
ticker and the rule-set watcher, and stops them in order), says at start what the settings
leave quietly doing nothing (``preflight``), and builds the operator API (``operator``).
Every name is re-exported here.
"""

from __future__ import annotations

from controller.assembly import ingest, operator, preflight, values

TICK_INTERVAL = ingest.TICK_INTERVAL
utc_now = ingest.utc_now
kafka_topics = ingest.kafka_topics
rebuild_window = ingest.rebuild_window
polled_rules = ingest.polled_rules
Ingest = ingest.Ingest
build_ingest = ingest.build_ingest
webhook_forwarder = ingest.webhook_forwarder
rule_group_assignment = ingest.rule_group_assignment

rule_sources = values.rule_sources
load_rules = values.load_rules
webhook_config = values.webhook_config
admission_limits = values.admission_limits
kafka_client_options = values.kafka_client_options
resource_options = values.resource_options
temporal_sender = values.temporal_sender

warn_at_start = preflight.warn_at_start
UnmetNeed = preflight.UnmetNeed
provided = preflight.provided
unmet_needs = preflight.unmet_needs

operator_routers = operator.operator_routers
