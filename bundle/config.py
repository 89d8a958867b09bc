"""The monitoring bundle's own settings: the scrape selector, runbook links and severities.

The thresholds themselves live in ``exporter/domain/thresholds.py``, shared with the status page.
Edit either, then run ``python -m bundle`` to regenerate the checked-in files.
"""

from __future__ import annotations

#: Selector of the exporter's scrape job, used where the rules look at ``up``.
JOB_SELECTOR = 'job="clevertap-export"'

#: Base of the ``runbook_url`` annotations; each alert appends ``#<alertname lower-cased>``.
#: Set it to the absolute URL of docs/runbook.md in your repository or wiki.
RUNBOOK_URL = "docs/runbook.md"

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
    "ClevertapExportTooFast": "warning",
    "ClevertapExportConfigReloadFailed": "warning",
}
