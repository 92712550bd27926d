"""Remediation plans: the file format, its loader and linter, and the spec workflows run."""
