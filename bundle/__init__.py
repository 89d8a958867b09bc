"""Monitoring bundle generator: alert rules, recording rules and the Grafana dashboard.

Thresholds live in :mod:`bundle.thresholds`; ``python -m bundle`` writes the files.
"""
