"""The bounds on what the exporter remembers and on what one request may cost.

``ExportTracker`` reads the counts and the two ages; the web layer reads the request bounds.
The record has no defaults: the flag table (``exporter.cli.flags``) holds them, once.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    #: Distinct values admitted per label before new ones fold into ``other``.
    max_label_values: int
    #: Distinct (account, partner, export_type, frequency) series before new ones fold into
    #: ``OTHER_SERIES``; the per-label cap alone would allow its fourth power.
    max_series: int
    #: Count limits that hold whatever the rate of new ids: the oldest entries go first.
    max_remembered_deliveries: int
    max_runs: int
    max_body_bytes: int
    read_timeout: float
    idle_timeout: float
    max_concurrent_requests: int
    #: Seconds after its start that an in-flight run is given up (``--in-flight-timeout``).
    in_flight_timeout: float
    #: How long deliveries are remembered for redelivery detection, and idle runs are kept.
    retention: float
