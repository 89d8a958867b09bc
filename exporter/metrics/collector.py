"""The metrics view of the process: the tracker's small families, through prometheus-client.

Following Prometheus's "Writing exporters" guidance, export metrics are not global gauges that
handlers mutate: they are derived from the tracker's model whenever Prometheus asks, so what is
exposed is always exactly what is stored. The per-series families, the bulk of a scrape, are
rendered by ``exporter.metrics.exposition``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.domain.declared import ConfigHolder
from exporter.domain.labelcap import OVERFLOW_LABELS
from exporter.domain.landing import Outcome
from exporter.domain.payload import TIME_PROBLEMS
from exporter.domain.tracker import ExportTracker


class TrackerCollector(Collector):
    """The tracker's small process-level families, through prometheus-client."""

    def __init__(self, tracker: ExportTracker, config: ConfigHolder | None = None) -> None:
        self.tracker = tracker
        self.config = config

    def collect(self) -> Iterator[Metric]:
        yield from self._process_view()
        yield from self._declared_view()
        yield from self._landing_view()

    def _process_view(self) -> Iterator[Metric]:
        t = self.tracker
        received = GaugeMetricFamily(
            "clevertap_export_webhook_last_received_timestamp_seconds",
            "Receipt time (Unix seconds) of the last accepted webhook.",
            labels=[],
        )
        if t.last_received is not None:
            received.add_metric([], t.last_received)
        yield received
        delay = GaugeMetricFamily(
            "clevertap_export_last_delivery_delay_seconds",
            "Receipt time minus event time of the account's last event, in seconds. Hours "
            "(or a negative value) mean the configured time zone does not match CleverTap's.",
            labels=["account"],
        )
        for account, value in t.delivery_delay.items():
            delay.add_metric([account], value)
        yield delay
        overflow = CounterMetricFamily(
            "clevertap_export_label_overflow",
            "Events whose label value was folded into 'other' by the cardinality cap "
            "(label=\"series\": the whole series, by --max-series).",
            labels=["label"],
        )
        # Every label and reason from zero, so increase() sees the very first occurrence.
        for label in OVERFLOW_LABELS:
            overflow.add_metric([label], t.labels.overflow.get(label, 0))
        yield overflow
        problems = CounterMetricFamily(
            "clevertap_export_event_time_unparsed",
            "Accepted events whose 'Date and Time' was missing or unparseable; the receipt "
            "time was used instead.",
            labels=["reason"],
        )
        for reason in TIME_PROBLEMS:
            problems.add_metric([reason], t.time_problems.get(reason, 0))
        yield problems
        yield GaugeMetricFamily(
            "clevertap_export_remembered_deliveries",
            "Deliveries remembered to recognise redeliveries (pruned after the retention or "
            "beyond --max-remembered-deliveries, oldest first).",
            value=len(t.deliveries),
        )
        yield GaugeMetricFamily(
            "clevertap_export_remembered_runs",
            "Export runs remembered (in flight, or finished and within the retention).",
            value=len(t.runs),
        )
        forgotten = CounterMetricFamily(
            "clevertap_export_state_forgotten",
            "Deliveries or runs forgotten before their retention because a count limit "
            "(--max-remembered-deliveries, --max-runs) was reached.",
            labels=["kind"],
        )
        for kind in ("delivery", "run"):
            forgotten.add_metric([kind], t.forgotten.get(kind, 0))
        yield forgotten
        yield GaugeMetricFamily(
            "clevertap_export_state_store_size_bytes",
            "Size in bytes of the state database and its write-ahead log.",
            value=t.store.size_bytes(),
        )
        yield from _freshness_view(t)

    def _declared_view(self) -> Iterator[Metric]:
        """Declared exports, their thresholds, and the configuration file's reload status."""
        if self.config is None:
            return
        holder = self.config
        info = GaugeMetricFamily(
            "clevertap_export_declared_info",
            "Always 1 for each export declared in the configuration file; 'name' is its "
            "human name (empty when none is given).",
            labels=[*SERIES_LABELS, "name"],
        )
        since = _series_gauge(
            "clevertap_export_declared_timestamp_seconds",
            "When (Unix seconds) the exporter first found this export in its configuration "
            "(kept across restarts): the overdue reference of an export that never completed.",
        )
        grace = _series_gauge(
            "clevertap_export_grace_seconds",
            "Declared grace in seconds: how much later than its expected interval (times the "
            "rules' tolerance) a recurring export may complete before it is overdue.",
        )
        max_runtime = _series_gauge(
            "clevertap_export_max_runtime_seconds",
            "Declared longest acceptable run in seconds: in flight for longer is stuck.",
        )
        min_runtime = _series_gauge(
            "clevertap_export_min_runtime_seconds",
            "Declared shortest plausible run in seconds: a run completing faster probably "
            "exported nothing.",
        )
        slow = _series_gauge(
            "clevertap_export_usual_slow_factor",
            "Declared factor over the usual duration's high quantile beyond which a run is "
            "longer than usual (learn: usual_slow_factor).",
        )
        fast = _series_gauge(
            "clevertap_export_usual_fast_fraction",
            "Declared share of the usual median below which the last run is shorter than "
            "usual (learn: usual_fast_fraction).",
        )
        declared_since = self.tracker.declared_since
        for key, export in holder.config.exports.items():
            labels = list(key)
            info.add_metric([*labels, export.name], 1)
            for family, value in ((since, declared_since.get(key)), (grace, export.grace),
                                  (max_runtime, export.max_runtime),
                                  (min_runtime, export.min_runtime),
                                  (slow, export.learn.get("usual_slow_factor")),
                                  (fast, export.learn.get("usual_fast_fraction"))):
                if value is not None:
                    family.add_metric(labels, value)
        yield from (info, since, grace, max_runtime, min_runtime, slow, fast)
        yield from reload_status("config", "the configuration file", holder)
        reloads = CounterMetricFamily(
            "clevertap_export_config_reloads",
            "Configuration reloads (SIGHUP or POST /-/reload) by result: success, failure.",
            labels=["result"],
        )
        for result, n in holder.reloads.items():
            reloads.add_metric([result], n)
        yield reloads

    def _landing_view(self) -> Iterator[Metric]:
        """The landing checks of the declared exports with a destination (docs/landing.md):
        the same on every replica, since the results are in the series they all apply."""
        objects = _series_gauge(
            "clevertap_export_landing_last_objects",
            "Objects the last checked run landed in its destination (a lower bound when the "
            "listing was truncated).")
        size = _series_gauge(
            "clevertap_export_landing_last_bytes",
            "Bytes the last checked run landed in its destination.")
        checked = _series_gauge(
            "clevertap_export_landing_last_check_timestamp_seconds",
            "When (Unix seconds) the last landing check of the export ended.")
        last = GaugeMetricFamily(
            "clevertap_export_landing_last_outcome",
            "1 for the outcome of the export's last landing check, 0 for the others.",
            labels=[*SERIES_LABELS, "outcome"])
        failed = _series_gauge(
            "clevertap_export_landing_failed_checks",
            "Landing checks in a row that could not list the destination (permission, "
            "not_found, error); 0 once a listing works.")
        usual = _series_gauge(
            "clevertap_export_landing_usual_bytes",
            "Median bytes of the export's last checked runs; absent while fewer than the "
            "usual duration's minimum history were checked, or when they landed nothing.")
        usual_runs = _series_gauge(
            "clevertap_export_landing_usual_runs",
            "Checked runs the usual landed bytes rest on.")
        checks = CounterMetricFamily(
            "clevertap_export_landing_checks",
            "Landing checks recorded since the process started, by outcome (every replica "
            "counts every replica's checks, each once).",
            labels=[*SERIES_LABELS, "outcome"])
        counted = self.tracker.landing_checks
        exports = self.config.config.exports if self.config is not None else {}
        for key, export in exports.items():
            if export.destination is None:
                continue
            labels = list(key)
            series = self.tracker.series.get(key)
            landing = series.landing if series is not None else None
            for outcome in Outcome:
                checks.add_metric([*labels, outcome.value], counted.get((key, outcome.value), 0))
                if landing is not None:
                    last.add_metric([*labels, outcome.value],
                                    1 if landing.outcome == outcome.value else 0)
            if series is None:
                continue
            failed.add_metric(labels, series.failed_checks)
            if landing is not None:
                objects.add_metric(labels, landing.objects)
                size.add_metric(labels, landing.bytes)
                checked.add_metric(labels, landing.checked)
            if series.usual_landed is not None:
                usual.add_metric(labels, series.usual_landed.median)
                usual_runs.add_metric(labels, series.usual_landed.runs)
        yield from (objects, size, checked, last, failed, usual, usual_runs, checks)


class ReloadStatus(Protocol):
    """How the last load of a re-read file went: ``ConfigHolder``, ``WebConfigFile``."""

    @property
    def last_reload_successful(self) -> bool: ...

    @property
    def last_success(self) -> float: ...


def reload_status(name: str, what: str, status: ReloadStatus) -> Iterator[Metric]:
    """The pair Prometheus and Alertmanager expose for their own configuration files."""
    yield GaugeMetricFamily(
        f"clevertap_export_{name}_last_reload_successful",
        f"1 when the last load of {what} succeeded, 0 when it failed (the previous "
        "configuration stays in force).",
        value=1 if status.last_reload_successful else 0,
    )
    yield GaugeMetricFamily(
        f"clevertap_export_{name}_last_reload_success_timestamp_seconds",
        f"When (Unix seconds) {what} was last loaded successfully.",
        value=status.last_success,
    )


class WebConfigCollector(Collector):
    """``--web.config.file``'s reload status: a changed file that does not load keeps the last
    good configuration, and these say so."""

    def __init__(self, status: ReloadStatus) -> None:
        self.status = status

    def collect(self) -> Iterator[Metric]:
        yield from reload_status("web_config", "--web.config.file", self.status)


SERIES_LABELS: Final = ["account", "partner", "export_type", "frequency"]


def _freshness_view(t: ExportTracker) -> Iterator[Metric]:
    """How current this replica is with the shared state, and its clock against the
    database's."""
    fresh = t.store.freshness()
    yield GaugeMetricFamily(
        "clevertap_export_state_sequence",
        "The last committed state change set this replica holds (PostgreSQL: the log's "
        "sequence number; SQLite: batches committed since start): the highest is the freshest "
        "replica.",
        value=fresh.sequence,
    )
    yield GaugeMetricFamily(
        "clevertap_export_state_behind_changes",
        "State change sets other replicas committed that this one has heard of and not "
        "applied yet.",
        value=fresh.behind_changes,
    )
    yield GaugeMetricFamily(
        "clevertap_export_state_behind_seconds",
        "Seconds since this replica last held every committed state change; 0 while it does.",
        value=fresh.behind_seconds,
    )
    yield GaugeMetricFamily(
        "clevertap_export_state_clock_skew_seconds",
        "This replica's clock minus the state database's, in seconds (0 on SQLite, whose "
        "clock is the process's); expiry runs on the database's clock.",
        value=t.clock_skew(),
    )


def _series_gauge(name: str, doc: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=SERIES_LABELS)
