"""An export's expected interval between runs, and where it comes from.

A declared ``interval`` always wins; then CleverTap's Frequency (``4h``, ``24h``...); an
export whose Frequency gives none (missing, unknown, ``One Time`` yet recurring, or declared
``frequency: auto``) gets the interval its history shows, when the history shows one clearly:

- starts closer together than ``schedule_burst_seconds`` are one run (manual re-runs,
  redeliveries of a new id), so a burst seconds apart teaches nothing;
- the gaps between the remaining starts are measured against their median: a gap of 2 or 3
  times it is missed runs, not a new interval; a gap of any other length (a clock jump, a
  changed schedule) means there is no schedule to learn while it is in the history;
- at least ``schedule_min_intervals`` single intervals, whose median absolute deviation is at
  most ``schedule_max_spread`` of their median;
- the median of the intervals, rounded to a CleverTap schedule within
  ``schedule_round_fraction`` of it, and never shorter than ``schedule_min_interval_seconds``.

The history is in start order, so out-of-order deliveries change nothing.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from exporter.domain import normalize
from exporter.domain.model import Completed
from exporter.domain.thresholds import CLEVERTAP_SCHEDULES, Learning
from exporter.domain.timefmt import human_duration

CLEVERTAP: Final = "clevertap"
DECLARED: Final = "declared"
LEARNED: Final = "learned"
#: The values of the ``source`` label of ``clevertap_export_expected_interval_seconds``.
SOURCES: Final = (CLEVERTAP, DECLARED, LEARNED)
#: Gaps of this many intervals count as missed runs.
_MISSED: Final = (2, 3)


@dataclass(frozen=True, slots=True)
class Expected:
    """How often an export is expected to run, and why: ``runs`` is how many intervals a
    learned value rests on (0 otherwise)."""

    seconds: float
    source: str
    runs: int = 0

    def describe(self) -> str:
        """``learned, every 6h (from 7 runs)``, ``clevertap, every 4h``: for the status page."""
        text = f"{self.source}, every {human_duration(self.seconds)}"
        return f"{text} (from {self.runs} runs)" if self.source == LEARNED else text


def expected_interval(frequency: str, declared: float | None, history: Sequence[Completed],
                      knobs: Learning) -> Expected | None:
    """The expected interval of an export, or None when nothing tells it."""
    if declared is not None:
        return Expected(declared, DECLARED)
    interval = normalize.interval_seconds(frequency)
    if interval is not None:
        return Expected(interval, CLEVERTAP)
    return learned_interval([r.start for r in history], knobs)


def learned_interval(starts: Sequence[float], knobs: Learning) -> Expected | None:
    """The interval that ``starts`` (in order) keep, or None when they keep none clearly."""
    kept: list[float] = []
    for start in starts:
        if not kept or start - kept[-1] >= knobs.schedule_burst_seconds:
            kept.append(start)
    singles = _single_intervals([b - a for a, b in itertools.pairwise(kept)], knobs)
    if singles is None or len(singles) < knobs.schedule_min_intervals:
        return None
    interval = statistics.median(singles)
    spread = statistics.median(abs(g - interval) for g in singles)
    if spread > knobs.schedule_max_spread * interval:
        return None
    for schedule in CLEVERTAP_SCHEDULES:
        if abs(interval - schedule) <= knobs.schedule_round_fraction * schedule:
            interval = float(schedule)
            break
    if interval < knobs.schedule_min_interval_seconds:
        return None
    return Expected(interval, LEARNED, len(singles))


def _single_intervals(gaps: list[float], knobs: Learning) -> list[float] | None:
    """The gaps of one interval, the missed runs left out; None when a gap is neither one
    interval nor 2 or 3 of them (within the spread), or there are too few to tell."""
    if len(gaps) < knobs.schedule_min_intervals:
        return None
    base = statistics.median(gaps)
    singles: list[float] = []
    for gap in gaps:
        n = round(gap / base)
        off = abs(gap - n * base) > knobs.schedule_max_spread * base
        if (n != 1 and n not in _MISSED) or off:
            return None
        if n == 1:
            singles.append(gap)
    return singles
