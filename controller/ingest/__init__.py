"""Sources: Alertmanager, Kafka, Prometheus and webhooks, turned into observations."""
