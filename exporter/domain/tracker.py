"""The export state model and the rules that move it: the domain of the exporter.

``ExportTracker`` owns one in-memory model of every export series (last times, counts,
durations), every known run (per account and Export Request Id) and the recent deliveries used
to recognise redeliveries. Each event changes the model on the event loop, so decisions are
atomic, and is acknowledged only after the rows it touched are committed to the store. The
metrics collector reads the model; nothing else writes it.

With a store shared by several replicas, the store decides when a change runs (``submit``):
only once the model holds every change the other replicas committed before it, which the store
hands over as the rows they wrote (``apply_remote``). Replicas replay rows, not events, so
their models equal the tables whatever their settings, declared exports or version.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from typing import Final

from exporter.domain import normalize
from exporter.domain.keys import DeliveryKey, RunKey, SeriesKey
from exporter.domain.labelcap import LabelCap
from exporter.domain.limits import Limits
from exporter.domain.model import Run, Series
from exporter.domain.payload import StatusEvent
from exporter.domain.state import DECLARED_PREFIX, KEY_SEP, ExportState
from exporter.store.base import (
    Changes,
    DeliveryRow,
    RunRow,
    Store,
    StoreError,
    Work,
)

log = logging.getLogger(__name__)


#: Share of a count limit freed at once when it is exceeded, so that pruning (a scan of the
#: table) runs once per that many new entries rather than on every event.
PRUNE_SLACK: Final = 0.02

ACCEPTED: Final = "accepted"
DUPLICATE: Final = "duplicate"


class ExportTracker(ExportState):
    """Applies status events to the export model and keeps the store in step with it."""

    def __init__(
        self,
        store: Store,
        limits: Limits,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(LabelCap(limits.max_label_values, limits.max_series))
        self.store = store
        self.limits = limits
        self.clock = clock
        # Process counters: they start at zero with the process, like any exporter's own.
        self.time_problems: dict[str, int] = {}
        #: Entries dropped by the count limits (``delivery``, ``run``) before their retention.
        self.forgotten: dict[str, int] = {}
        self._forgotten_logged: dict[str, int] = {}
        self._seen_failures = store.failures
        self.reload()
        store.follow(self)

    def reload(self) -> None:
        """Replace the in-memory model with what the store holds."""
        self.restore(self.store.load())

    async def ingest(self, event: StatusEvent) -> str:
        """Apply ``event`` and make it durable; returns ``accepted`` or ``duplicate``.

        Raises ``StoreError`` when it could not be stored; the model is then reloaded from
        the store, so memory never claims an event that the disk does not hold.
        """
        outcome = DUPLICATE

        def work() -> Changes:
            nonlocal outcome
            changes = self._apply_event(event)
            if changes is None:
                # An empty change all the same: it is answered with the batch it joins, so a
                # duplicate is only acknowledged once the event it repeats is stored.
                return Changes()
            outcome = ACCEPTED
            return changes

        # ``_submit`` inlined: one coroutine fewer to resume on every webhook.
        try:
            await self.store.submit(work)
        except StoreError:
            self._recover()
            raise
        return outcome

    def _apply_event(self, event: StatusEvent) -> Changes | None:
        """Change the model for ``event``; what to write, or None for a redelivery."""
        changes = Changes()
        account, partner, export_type, frequency, status = self.labels.fold(
            (event.account, event.partner, event.export_type, event.frequency, event.status),
            self.series, len(self.series), changes.label_values)
        dkey: DeliveryKey = (account, event.export_id, status, event.event_time)
        if dkey in self.deliveries:
            return None
        if event.time_problem is not None:
            self.time_problems[event.time_problem] = self.time_problems.get(
                event.time_problem, 0) + 1

        key: SeriesKey = (account, partner, export_type, frequency)
        series = self._series(key)
        series.status_counts[status] = series.status_counts.get(status, 0) + 1
        touched = {key}
        rkey: RunKey = (account, event.export_id)
        run = self.runs.get(rkey)
        # A Completed in the repeated hour of a fall-back day: the reading after the start.
        t = event.time_after(run.started if run is not None and status != normalize.
                             STATUS_INITIATED else None)
        if status == normalize.STATUS_INITIATED:
            series.last_initiated = _later(series.last_initiated, t)
            run = self._start_run(rkey, run, key, t, event.received, touched)
        elif status in (normalize.STATUS_COMPLETED, normalize.STATUS_FAILED):
            if status == normalize.STATUS_COMPLETED:
                series.last_completed = _later(series.last_completed, t)
            else:
                series.last_failed = _later(series.last_failed, t)
            run = self._finish_run(rkey, run, key, t, status, event.received, touched)

        self.deliveries[dkey] = event.received
        self.last_received = _later(self.last_received, event.received)
        changes.gauges.append(("last_received", self.last_received))
        if event.time_problem is None:
            self.delivery_delay[account] = event.received - t
            changes.gauges.append((f"delay:{account}", self.delivery_delay[account]))
        changes.deliveries.append(DeliveryRow(*dkey, event.received))
        if run is not None:
            changes.runs.append(_run_row(rkey, run))
        self._limit_deliveries(changes)
        self._limit_runs(changes, touched, keep=rkey)
        self._persist_series(touched, changes)
        return changes

    async def declare(self, keys: Iterable[SeriesKey], pinned: dict[str, set[str]]) -> None:
        """Note the declared exports: remember (durably) when each was first declared, and
        admit their label values outside the cap so their webhooks never fold into ``other``."""
        self.labels.pinned = pinned
        declared = self.declared = set(keys)
        for key in declared:
            if key not in self.series:
                # Present from start-up, so a declared export that never reports is visible.
                self.series[key] = Series()
        for key, series in list(self.series.items()):
            if key not in declared and series.never_seen:
                del self.series[key]  # no longer declared and never stored: forget it
        self.version += 1

        def work() -> Changes:
            # Decided on the current model, so another replica's first declaration stands.
            now = self.clock()
            changes = Changes()
            for key in [k for k in declared if k not in self.declared_since]:
                self.declared_since[key] = now
                changes.gauges.append((DECLARED_PREFIX + KEY_SEP.join(key), now))
            return changes

        await self._submit(work)

    def _start_run(self, rkey: RunKey, run: Run | None, key: SeriesKey, t: float,
                   now: float, touched: set[SeriesKey]) -> Run:
        if run is None:
            run = self.runs[rkey] = Run(key, None, None, now)
            self._open(rkey, run, key, t)
            return run
        run.updated = now
        if run.last_finished is not None and t <= run.last_finished:
            return run  # a late Initiated of a run that already finished
        if run.started is not None:
            if t <= run.started:
                return run
            # The id started again before its previous run finished: that run is given up.
            self.series[run.series].abandoned += 1
            touched.add(run.series)
            self._close(rkey, run)
        self._open(rkey, run, key, t)
        return run

    def _finish_run(self, rkey: RunKey, run: Run | None, key: SeriesKey, t: float,
                    status: str, now: float, touched: set[SeriesKey]) -> Run:
        if run is None:
            # Completed before (or without) its Initiated: remember the finish so the late
            # Initiated cannot open a phantom in-flight run.
            run = self.runs[rkey] = Run(key, None, t, now)
            return run
        run.updated = now
        if run.started is not None and run.started <= t:
            if status == normalize.STATUS_COMPLETED:
                self.series[run.series].observe_duration(t - run.started)
            touched.add(run.series)
            self._close(rkey, run)
        run.last_finished = _later(run.last_finished, t)
        return run

    async def expire(self) -> int:
        """Give up in-flight runs older than the timeout and forget what retention allows.

        Returns how many runs were abandoned.
        """
        abandoned = 0

        def work() -> Changes:
            nonlocal abandoned
            changes, abandoned = self._expire_now(self.clock())
            return changes

        await self._submit(work)
        if abandoned:
            log.warning("abandoned %d in-flight export(s) older than %.0f s",
                        abandoned, self.limits.in_flight_timeout)
        self._log_forgotten()
        return abandoned

    def _expire_now(self, now: float) -> tuple[Changes, int]:
        changes = Changes()
        deadline = now - self.limits.in_flight_timeout
        touched: set[SeriesKey] = set()
        abandoned = 0
        for rkey, run in list(self.in_flight.items()):
            if run.started is not None and run.started < deadline:
                self.series[run.series].abandoned += 1
                touched.add(run.series)
                self._close(rkey, run)
                run.updated = now
                changes.runs.append(_run_row(rkey, run))
                abandoned += 1
        horizon = now - self.limits.retention
        for rkey, run in list(self.runs.items()):
            if run.started is None and run.updated < horizon:
                del self.runs[rkey]
                changes.deleted_runs.append(rkey)
        stale = [k for k, received in self.deliveries.items() if received < horizon]
        for k in stale:
            del self.deliveries[k]
        if stale:
            changes.deliveries_received_before = horizon
        self._persist_series(touched, changes)
        return changes, abandoned

    def _limit_deliveries(self, changes: Changes) -> None:
        """Forget the oldest deliveries beyond ``max_deliveries`` (the dict is in age order)."""
        limit = self.limits.max_remembered_deliveries
        excess = len(self.deliveries) - limit
        if excess <= 0:
            return
        victims = list(itertools.islice(self.deliveries, excess + int(limit * PRUNE_SLACK)))
        for k in victims:
            del self.deliveries[k]
        changes.deleted_deliveries.extend(victims)
        self.forgotten["delivery"] = self.forgotten.get("delivery", 0) + len(victims)

    def _limit_runs(self, changes: Changes, touched: set[SeriesKey], keep: RunKey) -> None:
        """Forget the least recently updated idle runs beyond ``max_runs``; when in-flight runs
        alone exceed it, give up the oldest of them too (counted as abandoned)."""
        limit = self.limits.max_runs
        excess = len(self.runs) - limit
        if excess <= 0:
            return
        n = excess + int(limit * PRUNE_SLACK)
        victims = [k for _, k in heapq.nsmallest(
            n, ((r.updated, k) for k, r in self.runs.items() if r.started is None and k != keep)
        )]
        if len(victims) < n:
            running = heapq.nsmallest(
                n - len(victims),
                ((r.started, k) for k, r in self.in_flight.items()
                 if r.started is not None and k != keep),
            )
            for _, k in running:
                run = self.in_flight[k]
                self.series[run.series].abandoned += 1
                touched.add(run.series)
                self._close(k, run)
                victims.append(k)
        for k in victims:
            del self.runs[k]
        changes.deleted_runs.extend(victims)
        self.forgotten["run"] = self.forgotten.get("run", 0) + len(victims)

    def _log_forgotten(self) -> None:
        for kind, n in self.forgotten.items():
            new = n - self._forgotten_logged.get(kind, 0)
            if new:
                log.warning("count limit reached: forgot %d %s(s) before their retention "
                            "(raise --max-remembered-deliveries / --max-runs if this is "
                            "normal traffic)", new, kind)
        self._forgotten_logged = dict(self.forgotten)

    async def _submit(self, work: Work) -> None:
        try:
            await self.store.submit(work)
        except StoreError:
            self._recover()
            raise

    def _recover(self) -> None:
        if self.store.failures == self._seen_failures:
            return  # another caller already reloaded after this failure
        log.error("state write failed; reloading the model from the store")
        try:
            self.reload()
        except StoreError:
            log.exception("state store unreadable; writes stay refused until it recovers")
            return
        self._seen_failures = self.store.failures
        self.store.resume()


def _later(current: float | None, candidate: float) -> float:
    return candidate if current is None or candidate > current else current


def _run_row(rkey: RunKey, run: Run) -> RunRow:
    _, partner, export_type, frequency = run.series
    return RunRow(rkey[0], rkey[1], partner, export_type, frequency, run.started,
                  run.last_finished, run.updated)
