"""The metrics view: renders the export model as Prometheus metric families at each scrape.

Following Prometheus's "Writing exporters" guidance, export metrics are not global gauges that
handlers mutate: they are derived from the tracker's model whenever Prometheus asks, so what is
exposed is always exactly what is stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from exporter import normalize
from exporter.state import DURATION_BUCKETS, ExportTracker, SeriesKey

SERIES_LABELS = ["account", "partner", "export_type", "frequency"]
_BUCKET_BOUNDS = [str(float(b)) for b in DURATION_BUCKETS] + ["+Inf"]


class ExportCollector(Collector):
    """Exposes the ``clevertap_export_*`` metrics derived from an ``ExportTracker``."""

    def __init__(self, tracker: ExportTracker) -> None:
        self.tracker = tracker

    def collect(self) -> Iterable[Metric]:
        t = self.tracker
        events = CounterMetricFamily(
            "clevertap_export_status_events",
            "Accepted export status events (redeliveries excluded), by normalized status.",
            labels=[*SERIES_LABELS, "status"],
        )
        last_initiated = _gauge(
            "clevertap_export_last_initiated_timestamp_seconds",
            "Event time (Unix seconds) of the newest Initiated status.",
        )
        last_completed = _gauge(
            "clevertap_export_last_completed_timestamp_seconds",
            "Event time (Unix seconds) of the newest Completed status.",
        )
        last_failed = _gauge(
            "clevertap_export_last_failed_timestamp_seconds",
            "Event time (Unix seconds) of the newest Failed status.",
        )
        in_flight = _gauge(
            "clevertap_export_in_flight",
            "Exports initiated and not yet completed, failed or abandoned.",
        )
        oldest = _gauge(
            "clevertap_export_in_flight_oldest_start_timestamp_seconds",
            "Event time (Unix seconds) at which the oldest in-flight export started; "
            "absent when none is in flight.",
        )
        duration = HistogramMetricFamily(
            "clevertap_export_duration_seconds",
            "Seconds from an export run's Initiated to its Completed event time.",
            labels=SERIES_LABELS,
        )
        last_duration = _gauge(
            "clevertap_export_last_duration_seconds",
            "Duration in seconds of the most recently completed run.",
        )
        interval = _gauge(
            "clevertap_export_expected_interval_seconds",
            "Schedule interval in seconds of a recurring export; absent for one-time exports.",
        )
        abandoned = CounterMetricFamily(
            "clevertap_export_abandoned",
            "In-flight exports given up: past the in-flight timeout, or restarted unfinished.",
            labels=SERIES_LABELS,
        )

        running: dict[SeriesKey, tuple[int, float]] = {}
        for run in t.in_flight.values():
            if run.started is None:
                continue
            count, first = running.get(run.series, (0, run.started))
            running[run.series] = (count + 1, min(first, run.started))

        for key, s in t.series.items():
            labels = list(key)
            for status, n in s.status_counts.items():
                events.add_metric([*labels, status], n)
            _add(last_initiated, labels, s.last_initiated)
            _add(last_completed, labels, s.last_completed)
            _add(last_failed, labels, s.last_failed)
            count, first = running.get(key, (0, 0.0))
            in_flight.add_metric(labels, count)
            if count:
                oldest.add_metric(labels, first)
            cumulative, acc = [], 0
            for bound, n in zip(_BUCKET_BOUNDS, s.duration_buckets, strict=True):
                acc += n
                cumulative.append((bound, float(acc)))
            duration.add_metric(labels, cumulative, s.duration_sum)
            _add(last_duration, labels, s.last_duration)
            _add(interval, labels, normalize.interval_seconds(key[3]))
            abandoned.add_metric(labels, s.abandoned)

        yield from (events, last_initiated, last_completed, last_failed, in_flight, oldest,
                    duration, last_duration, interval, abandoned)
        yield from self._process_view()

    def _process_view(self) -> Iterator[Metric]:
        t = self.tracker
        received = _gauge_plain(
            "clevertap_export_webhook_last_received_timestamp_seconds",
            "Receipt time (Unix seconds) of the last accepted webhook.",
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
        for label, n in t.label_overflow.items():
            overflow.add_metric([label], n)
        yield overflow
        problems = CounterMetricFamily(
            "clevertap_export_event_time_unparsed",
            "Accepted events whose 'Date and Time' was missing or unparseable; the receipt "
            "time was used instead.",
            labels=["reason"],
        )
        for reason, n in t.time_problems.items():
            problems.add_metric([reason], n)
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


def _gauge(name: str, doc: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=SERIES_LABELS)


def _gauge_plain(name: str, doc: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=[])


def _add(family: GaugeMetricFamily, labels: list[str], value: float | None) -> None:
    if value is not None:
        family.add_metric(labels, value)
