"""The export model's data: one ``Series`` per export series, one ``Run`` per export request."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, NamedTuple

import orjson

from exporter.domain.keys import SeriesKey

if TYPE_CHECKING:
    from exporter.domain.schedule import Expected
    from exporter.domain.usual import Usual, UsualSize

#: Upper bounds (seconds) of the duration histogram: 1 min to 48 h.
DURATION_BUCKETS: Final[tuple[float, ...]] = (
    60, 300, 600, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 172800,
)


class Completed(NamedTuple):
    """One completed run of a series' history: what its usual duration and schedule rest on."""

    start: float  # event time of its Initiated
    duration: float
    #: Bytes the run landed in the bucket: filled by the landing check, None until then.
    landed_bytes: int | None = None
    #: The series' first completed run (for a profile export CleverTap makes it a full one).
    first: bool = False


class Landed(NamedTuple):
    """The last landing check of a series: which run, when, what it found, how it ended."""

    request_id: str
    started: float  # the run's start (event time of its Initiated)
    checked: float  # when the check's last listing ended
    outcome: str  # an ``exporter.domain.landing.Outcome`` value
    objects: int
    bytes: int
    truncated: bool
    prefix: str


@dataclass(slots=True)
class Series:
    """What is known of one (account, partner, export_type, frequency) combination."""

    last_initiated: float | None = None
    last_completed: float | None = None
    last_failed: float | None = None
    last_duration: float | None = None
    abandoned: int = 0
    status_counts: dict[str, int] = field(default_factory=dict)
    # Non-cumulative counts per bucket of DURATION_BUCKETS, the last one for +Inf.
    duration_buckets: list[int] = field(default_factory=lambda: [0] * (len(DURATION_BUCKETS) + 1))
    duration_sum: float = 0.0
    #: The last completed runs, oldest start first: changed only through ``record_run``, which
    #: keeps their number and their encoding (``history_json``, written with every event).
    history: list[Completed] = field(default_factory=list)
    history_json: bytes = b"[]"
    #: The last landing check, and how many checks in a row could not list the destination.
    landing: Landed | None = None
    failed_checks: int = 0
    # Derived, not stored: start times of this series' in-flight runs, what the history
    # teaches (set by the tracker), and a revision that changes whenever anything above does,
    # so the metrics view re-renders only what changed.
    running: dict[tuple[str, str], float] = field(default_factory=dict)
    usual: Usual | None = None
    expected: Expected | None = None
    usual_landed: UsualSize | None = None
    rev: int = 0

    def encode(self) -> bytes:
        return orjson.dumps(
            [self.last_initiated, self.last_completed, self.last_failed, self.last_duration,
             self.abandoned, self.status_counts, self.duration_buckets, self.duration_sum,
             orjson.Fragment(self.history_json),
             None if self.landing is None else tuple(self.landing), self.failed_checks]
        )

    @classmethod
    def decode(cls, data: bytes) -> Series:
        fields = orjson.loads(data)
        # An encoding written before the history had eight fields: it loads with none.
        li, lc, lf, ld, ab, counts, buckets, dsum = fields[:8]
        history = [Completed(*run) for run in fields[8]] if len(fields) > 8 else []
        # And one written before the landing checks, with none.
        landing = Landed(*fields[9]) if len(fields) > 9 and fields[9] is not None else None
        failed = fields[10] if len(fields) > 10 else 0
        return cls(li, lc, lf, ld, ab, counts, buckets, dsum, history, _encode(history),
                   landing, failed)

    @property
    def never_seen(self) -> bool:
        """No event ever reached this series (a declared export that never reported)."""
        return not self.status_counts and not self.running and self.abandoned == 0

    def observe_duration(self, seconds: float) -> None:
        i = 0
        while i < len(DURATION_BUCKETS) and seconds > DURATION_BUCKETS[i]:
            i += 1
        self.duration_buckets[i] += 1
        self.duration_sum += seconds
        self.last_duration = seconds

    def record_run(self, start: float, duration: float, keep: int) -> None:
        """Add a completed run to the history in start order (a late completion of an older
        run goes where it belongs), keeping the ``keep`` latest starts."""
        first = not self.history and sum(self.duration_buckets) <= 1
        bisect.insort(self.history, Completed(start, duration, None, first), key=_start)
        del self.history[:-keep]
        self.history_json = _encode(self.history)

    def record_landed(self, start: float, landed_bytes: int) -> bool:
        """Fill the landed-bytes slot of the run that started at ``start``; False when the
        history no longer holds it."""
        for i, run in enumerate(self.history):
            if run.start == start:
                self.history[i] = run._replace(landed_bytes=landed_bytes)
                self.history_json = _encode(self.history)
                return True
        return False


@dataclass(slots=True)
class Run:
    """One export request: ``started`` is the event time of its in-flight run, None when idle."""

    series: SeriesKey
    started: float | None
    last_finished: float | None
    updated: float


def _start(run: Completed) -> float:
    return run.start


def _encode(history: list[Completed]) -> bytes:
    return orjson.dumps([tuple(run) for run in history])  # orjson writes tuples, not named ones
