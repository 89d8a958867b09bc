"""What every state backend offers the domain: rows, a change set, a snapshot, and ``Store``.

A backend knows tables and rows, not exports: the domain (``exporter.domain.tracker``) decides
what changes and hands the backend one ``Changes`` per event to make durable. A new backend is a
module beside ``sqlite`` that implements ``Store``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Protocol


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


class Store(Protocol):
    """A durable home for the export model."""

    #: Failed commits so far: the owner reloads its model once per failure.
    failures: int

    @property
    def healthy(self) -> bool:
        """Whether a change submitted now would be stored."""

    def load(self) -> Snapshot:
        """Read the whole state, as committed."""

    async def commit(self, changes: Changes) -> None:
        """Make ``changes`` durable; returns once they are, raises ``StoreError`` if not."""

    def resume(self) -> None:
        """Accept changes again after a failure, once the owner has reloaded its model."""

    def check(self) -> bool:
        """A cheap read that proves the store is usable."""

    def size_bytes(self) -> int:
        """Bytes the state takes in the backend."""

    def close(self) -> None:
        """Commit what is queued and release the backend."""
