"""The monitoring bundle's own settings: the selector, replica labels, runbook links, severities.

The thresholds themselves live in ``exporter/domain/thresholds.py``, shared with the status page.
Edit either, then run ``python -m bundle`` to regenerate the checked-in files; docs/bundle.md
explains the selector and the replica aggregation.
"""

from __future__ import annotations

from typing import Literal

#: Label matchers that select the exporter's series in every rule, alert and dashboard query:
#: its scrape job and, for a Thanos or Mimir ruler that sees several clusters, the cluster's
#: label, e.g. ``'job="clevertap-export", cluster="eu-1"'``. Equality matchers only, so that
#: ``absent(up{...})`` (ClevertapExporterAbsent) carries them as labels.
SELECTOR = 'job="clevertap-export"'

#: Labels that tell replicas of the exporter apart (``instance`` for any scrape, ``pod`` as the
#: Prometheus Operator adds it). Per-export rules aggregate them away, so each condition raises
#: one alert per export however many replicas are scraped.
REPLICA_LABELS: tuple[str, ...] = ("instance", "pod")

#: How replicas' counters of export state (abandoned runs, status events, durations, label
#: overflows, unparsed event times) combine. ``max``: every replica exposes the same totals,
#: which holds for one replica and for several on the shared PostgreSQL backend. ``sum``: the
#: replicas count disjoint events, as several exporters with their own SQLite files that each
#: receive different webhooks (one per account, say). The per-process request counter
#: ``clevertap_export_webhook_requests_total`` is always summed: one replica answers a request.
STATE_COUNTERS: Literal["max", "sum"] = "max"

#: How the rules pick, per export, the replicas whose view is the freshest (a lagging replica
#: still shows a run in flight that the others saw complete). ``sequence``: the replicas
#: holding the highest state sequence (``clevertap_export_state_sequence``, the log row of the
#: shared PostgreSQL state each has applied), which a late webhook carrying an older event
#: time cannot mislead. ``event_time``: the replicas with the newest event time applied to
#: the export, for exporters older than the sequence metric.
FRESHEST_BY: Literal["sequence", "event_time"] = "sequence"

#: Base of the ``runbook_url`` annotations; each alert appends ``#<alertname lower-cased>``.
#: Absolute, as Prometheus's conventions want, so that links in notifications are clickable.
#: The default is docs/runbook.md as the exporter itself serves it (``GET /runbook``) on the
#: ``--metrics-port`` 9878 that docker-compose.yml and ``make run`` publish on this machine:
#: it resolves with nothing else to run and no forge to guess. Elsewhere set the URL your
#: users reach: the exporter's ``/runbook`` behind your ingress, or docs/runbook.md in your
#: fork, forge or wiki (docs/bundle.md).
RUNBOOK_URL = "http://localhost:9878/runbook"

#: Severity label of each alert.
SEVERITIES: dict[str, str] = {
    "ClevertapExportOverdue": "critical",
    # The schedule is the exporter's guess from past runs: "look" until the user declares it.
    "ClevertapExportOverdueOnLearnedSchedule": "warning",
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
    "ClevertapExportReplicaBehind": "warning",
    "ClevertapExportRunLongerThanUsual": "warning",
    "ClevertapExportLastRunLongerThanUsual": "warning",
    "ClevertapExportLastRunShorterThanUsual": "warning",
    # An export whose own history shows it lands files, and landed none: the data is missing
    # (docs/runbook.md#clevertapexportlandednothing says why this one pages).
    "ClevertapExportLandedNothing": "critical",
    "ClevertapExportLandedNothingNew": "warning",
    "ClevertapExportLandedLessThanUsual": "warning",
    "ClevertapExportLandingChecksFailing": "warning",
}
