"""An export's usual duration, learned from its history of completed runs.

Robust rather than mean-based, so one run that took a day or no time at all moves it little:
the median of the last ``usual_runs`` durations and a high quantile of the median plus
``usual_mad_factor`` median absolute deviations (scaled to a standard deviation), never less
than a margin above the median. None when the history is too short to tell, or when the runs
take no measurable time (event times to the minute make short runs 0 s): such an estimate
would page on noise.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from exporter.domain.model import Completed
from exporter.domain.thresholds import Learning

#: MAD x this estimates the standard deviation of normally distributed durations.
MAD_TO_SIGMA: Final = 1.4826
PROFILES: Final = "profiles"


@dataclass(frozen=True, slots=True)
class Usual:
    """The usual duration of an export's runs, in seconds, and how many runs it rests on."""

    median: float
    high: float
    runs: int


def usual_duration(history: Sequence[Completed], export_type: str,
                   knobs: Learning) -> Usual | None:
    """The usual duration of ``history``'s runs, or None when there is too little to tell."""
    # The first run of a profile export is a full export of every profile, not a usual one.
    runs = [r for r in history if not (r.first and export_type == PROFILES)]
    durations = [r.duration for r in runs[-knobs.usual_runs:]]
    if len(durations) < knobs.usual_min_runs:
        return None
    median = statistics.median(durations)
    if median < knobs.usual_min_median_seconds:
        return None
    mad = statistics.median(abs(d - median) for d in durations)
    margin = max(knobs.usual_mad_factor * MAD_TO_SIGMA * mad, knobs.usual_min_margin_seconds,
                 knobs.usual_min_margin_fraction * median)
    return Usual(median, median + margin, len(durations))


@dataclass(frozen=True, slots=True)
class UsualSize:
    """The usual bytes an export's runs land, and how many checked runs it rests on."""

    median: float
    runs: int


def usual_landed(history: Sequence[Completed], export_type: str, knobs: Learning,
                 without: float | None = None) -> UsualSize | None:
    """The median landed bytes of ``history``'s checked runs (leaving out the run that started
    at ``without``), or None under the usual duration's minimum history, or when they landed
    nothing: there is then no size to fall short of (the empty alert speaks for them)."""
    sizes = [r.landed_bytes for r in history
             if r.landed_bytes is not None and r.start != without
             and not (r.first and export_type == PROFILES)][-knobs.usual_runs:]
    if len(sizes) < knobs.usual_min_runs:
        return None
    median = statistics.median(sizes)
    return UsualSize(median, len(sizes)) if median > 0 else None
