"""What every state backend offers the domain: rows, a change set, a snapshot, and ``Store``.

A backend knows tables and rows, not exports: the domain (``exporter.domain.tracker``) decides
what changes and hands the backend a ``Work`` that returns one ``Changes`` to make durable. A
backend shared by several processes (``postgres``) runs each work only once the model is current
with every other writer's committed changes, which it hands to the ``Follower`` first. A new
backend is a module beside ``sqlite`` that implements ``Store``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, NamedTuple, Protocol
from urllib.parse import urlsplit


class StoreError(RuntimeError):
    """A change could not be made durable; the caller must not acknowledge it."""


class Refused(StoreError):
    """The database refused this change alone (a value it cannot hold): the other changes of
    its batch are stored, the model holds none of it, and a retry would be refused again."""


class SeriesRow(NamedTuple):
    account: str
    partner: str
    export_type: str
    frequency: str
    data: bytes  # the series' own encoding, opaque to the store


class RunRow(NamedTuple):
    account: str
    export_id: str
    partner: str
    export_type: str
    frequency: str
    started: float | None
    last_finished: float | None
    updated: float


class CheckRow(NamedTuple):
    """A landing check to make: the run (account, Export Request Id, start) whose Completed
    was accepted, its series, and when that Completed arrived (the settle time counts from it)."""

    account: str
    export_id: str
    started: float
    partner: str
    export_type: str
    frequency: str
    completed: float


CheckKey = tuple[str, str, float]  # account, export id, started


class DeliveryRow(NamedTuple):
    account: str
    export_id: str
    status: str
    event_time: float
    received: float


@dataclass(slots=True)
class Changes:
    """Everything one caller wants written atomically."""

    series: list[SeriesRow] = field(default_factory=list)
    runs: list[RunRow] = field(default_factory=list)
    deleted_runs: list[tuple[str, str]] = field(default_factory=list)
    deliveries: list[DeliveryRow] = field(default_factory=list)
    deleted_deliveries: list[tuple[str, str, str, float]] = field(default_factory=list)
    deliveries_received_before: float | None = None
    label_values: list[tuple[str, str]] = field(default_factory=list)
    gauges: list[tuple[str, float]] = field(default_factory=list)
    #: Landing checks to make, and those made (their result is in the series): written with
    #: the Completed and with the result, so a check is neither lost nor made twice.
    checks: list[CheckRow] = field(default_factory=list)
    checked: list[CheckKey] = field(default_factory=list)
    #: Series rows and gauges removed for good (``ExportTracker.forget``, by hand and rare).
    deleted_series: list[tuple[str, str, str, str]] = field(default_factory=list)
    deleted_gauges: list[tuple[str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        """Whether there is anything to write."""
        return bool(self.series or self.runs or self.deleted_runs or self.deliveries
                    or self.deleted_deliveries or self.deliveries_received_before is not None
                    or self.label_values or self.gauges or self.checks or self.checked
                    or self.forgets)

    @property
    def forgets(self) -> bool:
        """Whether this change deletes series rows or gauges."""
        return bool(self.deleted_series or self.deleted_gauges)


#: The order a backend applies one change set of ``net`` in, then its expiry: no run is both
#: written and deleted in it, a delivery deleted and written again is deleted first, a check
#: added and made in one set is gone, and a forget (its set's last change) deletes last.
WRITE_ORDER: Final = ("label_values", "series", "runs", "deleted_runs", "deleted_deliveries",
                      "deliveries", "gauges", "checks", "checked", "deleted_series",
                      "deleted_gauges")


def net(batch: Iterable[Changes]) -> list[Changes]:
    """The effect of applying ``batch`` in order, as the fewest change sets: a commit writes
    each row once (the gauges, the series and a run's Initiated and Completed recur within a
    batch). Both stores apply each set in ``WRITE_ORDER``, then delete the deliveries received
    before its ``deliveries_received_before``, with one rule for a delivery: it is written only
    where its key is not stored, so the first receipt stands, within a batch as across them.

    An expiry deletes by time and a forget deletes series and gauges, so where they fall
    matters: a set ends with each change that expires (at most one every EXPIRE_EVERY_SECONDS)
    or forgets (by hand), and the changes after it start the next.
    """
    steps: list[Changes] = []
    step = _Step()
    for c in batch:
        step.add(c)
        if c.deliveries_received_before is not None or c.forgets:
            steps.append(step.changes(c.deliveries_received_before, c))
            step = _Step()
    if step.touched or not steps:
        steps.append(step.changes(None))
    return steps


class _Step:
    """The last state of each row that changes in turn wrote or deleted."""

    __slots__ = ("checked", "checks", "deliveries", "dropped", "gauges", "labels", "runs",
                 "series", "touched")

    def __init__(self) -> None:
        self.series: dict[tuple[str, str, str, str], SeriesRow] = {}
        self.runs: dict[tuple[str, str], RunRow | None] = {}
        self.deliveries: dict[tuple[str, str, str, float], DeliveryRow | None] = {}
        self.dropped: dict[tuple[str, str, str, float], None] = {}
        self.labels: dict[tuple[str, str], None] = {}
        self.gauges: dict[str, float] = {}
        self.checks: list[CheckRow] = []
        self.checked: list[CheckKey] = []
        self.touched = False

    def add(self, c: Changes) -> None:
        # Plain loops, and the lists most changes leave empty skipped: this runs for every
        # change.
        self.touched = True
        if c.label_values:
            self.labels.update(dict.fromkeys(c.label_values))
        for row in c.series:
            self.series[row[:4]] = row
        for run in c.runs:
            self.runs[run[:2]] = run
        if c.deleted_runs:
            self.runs.update(dict.fromkeys(c.deleted_runs))
        deliveries = self.deliveries
        for delivery in c.deliveries:
            key = delivery[:4]
            if deliveries.get(key) is None:
                deliveries[key] = delivery
        if c.deleted_deliveries:
            deliveries.update(dict.fromkeys(c.deleted_deliveries))
            self.dropped.update(dict.fromkeys(c.deleted_deliveries))
        self.gauges.update(c.gauges)
        if c.checks or c.checked:  # a key is added once (its Completed), then checked once
            self.checks.extend(c.checks)
            self.checked.extend(c.checked)

    def changes(self, expiry: float | None, last: Changes | None = None) -> Changes:
        return Changes(
            series=list(self.series.values()),
            runs=[row for row in self.runs.values() if row is not None],
            deleted_runs=[key for key, row in self.runs.items() if row is None],
            deliveries=[row for row in self.deliveries.values() if row is not None],
            deleted_deliveries=list(self.dropped),
            deliveries_received_before=expiry,
            label_values=list(self.labels),
            gauges=list(self.gauges.items()),
            checks=self.checks,
            checked=self.checked,
            deleted_series=last.deleted_series if last else [],
            deleted_gauges=last.deleted_gauges if last else [],
        )


class Keys(NamedTuple):
    """The keys of every row some changes write or delete, and their latest expiry."""

    series: list[tuple[str, str, str, str]]
    runs: list[tuple[str, str]]
    deliveries: list[tuple[str, str, str, float]]
    received_before: float  # -inf without an expiry
    label_values: list[tuple[str, str]]
    gauges: list[str]

    @classmethod
    def of(cls, batch: Sequence[Changes]) -> Keys:
        return cls(
            series=sorted({r[:4] for c in batch for r in c.series}.union(
                *(c.deleted_series for c in batch))),
            runs=sorted({r[:2] for c in batch for r in c.runs}.union(
                *(c.deleted_runs for c in batch))),
            deliveries=sorted({d[:4] for c in batch for d in c.deliveries}.union(
                *(c.deleted_deliveries for c in batch))),
            received_before=max((c.deliveries_received_before for c in batch
                                 if c.deliveries_received_before is not None),
                                default=float("-inf")),
            label_values=sorted({v for c in batch for v in c.label_values}),
            gauges=sorted({k for c in batch for k, _ in c.gauges}.union(
                k for c in batch for (k,) in c.deleted_gauges)),
        )


#: Called by the store when the model is current: changes the model and returns what to write.
Work = Callable[[], Changes]


@dataclass(slots=True)
class Snapshot:
    """The whole stored state, as read at start-up or after a failed write."""

    series: list[SeriesRow]
    runs: list[RunRow]
    #: (account, export_id, status, event_time) -> received: the shape the owner keeps in memory,
    #: built straight from the cursor since there can be hundreds of thousands; oldest first.
    deliveries: dict[tuple[str, str, str, float], float]
    label_values: list[tuple[str, str]]
    gauges: dict[str, float]


class Freshness(NamedTuple):
    """How current a store's view of the shared state is, for the metrics."""

    #: The last committed change set the model holds (PostgreSQL: the log's ``seq``; SQLite:
    #: batches committed since the store opened): the replica with the highest is the freshest.
    sequence: int
    #: Change sets other writers committed that the model does not hold yet, as last heard.
    behind_changes: int
    #: Seconds since the model last held every committed change; 0 while it does.
    behind_seconds: float
    #: The database's clock now (Unix seconds), or None where the process's clock is the
    #: database's (SQLite).
    database_time: float | None


class Follower(Protocol):
    """The owner of the in-memory model, as a store shared with other writers sees it."""

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the whole model with ``snapshot``."""

    def apply_remote(self, changes: Sequence[Changes]) -> None:
        """Apply changes other writers committed, in commit order."""

    def revert(self, changes: Sequence[Changes], stored: Snapshot) -> None:
        """Undo ``changes``, which were not written: every row they wrote or deleted is set
        back to ``stored``, the rows the database holds for those keys."""


class Store(Protocol):
    """A durable home for the export model; ``open_store`` opens and closes it."""

    #: Failed commits so far: the owner reloads its model (``load``) and calls ``resume`` once
    #: per failure. A store that restores its follower itself keeps this at 0.
    failures: int

    @property
    def healthy(self) -> bool:
        """Whether a change submitted now would be stored."""

    def load(self) -> Snapshot:
        """The whole state, as committed."""

    def follow(self, follower: Follower) -> None:
        """Keep ``follower`` current with what other writers commit from now on."""

    async def submit(self, work: Work) -> None:
        """Run ``work`` on a model current with every committed change and make its result
        durable; returns once it is, raises ``StoreError`` if not (the result is then unknown
        to the store and the model must be reloaded)."""

    def resume(self) -> None:
        """Accept changes again after a failure, once the owner has reloaded its model."""

    def check(self) -> bool:
        """A cheap read that proves the store is usable."""

    def size_bytes(self) -> int:
        """Bytes the state takes in the backend."""

    def freshness(self) -> Freshness:
        """How current the model is with the shared state, and the database's clock."""

    async def claim_checks(self, owner: str, completed_before: float, now: float,
                           lease: float, limit: int) -> list[CheckRow]:
        """Up to ``limit`` landing checks whose Completed arrived before ``completed_before``,
        claimed for ``owner`` until ``now + lease``: no other caller (or replica) gets them
        meanwhile. A check stays claimable until a change marks it ``checked``."""

    async def release_checks(self, owner: str) -> None:
        """Give up ``owner``'s claims (it is stopping): another replica, or the next start,
        takes them at once instead of when their lease ends."""


def settle(futures: Iterable[asyncio.Future[None]], error: StoreError | None) -> None:
    """Answer the callers of a batch: all committed, or all failed with ``error``."""
    for fut in futures:
        if fut.done():  # the caller went away; its change is written all the same
            continue
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)


def describe(url: str) -> str:
    """The URL without its password, for logs and errors."""
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{user}{host}{port}{parts.path}"
