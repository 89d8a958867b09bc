"""The one place where every alert threshold lives: read by the monitoring bundle's generator
(``python -m bundle`` writes prometheus/rules.yml, prometheus/alerts.yml and the Grafana
dashboard from it) and by the status page, so the page and the alerts always agree.

``tests/bundle/test_static.py`` fails when the checked-in generated files differ from what the
generator produces. Durations are in seconds. Per-export values that the exporter exposes for
declared exports (``clevertap_export_grace_seconds``, ``clevertap_export_max_runtime_seconds``)
take precedence over these defaults; see docs/bundle.md.
"""

from __future__ import annotations

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR

THRESHOLDS: dict[str, float] = {
    # A recurring export is overdue when its last completion is older than
    # expected_interval * overdue_tolerance + grace.
    "overdue_tolerance": 1.5,
    "overdue_grace_seconds": 30 * MINUTE,
    # An in-flight export is stuck when it has run longer than
    # expected_interval * stuck_interval_factor (recurring exports) ...
    "stuck_interval_factor": 1.0,
    # ... or longer than this fixed bound (one-time exports).
    "stuck_one_time_seconds": 6 * HOUR,
    # A Failed status keeps its alert firing until a later completion, at most this long.
    "failed_alert_window_seconds": 1 * DAY,
    # Window in which an abandoned export, a rejected webhook, a label overflow or an
    # unparsed event time raises its alert.
    "abandoned_window_seconds": 1 * HOUR,
    "rejected_window_seconds": 30 * MINUTE,
    "rejected_max_count": 0,
    "overflow_window_seconds": 1 * HOUR,
    "unparsed_window_seconds": 1 * HOUR,
    # No webhook at all for longer than the longest known schedule plus this margin.
    "webhooks_missing_margin_seconds": 2 * HOUR,
    # |receipt time - event time| above this points at a wrong --timezone.
    "delivery_delay_max_seconds": 30 * MINUTE,
    # How long the exporter may be down / missing from the targets before alerting.
    "exporter_down_for_seconds": 5 * MINUTE,
    "exporter_absent_for_seconds": 10 * MINUTE,
    # A run that completed faster than its declared min_runtime keeps TooFast firing until a
    # run of normal length completes, or at most this long after the fast completion.
    "too_fast_window_seconds": 1 * DAY,
    # How long a failed reload of the --config.file may last before alerting.
    "config_reload_failed_for_seconds": 5 * MINUTE,
}
