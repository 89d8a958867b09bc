"""Monitoring bundle generator: alert rules, recording rules and the Grafana dashboard.

Thresholds live in `exporter.domain.thresholds`, the selector and severities in
:mod:`bundle.config`; ``python -m bundle`` writes the files.
"""
