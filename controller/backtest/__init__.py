"""``homeostat rules backtest``: what a rule set would have done over recorded history.

``history`` reads the past (Prometheus ``query_range`` in chunks, Kafka records from
``offsets_for_times`` without joining a consumer group, recorded webhook requests) as one
time-ordered stream; ``replay`` runs it through the real rules engine; ``policy`` applies
what the resource workflow would decide for each episode (cooldown, budget, concurrency)
with the workflow's own ledger; ``compare`` lines two runs up for ``--against``.
"""
