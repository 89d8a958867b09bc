"""The one place where the monitoring bundle's thresholds live.

Edit a value here, then regenerate the checked-in files:

    python -m bundle            # rewrites prometheus/rules.yml, prometheus/alerts.yml
                                # and grafana/dashboards/clevertap-exports.json

``tests/bundle/test_generated.py`` fails when the checked-in files differ from what
this module generates, so a hand edit of a generated file cannot go unnoticed.

Durations are in seconds. Per-export values that the exporter may expose later
(``clevertap_export_grace_seconds``, ``clevertap_export_max_runtime_seconds``) take
precedence over the defaults below; see ``docs/bundle-readme.md``.
"""

from __future__ import annotations

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR

#: Selector of the exporter's scrape job, used where the rules look at ``up``.
JOB_SELECTOR = 'job="clevertap-export"'

#: Base of the ``runbook_url`` annotations; each alert appends ``#<alertname lower-cased>``.
#: Set it to the absolute URL of docs/runbook.md in your repository or wiki.
RUNBOOK_URL = "docs/runbook.md"

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
}

#: Severity label of each alert.
SEVERITIES: dict[str, str] = {
    "ClevertapExportOverdue": "critical",
    "ClevertapExportStuck": "warning",
    "ClevertapExportFailed": "critical",
    "ClevertapExportAbandoned": "warning",
    "ClevertapExportWebhooksMissing": "critical",
    "ClevertapExportWebhooksRejected": "warning",
    "ClevertapExportLabelOverflow": "warning",
    "ClevertapExportTimeZoneMismatch": "warning",
    "ClevertapExportEventTimeUnparsed": "info",
    "ClevertapExporterDown": "critical",
    "ClevertapExporterAbsent": "critical",
}
