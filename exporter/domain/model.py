"""The export model's data: one ``Series`` per export series, one ``Run`` per export request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import orjson

from exporter.domain.keys import SeriesKey

#: Upper bounds (seconds) of the duration histogram: 1 min to 48 h.
DURATION_BUCKETS: Final[tuple[float, ...]] = (
    60, 300, 600, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 172800,
)


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
    # Derived, not stored: start times of this series' in-flight runs, and a revision that
    # changes whenever anything above does, so the metrics view re-renders only what changed.
    running: dict[tuple[str, str], float] = field(default_factory=dict)
    rev: int = 0

    def encode(self) -> bytes:
        return orjson.dumps(
            [self.last_initiated, self.last_completed, self.last_failed, self.last_duration,
             self.abandoned, self.status_counts, self.duration_buckets, self.duration_sum]
        )

    @classmethod
    def decode(cls, data: bytes) -> Series:
        li, lc, lf, ld, ab, counts, buckets, dsum = orjson.loads(data)
        return cls(li, lc, lf, ld, ab, counts, buckets, dsum, {})

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


@dataclass(slots=True)
class Run:
    """One export request: ``started`` is the event time of its in-flight run, None when idle."""

    series: SeriesKey
    started: float | None
    last_finished: float | None
    updated: float
