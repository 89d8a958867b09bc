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
from exporter.domain.landing import LISTED, LandingResult, Outcome
from exporter.domain.limits import Limits
from exporter.domain.model import Landed, Run, Series
from exporter.domain.payload import StatusEvent
from exporter.domain.schedule import expected_interval
from exporter.domain.thresholds import DEFAULT_LEARNING, MAX_HISTORY, Learning
from exporter.domain.usual import usual_duration, usual_landed
from exporter.store.base import (
    Changes,
    CheckRow,
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
        #: Landing checks recorded since start-up, by series and outcome (this replica's and,
        #: as their rows arrive, the others'): every replica counts each check once.
        self.landing_checks: dict[tuple[SeriesKey, str], int] = {}
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
            started = run.started if run is not None else None
            run = self._finish_run(rkey, run, key, t, status, event.received, touched)
            if (status == normalize.STATUS_COMPLETED and started is not None
                    and run.started is None):
                self._queue_check(rkey, run.series, started, event.received, changes)

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

    def _queue_check(self, rkey: RunKey, key: SeriesKey, started: float, received: float,
                     changes: Changes) -> None:
        """A completed run of an export with a destination: its landing check, stored with
        the Completed, so that neither a crash nor a restart loses it."""
        export = self.declared.get(key)
        if export is not None and export.destination is not None:
            changes.checks.append(CheckRow(rkey[0], rkey[1], started, *key[1:], received))

    async def record_landing(self, check: CheckRow, result: LandingResult | None) -> str | None:
        """Store ``result`` as ``check``'s landing, with the run's landed bytes in its
        history, and the check as made; None drops the check (its export no longer has a
        destination). Returns the outcome recorded; raises ``StoreError``."""
        recorded: str | None = None

        def work() -> Changes:
            nonlocal recorded
            changes = Changes(checked=[check[:3]])
            key = (check.account, check.partner, check.export_type, check.frequency)
            series = self.series.get(key)
            if result is None or series is None:
                return changes
            knobs = self.learning.get(key, DEFAULT_LEARNING)
            outcome = result.outcome
            if outcome is Outcome.LANDED:
                usual = usual_landed(series.history, key[2], knobs, without=check.started)
                if usual is not None and result.bytes < knobs.landing_small_fraction * \
                        usual.median:
                    outcome = Outcome.SMALLER_THAN_USUAL
            if outcome in LISTED:
                series.record_landed(check.started, result.bytes)
                series.failed_checks = 0
            else:
                series.failed_checks += 1
            series.landing = Landed(check.export_id, check.started, result.finished,
                                    outcome.value, result.objects, result.bytes,
                                    result.truncated, result.prefix)
            self._count_check(key, outcome.value)
            self._learn(key, series)
            self._persist_series({key}, changes)
            recorded = outcome.value
            return changes

        await self._submit(work)
        return recorded

    def _count_check(self, key: SeriesKey, outcome: str) -> None:
        self.landing_checks[(key, outcome)] = self.landing_checks.get((key, outcome), 0) + 1

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

    async def forget(self, account: str, series: SeriesKey | None = None) -> list[SeriesKey]:
        """Forget ``series``, or every series of ``account``, for good: their rows, runs,
        remembered deliveries and gauges, in the store (so a restart and every replica forget
        them too) and in the metrics. Returns the series forgotten, none when none matched.

        Raises ``DeclaredError`` for a declared export (the configuration would bring it back):
        it is removed from ``--config.file`` first.
        """
        def matches(key: SeriesKey) -> bool:
            return key[0] == account and (series is None or key == series)

        # This replica's declarations, as each replica refuses its own.
        declared = [k for k in self.declared if matches(k)]
        if declared:
            raise DeclaredError(declared)
        forgotten: list[SeriesKey] = []

        def work() -> Changes:
            nonlocal forgotten
            forgotten = [k for k in self.series if matches(k) and k not in self.declared]
            return self._forget_now(account if series is None else None, forgotten)

        await self._submit(work)
        if forgotten:
            log.warning("forgot %d series of account %s by request: %s", len(forgotten),
                        account, ", ".join(KEY_SEP.join(k) for k in forgotten))
        return forgotten

    def _forget_now(self, account: str | None, keys: list[SeriesKey]) -> Changes:
        """Drop ``keys`` (and, with ``account``, the account's own gauges) from the model."""
        changes = Changes()
        if not keys:
            return changes
        gone = set(keys)
        runs = [k for k, r in self.runs.items() if r.series in gone]
        for rkey in runs:
            self._drop_run(rkey)
        ids = set(runs)
        deliveries = [k for k in self.deliveries
                      if k[0] == account or (k[0], k[1]) in ids]
        for dkey in deliveries:
            del self.deliveries[dkey]
        for key in keys:
            del self.series[key]
        changes.deleted_runs = runs
        changes.deleted_deliveries = deliveries
        changes.deleted_series = keys
        gauges = [DECLARED_PREFIX + KEY_SEP.join(k) for k in keys if k in self.declared_since]
        if account is not None and account in self.delivery_delay:
            gauges.append(f"delay:{account}")
        changes.deleted_gauges = [(g,) for g in gauges]
        self._drop_gauges(gauges)
        self.version += 1
        return changes

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
        landed = usual_landed(series.history, key[2], knobs)
        changed = (usual != series.usual or expected != series.expected
                   or landed != series.usual_landed)
        series.usual, series.expected, series.usual_landed = usual, expected, landed
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
            touched.update(self._apply_series(sr) for sr in c.series)
            for rr in c.runs:
                touched.update(self._drop_run((rr.account, rr.export_id)))
                touched.add(self._put_run(rr).series)
            for rkey in c.deleted_runs:
                touched.update(self._drop_run(rkey))
            self._apply_deliveries(c)
            self._set_gauges(c.gauges)
            if c.forgets:
                self._apply_forget(c, touched)
            for key in touched:
                self.series[key].rev += 1
        self.version += 1

    def _apply_series(self, sr: SeriesRow) -> SeriesKey:
        key = (sr.account, sr.partner, sr.export_type, sr.frequency)
        new = Series.decode(sr.data)
        old = self.series.get(key)
        if old is not None:
            new.running, new.rev = old.running, old.rev
        if old is not None and old.history == new.history:
            # Most rows: no new run.
            new.usual, new.expected = old.usual, old.expected
            new.usual_landed = old.usual_landed
        else:
            self._learn(key, new)
        if new.landing is not None and (old is None or old.landing != new.landing):
            self._count_check(key, new.landing.outcome)  # another replica's check
        self.series[key] = new
        return key

    def _apply_forget(self, c: Changes, touched: set[SeriesKey]) -> None:
        for key in c.deleted_series:
            self.series.pop(key, None)
            touched.discard(key)
        self._drop_gauges(k for (k,) in c.deleted_gauges)

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
            elif (key := _declared_key(k)) is not None:
                self.declared_since[key] = v

    def _drop_gauges(self, keys: Iterable[str]) -> None:
        """Forget what the gauges of ``keys`` (as ``_set_gauges`` reads them) told."""
        for k in keys:
            if k.startswith("delay:"):
                self.delivery_delay.pop(k.removeprefix("delay:"), None)
            elif (key := _declared_key(k)) is not None:
                self.declared_since.pop(key, None)


class DeclaredError(Exception):
    """A forget that names declared exports, which the configuration would bring back."""

    def __init__(self, keys: list[SeriesKey]) -> None:
        self.keys = keys
        names = ", ".join(KEY_SEP.join(k) for k in keys)
        super().__init__(f"declared in --config.file: {names}; remove it there and reload, "
                         "then forget it")


def _declared_key(gauge: str) -> SeriesKey | None:
    """The series of a declaration time's gauge key, None for another gauge."""
    if not gauge.startswith(DECLARED_PREFIX):
        return None
    parts = gauge.removeprefix(DECLARED_PREFIX).split(KEY_SEP)
    return (parts[0], parts[1], parts[2], parts[3]) if len(parts) == 4 else None


def _later(current: float | None, candidate: float) -> float:
    return candidate if current is None or candidate > current else current


def _run_row(rkey: RunKey, run: Run) -> RunRow:
    _, partner, export_type, frequency = run.series
    return RunRow(rkey[0], rkey[1], partner, export_type, frequency, run.started,
                  run.last_finished, run.updated)
