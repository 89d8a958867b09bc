"""The export model and the rules that move it: the domain of the exporter, in one place.

``ExportTracker`` owns one in-memory model of every export series (last times, counts,
durations), every known run (per account and Export Request Id) and the recent deliveries used
to recognise redeliveries. Each event changes the model on the event loop, so decisions are
atomic, and is acknowledged only after the rows it touched are committed to the store. The
metrics collector reads the model; nothing else writes it.

The class reads in that order: the model, how an event changes it (``ingest``, ``_start_run``,
``_finish_run``), what time and the count limits take away (``expire``, ``_limit_*``), the
helpers that keep ``in_flight``, each series' ``running`` and its revision in step with the
runs, how a failed write reloads the model, and how the model is replaced or advanced from
stored rows (``restore``, ``apply_remote``).

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
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final

from exporter.domain import normalize
from exporter.domain.declared import DeclaredExport
from exporter.domain.keys import DeliveryKey, RunKey, SeriesKey
from exporter.domain.labelcap import LabelCap
from exporter.domain.limits import Limits
from exporter.domain.model import Run, Series
from exporter.domain.payload import StatusEvent
from exporter.domain.schedule import expected_interval
from exporter.domain.thresholds import DEFAULT_LEARNING, MAX_HISTORY, Learning
from exporter.domain.usual import usual_duration
from exporter.store.base import (
    Changes,
    DeliveryRow,
    Keys,
    RunRow,
    SeriesRow,
    Snapshot,
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
#: Gauge keys of the declaration times, ``declared:account|partner|export_type|frequency``.
DECLARED_PREFIX: Final = "declared:"
KEY_SEP: Final = "|"  # never in a label value: accounts match [A-Za-z0-9_.-], others [a-z0-9_]


class ExportTracker:
    """The export model; applies status events to it and keeps the store in step with it."""

    def __init__(
        self,
        store: Store,
        limits: Limits,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.series: dict[SeriesKey, Series] = {}
        self.runs: dict[RunKey, Run] = {}
        self.in_flight: dict[RunKey, Run] = {}
        self.deliveries: dict[DeliveryKey, float] = {}
        self.labels = LabelCap(limits.max_label_values, limits.max_series)
        self.last_received: float | None = None
        self.delivery_delay: dict[str, float] = {}
        #: When each declared export was first declared (persisted): the overdue reference of
        #: an export that never completed.
        self.declared_since: dict[SeriesKey, float] = {}
        self.declared: dict[SeriesKey, DeclaredExport] = {}
        #: The learning knobs of each declared export that overrides THRESHOLDS'.
        self.learning: dict[SeriesKey, Learning] = {}
        self.version = 0  # bumped on every change, so readers can cache what they derive
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

        await self._submit(work)
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

    async def declare(self, exports: Mapping[SeriesKey, DeclaredExport],
                      pinned: dict[str, set[str]]) -> None:
        """Note the declared exports: remember (durably) when each was first declared, admit
        their label values outside the cap so their webhooks never fold into ``other``, and
        learn with their knobs and declared intervals."""
        self.labels.pinned = pinned
        declared = self.declared = dict(exports)
        self.learning = {k: Learning.of(e.learn) for k, e in declared.items() if e.learn}
        for key in declared:
            # Present from start-up, so a declared export that never reports is visible.
            self._series(key)
        for key, series in list(self.series.items()):
            if key not in declared and series.never_seen:
                del self.series[key]  # no longer declared and never stored: forget it
            elif self._learn(key, series):
                series.rev += 1
        self.version += 1

        def work() -> Changes:
            # Decided on the current model, so another replica's first declaration stands.
            now = self.now()
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
                self._completed(run.series, run.started, t - run.started)
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
            changes, abandoned = self._expire_now(self.now())
            return changes

        await self._submit(work)
        if abandoned:
            log.warning("abandoned %d in-flight export(s) older than %.0f s",
                        abandoned, self.limits.in_flight_timeout)
        self._log_forgotten()
        return abandoned

    def now(self) -> float:
        """The time that expiry and declarations are decided on: the shared database's clock
        where there is one (read in the transaction the work runs in), so that a replica whose
        own clock is days ahead abandons no run and forgets no delivery early for all of
        them; else this process's clock. ``clock_skew`` exposes the difference."""
        database = self.store.freshness().database_time
        return self.clock() if database is None else database

    def clock_skew(self) -> float:
        """This process's clock minus the shared database's (0 where this process's clock is
        the database's, or before it was first read)."""
        database = self.store.freshness().database_time
        return 0.0 if database is None else self.clock() - database

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
        """Forget the oldest deliveries beyond ``max_remembered_deliveries`` (in age order)."""
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

    def _completed(self, key: SeriesKey, start: float, duration: float) -> None:
        """A run of ``key`` completed: its duration counted, kept in the history, learned."""
        series = self.series[key]
        series.observe_duration(duration)
        knobs = self.learning.get(key, DEFAULT_LEARNING)
        keep = min(MAX_HISTORY, max(knobs.usual_runs, knobs.schedule_min_intervals + 1))
        series.record_run(start, duration, keep)
        self._learn(key, series)

    def _learn(self, key: SeriesKey, series: Series) -> bool:
        """Set what ``series``' history teaches: its usual duration and expected interval.
        Returns whether either changed."""
        knobs = self.learning.get(key, DEFAULT_LEARNING)
        export = self.declared.get(key)
        usual = usual_duration(series.history, key[2], knobs)
        expected = expected_interval(key[3], export.declared_interval if export else None,
                                     series.history, knobs)
        changed = usual != series.usual or expected != series.expected
        series.usual, series.expected = usual, expected
        return changed

    def _series(self, key: SeriesKey) -> Series:
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = Series()
            self._learn(key, series)
        return series

    def _open(self, rkey: RunKey, run: Run, key: SeriesKey, started: float) -> None:
        run.series = key
        run.started = started
        self.in_flight[rkey] = run
        self._series(key).running[rkey] = started

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

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the in-memory model with ``snapshot``."""
        self.series = {
            (r.account, r.partner, r.export_type, r.frequency): Series.decode(r.data)
            for r in snapshot.series
        }
        self.runs = {}
        self.in_flight = {}
        for key, series in self.series.items():
            self._learn(key, series)
        for rr in snapshot.runs:
            self._put_run(rr)
        self.deliveries = snapshot.deliveries  # oldest first: the dict's order is their age order
        self.labels.restore(snapshot.label_values)
        self.last_received = None
        self.delivery_delay = {}
        self.declared_since = {}
        self._set_gauges(snapshot.gauges.items())
        for key in self.declared:
            self._series(key)
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
                if old is not None and old.history == new.history:
                    new.usual, new.expected = old.usual, old.expected  # most rows: no new run
                else:
                    self._learn(key, new)
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

    def revert(self, changes: Sequence[Changes], stored: Snapshot) -> None:
        """Undo ``changes``, which the store did not write (the database refused one of them):
        every row they wrote or deleted is set back to ``stored``'s, and forgotten where it
        has none (a series, run or label value they added)."""
        keys = Keys.of(changes)
        for rkey in keys.runs:  # first: a run in flight is in its series' ``running``
            self._drop_run(rkey)
        for key in set(keys.series).difference(r[:4] for r in stored.series):
            self.series.pop(key, None)
        for dkey in keys.deliveries:
            self.deliveries.pop(dkey, None)
        for label, value in set(keys.label_values).difference(stored.label_values):
            self.labels.admitted.get(label, set()).discard(value)
        for gauge in set(keys.gauges).difference(stored.gauges):
            self._unset_gauge(gauge)
        self.apply_remote([Changes(
            series=stored.series, runs=stored.runs, label_values=stored.label_values,
            deliveries=[DeliveryRow(*k, r) for k, r in stored.deliveries.items()],
            gauges=list(stored.gauges.items()))])
        for key in self.declared:
            self._series(key)

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

    def _unset_gauge(self, key: str) -> None:
        if key == "last_received":
            self.last_received = None
        elif key.startswith("delay:"):
            self.delivery_delay.pop(key.removeprefix("delay:"), None)
        elif key.startswith(DECLARED_PREFIX):
            parts = key.removeprefix(DECLARED_PREFIX).split(KEY_SEP)
            if len(parts) == 4:
                self.declared_since.pop((parts[0], parts[1], parts[2], parts[3]), None)

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


def _later(current: float | None, candidate: float) -> float:
    return candidate if current is None or candidate > current else current


def _run_row(rkey: RunKey, run: Run) -> RunRow:
    _, partner, export_type, frequency = run.series
    return RunRow(rkey[0], rkey[1], partner, export_type, frequency, run.started,
                  run.last_finished, run.updated)
