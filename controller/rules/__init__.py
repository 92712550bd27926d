"""The rules engine: rule files in git to transitions, with Prometheus's exact semantics.

``schema`` is the file format, ``loader`` turns files into a compiled ``model.RuleSet``
(every problem as ``file:line:column``), and ``engine.Engine`` turns observations and query
results into ``domain.transitions.Transition`` values. ``rule_tests`` runs rule tests
written in promtool's format.
"""
