"""The metrics view: renders the export model as Prometheus metrics at each scrape.

Following Prometheus's "Writing exporters" guidance, export metrics are not global gauges that
handlers mutate: they are derived from the tracker's model whenever Prometheus asks, so what is
exposed is always exactly what is stored.

The per-series families are the bulk of a scrape (a histogram alone is 14 samples a series), so
``SeriesExposition`` renders them itself: each series' lines are cached with the series'
revision and re-rendered only when it changed, and the whole text is cached until the model
changes. A scrape of thousands of series is then a string join, not thousands of metric objects
built on the event loop. Their label values are normalized slugs and validated account names,
which never need escaping. The small process-level families go through prometheus-client.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter.domain import normalize
from exporter.domain.declared import ConfigHolder
from exporter.domain.keys import SeriesKey
from exporter.domain.labelcap import OVERFLOW_LABELS
from exporter.domain.model import DURATION_BUCKETS, Series
from exporter.domain.payload import TIME_PROBLEMS
from exporter.domain.tracker import ExportTracker


@dataclass(frozen=True, slots=True)
class _Family:
    name: str  # as samples carry it, ``_total`` included for counters
    kind: str
    doc: str

    def header(self, openmetrics: bool) -> str:
        # OpenMetrics names a counter family without its ``_total`` suffix.
        name = self.name.removesuffix("_total") if openmetrics else self.name
        return f"# HELP {name} {self.doc}\n# TYPE {name} {self.kind}\n"


EVENTS: Final = _Family("clevertap_export_status_events_total", "counter",
                        "Accepted export status events (redeliveries excluded), by status.")
LAST_INITIATED: Final = _Family("clevertap_export_last_initiated_timestamp_seconds", "gauge",
                                "Event time (Unix seconds) of the newest Initiated status.")
LAST_COMPLETED: Final = _Family("clevertap_export_last_completed_timestamp_seconds", "gauge",
                                "Event time (Unix seconds) of the newest Completed status.")
LAST_FAILED: Final = _Family("clevertap_export_last_failed_timestamp_seconds", "gauge",
                             "Event time (Unix seconds) of the newest Failed status.")
IN_FLIGHT: Final = _Family("clevertap_export_in_flight", "gauge",
                           "Exports initiated and not yet completed, failed or abandoned.")
OLDEST: Final = _Family("clevertap_export_in_flight_oldest_start_timestamp_seconds", "gauge",
                        "Event time (Unix seconds) at which the oldest in-flight export "
                        "started; absent when none is in flight.")
DURATION: Final = _Family("clevertap_export_duration_seconds", "histogram",
                          "Seconds from an export run's Initiated to its Completed event time.")
LAST_DURATION: Final = _Family("clevertap_export_last_duration_seconds", "gauge",
                               "Duration in seconds of the most recently completed run.")
INTERVAL: Final = _Family("clevertap_export_expected_interval_seconds", "gauge",
                          "Schedule interval in seconds of a recurring export; absent for "
                          "one-time exports.")
ABANDONED: Final = _Family("clevertap_export_abandoned_total", "counter",
                           "In-flight exports given up: past the in-flight timeout, or "
                           "started again unfinished.")
SERIES_FAMILIES: Final = (EVENTS, LAST_INITIATED, LAST_COMPLETED, LAST_FAILED, IN_FLIGHT, OLDEST,
                          DURATION, LAST_DURATION, INTERVAL, ABANDONED)

_LE: Final = [f"{float(b)!r}" for b in DURATION_BUCKETS] + ["+Inf"]
_Lines = tuple[str, ...]  # one string of sample lines per family of SERIES_FAMILIES


def _series_lines(key: SeriesKey, s: Series) -> _Lines:
    account, partner, export_type, frequency = key
    lbl = (f'account="{account}",partner="{partner}",export_type="{export_type}",'
           f'frequency="{frequency}"')

    def gauge(family: _Family, value: float | None) -> str:
        return "" if value is None else f"{family.name}{{{lbl}}} {float(value)!r}\n"

    events = "".join(f'{EVENTS.name}{{{lbl},status="{status}"}} {float(n)!r}\n'
                     for status, n in s.status_counts.items())
    hist, acc = [], 0
    for le, n in zip(_LE, s.duration_buckets, strict=True):
        acc += n
        hist.append(f'{DURATION.name}_bucket{{{lbl},le="{le}"}} {float(acc)!r}\n')
    hist.append(f"{DURATION.name}_count{{{lbl}}} {float(acc)!r}\n")
    hist.append(f"{DURATION.name}_sum{{{lbl}}} {float(s.duration_sum)!r}\n")
    return (
        events,
        gauge(LAST_INITIATED, s.last_initiated),
        gauge(LAST_COMPLETED, s.last_completed),
        gauge(LAST_FAILED, s.last_failed),
        gauge(IN_FLIGHT, len(s.running)),
        gauge(OLDEST, min(s.running.values()) if s.running else None),
        "".join(hist),
        gauge(LAST_DURATION, s.last_duration),
        gauge(INTERVAL, normalize.interval_seconds(frequency)),
        gauge(ABANDONED, s.abandoned),
    )


class SeriesExposition:
    """Renders the per-series ``clevertap_export_*`` families of one tracker, incrementally."""

    def __init__(self, tracker: ExportTracker) -> None:
        self.tracker = tracker
        self._lines: dict[SeriesKey, tuple[Series, int, _Lines]] = {}
        self._text: dict[bool, tuple[int, bytes]] = {}

    def render(self, openmetrics: bool = False) -> bytes:
        """The exposition text of every series, Prometheus text or OpenMetrics (without EOF)."""
        version = self.tracker.version
        cached = self._text.get(openmetrics)
        if cached is not None and cached[0] == version:
            return cached[1]
        lines = [self._lines_of(key, s) for key, s in self.tracker.series.items()]
        if len(self._lines) > len(lines):  # series went away (a reload): forget their lines
            self._lines = {k: v for k, v in self._lines.items() if k in self.tracker.series}
        parts: list[str] = []
        for i, family in enumerate(SERIES_FAMILIES):
            parts.append(family.header(openmetrics))
            parts.extend(ls[i] for ls in lines)
        text = "".join(parts).encode()
        self._text[openmetrics] = (version, text)
        return text

    def _lines_of(self, key: SeriesKey, s: Series) -> _Lines:
        cached = self._lines.get(key)
        if cached is not None and cached[0] is s and cached[1] == s.rev:
            return cached[2]
        lines = _series_lines(key, s)
        self._lines[key] = (s, s.rev, lines)
        return lines


class TrackerCollector(Collector):
    """The tracker's small process-level families, through prometheus-client."""

    def __init__(self, tracker: ExportTracker, config: ConfigHolder | None = None) -> None:
        self.tracker = tracker
        self.config = config

    def collect(self) -> Iterator[Metric]:
        yield from self._process_view()
        yield from self._declared_view()

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
        declared_since = self.tracker.declared_since
        for key, export in holder.config.exports.items():
            labels = list(key)
            info.add_metric([*labels, export.name], 1)
            for family, value in ((since, declared_since.get(key)), (grace, export.grace),
                                  (max_runtime, export.max_runtime),
                                  (min_runtime, export.min_runtime)):
                if value is not None:
                    family.add_metric(labels, value)
        yield from (info, since, grace, max_runtime, min_runtime)
        yield GaugeMetricFamily(
            "clevertap_export_config_last_reload_successful",
            "1 when the last load of the configuration file succeeded, 0 when it failed "
            "(the previous configuration stays in force).",
            value=1 if holder.last_reload_successful else 0,
        )
        yield GaugeMetricFamily(
            "clevertap_export_config_last_reload_success_timestamp_seconds",
            "When (Unix seconds) the configuration was last loaded successfully.",
            value=holder.last_success,
        )
        reloads = CounterMetricFamily(
            "clevertap_export_config_reloads",
            "Configuration reloads (SIGHUP or POST /-/reload) by result: success, failure.",
            labels=["result"],
        )
        for result, n in holder.reloads.items():
            reloads.add_metric([result], n)
        yield reloads


SERIES_LABELS: Final = ["account", "partner", "export_type", "frequency"]


def _series_gauge(name: str, doc: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=SERIES_LABELS)
