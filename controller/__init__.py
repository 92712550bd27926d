"""Homeostat: an event-driven autoscaling and self-healing controller on Temporal."""

__version__ = "0.1.0"
