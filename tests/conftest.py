"""Test-suite wide fixtures: the real-service harness lives in tests/harness/."""

pytest_plugins = [
    "harness.temporal",
    "harness.kafka",
    "harness.prometheus",
]
