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
from typing import NamedTuple, Protocol
from urllib.parse import urlsplit


class StoreError(RuntimeError):
    """A change could not be made durable; the caller must not acknowledge it."""


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

    def __bool__(self) -> bool:
        """Whether there is anything to write."""
        return bool(self.series or self.runs or self.deleted_runs or self.deliveries
                    or self.deleted_deliveries or self.deliveries_received_before is not None
                    or self.label_values or self.gauges or self.checks or self.checked)


def combine(batch: Iterable[Changes]) -> Changes:
    """One change set with the effect of applying ``batch`` in order: a row written or deleted
    again later keeps only its last state, so a commit writes each row once (the gauges, the
    series and a run's Initiated and Completed recur within a batch).

    Deliveries are written with INSERT OR IGNORE, so the first write after a key's last
    deletion is the one that stands; the combined set deletes before it inserts. The expiry
    (``deliveries_received_before``) deletes by time, so where it falls matters: it is left
    out, for the store to apply change by change.
    """
    series: dict[tuple[str, str, str, str], SeriesRow] = {}
    runs: dict[tuple[str, str], RunRow | None] = {}
    deliveries: dict[tuple[str, str, str, float], DeliveryRow | None] = {}
    dropped: dict[tuple[str, str, str, float], None] = {}
    labels: dict[tuple[str, str], None] = {}
    gauges: dict[str, float] = {}
    checks: list[CheckRow] = []
    checked: list[CheckKey] = []
    # Plain loops, and the lists most changes leave empty skipped: this runs for every change.
    for c in batch:
        if c.label_values:
            labels.update(dict.fromkeys(c.label_values))
        for row in c.series:
            series[row[:4]] = row
        for run in c.runs:
            runs[run[:2]] = run
        if c.deleted_runs:
            runs.update(dict.fromkeys(c.deleted_runs))
        for delivery in c.deliveries:
            key = delivery[:4]
            if deliveries.get(key) is None:
                deliveries[key] = delivery
        if c.deleted_deliveries:
            deliveries.update(dict.fromkeys(c.deleted_deliveries))
            dropped.update(dict.fromkeys(c.deleted_deliveries))
        gauges.update(c.gauges)
        if c.checks or c.checked:  # a key is added once (its Completed), then checked once
            checks.extend(c.checks)
            checked.extend(c.checked)
    return Changes(
        series=list(series.values()),
        runs=[row for row in runs.values() if row is not None],
        deleted_runs=[key for key, row in runs.items() if row is None],
        deliveries=[row for row in deliveries.values() if row is not None],
        deleted_deliveries=list(dropped),
        label_values=list(labels),
        gauges=list(gauges.items()),
        checks=checks,
        checked=checked,
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


class Follower(Protocol):
    """The owner of the in-memory model, as a store shared with other writers sees it."""

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the whole model with ``snapshot``."""

    def apply_remote(self, changes: Sequence[Changes]) -> None:
        """Apply changes other writers committed, in commit order."""


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
