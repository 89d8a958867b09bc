"""The export model's state, and how it is replaced or advanced from stored rows.

``ExportState`` holds every export series, every known run, the in-flight runs and the
remembered deliveries; ``restore`` replaces it from a snapshot and ``apply_remote`` applies the
rows other replicas committed. The rules that change it live in ``tracker.ExportTracker``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from exporter.domain.keys import DeliveryKey, RunKey, SeriesKey
from exporter.domain.labelcap import LabelCap
from exporter.domain.model import Run, Series
from exporter.store.base import Changes, RunRow, SeriesRow, Snapshot

#: Gauge keys of the declaration times, ``declared:account|partner|export_type|frequency``.
DECLARED_PREFIX: Final = "declared:"
KEY_SEP: Final = "|"  # never in a label value: accounts match [A-Za-z0-9_.-], others [a-z0-9_]


class ExportState:
    """Every export series, run and remembered delivery, as the metrics view reads them."""

    def __init__(self, labels: LabelCap) -> None:
        self.series: dict[SeriesKey, Series] = {}
        self.runs: dict[RunKey, Run] = {}
        self.in_flight: dict[RunKey, Run] = {}
        self.deliveries: dict[DeliveryKey, float] = {}
        self.labels = labels
        self.last_received: float | None = None
        self.delivery_delay: dict[str, float] = {}
        #: When each declared export was first declared (persisted): the overdue reference of
        #: an export that never completed.
        self.declared_since: dict[SeriesKey, float] = {}
        self.declared: set[SeriesKey] = set()
        self.version = 0  # bumped on every change, so readers can cache what they derive

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the in-memory model with ``snapshot``."""
        self.series = {
            (r.account, r.partner, r.export_type, r.frequency): Series.decode(r.data)
            for r in snapshot.series
        }
        self.runs = {}
        self.in_flight = {}
        for rr in snapshot.runs:
            self._put_run(rr)
        self.deliveries = snapshot.deliveries  # oldest first: the dict's order is their age order
        self.labels.restore(snapshot.label_values)
        self.last_received = None
        self.delivery_delay = {}
        self.declared_since = {}
        self._set_gauges(snapshot.gauges.items())
        for key in self.declared:
            self.series.setdefault(key, Series())
        self.version += 1

    def apply_remote(self, changes: Sequence[Changes]) -> None:
        """Apply the rows other replicas committed, in their commit order."""
        for c in changes:
            touched: set[SeriesKey] = set()
            for label, value in c.label_values:
                self.labels.admitted.setdefault(label, set()).add(value)
            for sr in c.series:
                key = (sr.account, sr.partner, sr.export_type, sr.frequency)
                new = Series.decode(sr.data)
                old = self.series.get(key)
                if old is not None:
                    new.running, new.rev = old.running, old.rev
                self.series[key] = new
                touched.add(key)
            for rr in c.runs:
                touched.update(self._drop_run((rr.account, rr.export_id)))
                touched.add(self._put_run(rr).series)
            for rkey in c.deleted_runs:
                touched.update(self._drop_run(rkey))
            self._apply_deliveries(c)
            self._set_gauges(c.gauges)
            for key in touched:
                self.series[key].rev += 1
        self.version += 1

    def _apply_deliveries(self, c: Changes) -> None:
        for d in c.deliveries:
            self.deliveries[(d.account, d.export_id, d.status, d.event_time)] = d.received
        for k in c.deleted_deliveries:
            self.deliveries.pop(k, None)
        horizon = c.deliveries_received_before
        if horizon is not None:
            self.deliveries = {k: r for k, r in self.deliveries.items() if r >= horizon}

    def _put_run(self, rr: RunRow) -> Run:
        run = Run((rr.account, rr.partner, rr.export_type, rr.frequency),
                  rr.started, rr.last_finished, rr.updated)
        rkey = (rr.account, rr.export_id)
        self.runs[rkey] = run
        if run.started is not None:
            self._open(rkey, run, run.series, run.started)
        return run

    def _drop_run(self, rkey: RunKey) -> tuple[SeriesKey, ...]:
        """Forget a run; returns the series it was in flight in, if any."""
        run = self.runs.pop(rkey, None)
        if run is None or run.started is None:
            return ()
        self._close(rkey, run)
        return (run.series,)

    def _set_gauges(self, gauges: Iterable[tuple[str, float]]) -> None:
        for k, v in gauges:
            if k == "last_received":
                self.last_received = v
            elif k.startswith("delay:"):
                self.delivery_delay[k.removeprefix("delay:")] = v
            elif k.startswith(DECLARED_PREFIX):
                parts = k.removeprefix(DECLARED_PREFIX).split(KEY_SEP)
                if len(parts) == 4:
                    self.declared_since[(parts[0], parts[1], parts[2], parts[3])] = v

    def _series(self, key: SeriesKey) -> Series:
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = Series()
        return series

    def _open(self, rkey: RunKey, run: Run, key: SeriesKey, started: float) -> None:
        run.series = key
        run.started = started
        self.in_flight[rkey] = run
        self.series.setdefault(key, Series()).running[rkey] = started

    def _close(self, rkey: RunKey, run: Run) -> None:
        self.series[run.series].running.pop(rkey, None)
        run.started = None
        self.in_flight.pop(rkey, None)

    def _persist_series(self, keys: set[SeriesKey], changes: Changes) -> None:
        for key in keys:
            series = self.series[key]
            series.rev += 1
            changes.series.append(SeriesRow(*key, series.encode()))
        if keys:  # an expiry pass that changed no series leaves the cached exposition valid
            self.version += 1
