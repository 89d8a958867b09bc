"""The one place where every alert threshold lives: read by the monitoring bundle's generator
(``python -m bundle`` writes prometheus/rules.yml, prometheus/alerts.yml and the Grafana
dashboard from it) and by the status page, so the page and the alerts always agree.

``tests/bundle/test_static.py`` fails when the checked-in generated files differ from what the
generator produces. Durations are in seconds. Per-export values that the exporter exposes for
declared exports (``clevertap_export_grace_seconds``, ``clevertap_export_max_runtime_seconds``)
take precedence over these defaults; see docs/bundle.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Final

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR

THRESHOLDS: dict[str, float] = {
    # A recurring export is overdue when its last completion is older than
    # expected_interval * overdue_tolerance + grace.
    "overdue_tolerance": 1.5,
    "overdue_grace_seconds": 30 * MINUTE,
    # An in-flight export is stuck when it has run longer than
    # expected_interval * stuck_interval_factor (recurring exports) ...
    "stuck_interval_factor": 1.0,
    # ... or longer than this fixed bound (one-time exports).
    "stuck_one_time_seconds": 6 * HOUR,
    # A Failed status keeps its alert firing until a later completion, at most this long.
    "failed_alert_window_seconds": 1 * DAY,
    # Window in which an abandoned export, a rejected webhook, a label overflow or an
    # unparsed event time raises its alert.
    "abandoned_window_seconds": 1 * HOUR,
    "rejected_window_seconds": 30 * MINUTE,
    "rejected_max_count": 0,
    "overflow_window_seconds": 1 * HOUR,
    "unparsed_window_seconds": 1 * HOUR,
    # No webhook at all for longer than the longest known schedule plus this margin.
    "webhooks_missing_margin_seconds": 2 * HOUR,
    # |receipt time - event time| above this points at a wrong --timezone.
    "delivery_delay_max_seconds": 30 * MINUTE,
    # How long the exporter may be down / missing from the targets before alerting.
    "exporter_down_for_seconds": 5 * MINUTE,
    "exporter_absent_for_seconds": 10 * MINUTE,
    # A run that completed faster than its declared min_runtime keeps TooFast firing until a
    # run of normal length completes, or at most this long after the fast completion.
    "too_fast_window_seconds": 1 * DAY,
    # How long a failed reload of the --config.file may last before alerting.
    "config_reload_failed_for_seconds": 5 * MINUTE,
    # A replica that has not held every committed change of the shared state for this long.
    "replica_behind_seconds": 2 * MINUTE,
    # Usual duration (exporter/domain/usual.py), from the last ``usual_runs`` completed runs,
    # none under ``usual_min_runs`` of them: the median, and a high quantile of median +
    # usual_mad_factor x MAD (scaled to a standard deviation), at least a margin of the larger
    # of usual_min_margin_seconds and usual_min_margin_fraction x median. A median under
    # usual_min_median_seconds (runs of no measurable length) gives no estimate.
    "usual_runs": 20,
    "usual_min_runs": 5,
    "usual_mad_factor": 3.0,
    "usual_min_margin_seconds": 5 * MINUTE,
    "usual_min_margin_fraction": 0.25,
    "usual_min_median_seconds": 1 * MINUTE,
    # Alerts on the usual duration: a run in flight, or the last completed run, longer than
    # usual_slow_factor x the high quantile; the last run shorter than usual_fast_fraction x
    # the median. A last-run alert lasts until the next completion, at most the window.
    "usual_slow_factor": 2.0,
    "usual_fast_fraction": 0.1,
    "usual_alert_window_seconds": 1 * DAY,
    # Learned schedule (exporter/domain/schedule.py), for an export whose Frequency gives none:
    # starts closer than schedule_burst_seconds are one run (re-runs, redeliveries); accepted
    # after schedule_min_intervals intervals whose MAD is at most schedule_max_spread of their
    # median, each gap 1, 2 or 3 intervals (missed runs) within that spread; rounded to a
    # CleverTap schedule within schedule_round_fraction of it; never under
    # schedule_min_interval_seconds without a declared interval.
    "schedule_burst_seconds": 1 * HOUR,
    "schedule_min_intervals": 4,
    "schedule_max_spread": 0.1,
    "schedule_round_fraction": 0.1,
    "schedule_min_interval_seconds": 4 * HOUR,
    # Landing checks (exporter/landing, docs/landing.md): a run whose listing found fewer
    # bytes than landing_small_fraction x the median of the export's last checked runs (the
    # usual duration's usual_runs and usual_min_runs) is smaller_than_usual. Checks that could
    # not list the destination landing_failing_checks times in a row (each after its retries)
    # alert.
    "landing_small_fraction": 0.1,
    "landing_failing_checks": 2,
    # The landing alerts of a run last until the next check, at most this long.
    "landing_alert_window_seconds": 1 * DAY,
}

#: The schedules CleverTap offers (seconds): a learned interval close to one is rounded to it.
CLEVERTAP_SCHEDULES: Final = (4 * HOUR, 8 * HOUR, 12 * HOUR, 24 * HOUR)


@dataclass(frozen=True, slots=True)
class Learning:
    """The knobs of what the exporter learns from an export's history, with THRESHOLDS'
    defaults; an export's ``learn:`` entries in --config.file override them (``of``)."""

    usual_runs: int
    usual_min_runs: int
    usual_mad_factor: float
    usual_min_margin_seconds: float
    usual_min_margin_fraction: float
    usual_min_median_seconds: float
    usual_slow_factor: float
    usual_fast_fraction: float
    schedule_burst_seconds: float
    schedule_min_intervals: int
    schedule_max_spread: float
    schedule_round_fraction: float
    schedule_min_interval_seconds: float
    landing_small_fraction: float

    @classmethod
    def of(cls, overrides: Mapping[str, float] = {}) -> Learning:
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = overrides.get(f.name, THRESHOLDS[f.name])
            values[f.name] = int(value) if f.name in WHOLE_KNOBS else float(value)
        return cls(**values)


#: The knobs an export may override, the whole-number ones, and those below 1.
LEARNING_KNOBS: Final = tuple(f.name for f in fields(Learning))
WHOLE_KNOBS: Final = frozenset({"usual_runs", "usual_min_runs", "schedule_min_intervals"})
FRACTION_KNOBS: Final = frozenset({"usual_min_margin_fraction", "usual_fast_fraction",
                                   "schedule_max_spread", "schedule_round_fraction",
                                   "landing_small_fraction"})
#: The longest history kept per series, whatever an export's ``usual_runs`` asks.
MAX_HISTORY: Final = 100
DEFAULT_LEARNING: Final = Learning.of()
