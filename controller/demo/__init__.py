"""``homeostat demo``: the self-healing scenario on this machine, started and stopped by itself.

``standin`` is the service the demo breaks and a playbook restarts (a tiny service manager
for one real process); ``stack`` writes the Prometheus and Alertmanager configuration and
runs their binaries; ``run`` drives the scenario and reports its progress.
"""
