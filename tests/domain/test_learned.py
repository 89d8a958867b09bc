"""What the exporter learns from an export's history: its usual duration and, when CleverTap's
Frequency gives none, its schedule. Pure rules on the model, then on the tracker (no HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest

from exporter.domain.declared import EMPTY, parse_config
from exporter.domain.model import Completed, Series
from exporter.domain.payload import StatusEvent
from exporter.domain.schedule import (
    CLEVERTAP,
    DECLARED,
    LEARNED,
    Expected,
    expected_interval,
    learned_interval,
)
from exporter.domain.status import compute
from exporter.domain.thresholds import DEFAULT_LEARNING, HOUR, Learning
from exporter.domain.tracker import ExportTracker
from exporter.domain.usual import usual_duration
from exporter.store.sqlite import SQLiteStore
from tests.helpers import limits

T0 = 1_700_000_000.0
K = DEFAULT_LEARNING


def runs(durations: Sequence[float], every: float = 6 * HOUR,
         first: bool = True) -> list[Completed]:
    return [Completed(T0 + i * every, d, None, first and i == 0) for i, d in enumerate(durations)]


# ---------------------------------------------------------------- usual duration

def test_usual_duration_is_the_median_and_a_robust_high_quantile() -> None:
    usual = usual_duration(runs([600, 620, 580, 610, 590, 5000]), "events", K)
    assert usual is not None
    assert usual.median == 605 and usual.runs == 6
    # MAD 15 s x 1.4826 x 3 is under the margin: max(5 min, 25% of the median) = 300 s.
    assert usual.high == 905
    # One run of 5000 s moved neither: the mean would be 1333 s.


def test_a_wide_spread_widens_the_high_quantile() -> None:
    usual = usual_duration(runs([1000, 2000, 3000, 4000, 5000]), "events", K)
    assert usual is not None and usual.median == 3000
    assert usual.high == pytest.approx(3000 + 3 * 1.4826 * 1000)


def test_no_estimate_under_the_minimum_history() -> None:
    assert usual_duration(runs([600]), "events", K) is None  # a history of one run
    assert usual_duration(runs([600] * 4), "events", K) is None
    assert usual_duration(runs([600] * 5), "events", K) is not None
    assert usual_duration(runs([600] * 5), "events", Learning.of({"usual_min_runs": 6})) is None


def test_zero_durations_give_no_estimate() -> None:
    # Event times to the minute make a quick export 0 s: no usual value to page on.
    assert usual_duration(runs([0] * 20), "events", K) is None
    assert usual_duration(runs([0, 0, 0, 60, 0, 0]), "events", K) is None


def test_the_first_run_of_a_profile_export_is_left_out() -> None:
    history = runs([36000, 600, 600, 600, 600])  # the first: a full export of every profile
    assert usual_duration(history, "profiles", K) is None  # four runs left: too few
    longer = runs([36000, 600, 600, 600, 600, 600])
    usual = usual_duration(longer, "profiles", K)
    assert usual is not None and usual.runs == 5 and usual.median == 600
    events = usual_duration(longer, "events", K)
    assert events is not None and events.runs == 6  # an events export keeps its first run


def test_only_the_last_n_runs_count() -> None:
    usual = usual_duration(runs([10000] * 10 + [600] * 20), "events", K)
    assert usual is not None and usual.median == 600 and usual.runs == 20


# ---------------------------------------------------------------- learned schedule

def starts(*gaps: float, first: float = T0) -> list[float]:
    out = [first]
    for g in gaps:
        out.append(out[-1] + g)
    return out


def test_a_steady_schedule_is_learned_after_four_intervals() -> None:
    assert learned_interval(starts(6 * HOUR, 6 * HOUR, 6 * HOUR), K) is None
    got = learned_interval(starts(6 * HOUR, 6 * HOUR + 120, 6 * HOUR - 60, 6 * HOUR), K)
    assert got == Expected(6 * HOUR, LEARNED, 4)


def test_a_close_interval_is_rounded_to_a_clevertap_schedule() -> None:
    got = learned_interval(starts(*[4 * HOUR + 600] * 5), K)
    assert got is not None and got.seconds == 4 * HOUR
    got = learned_interval(starts(*[23 * HOUR] * 5), K)
    assert got is not None and got.seconds == 24 * HOUR


def test_missed_runs_are_not_a_new_interval() -> None:
    got = learned_interval(starts(8 * HOUR, 16 * HOUR, 8 * HOUR, 24 * HOUR, 8 * HOUR, 8 * HOUR), K)
    assert got == Expected(8 * HOUR, LEARNED, 4)
    # Two single intervals among missed runs are too few to rest on.
    assert learned_interval(starts(8 * HOUR, 16 * HOUR, 24 * HOUR, 8 * HOUR), K) is None


def test_an_interval_below_four_hours_is_not_learned() -> None:
    assert learned_interval(starts(*[2 * HOUR] * 10), K) is None


def test_bursts_seconds_apart_teach_no_schedule() -> None:
    # Manual re-runs and redeliveries of new ids, seconds apart: one run.
    assert learned_interval(starts(*[5.0] * 30), K) is None
    # A burst inside a steady schedule leaves the schedule as it is.
    got = learned_interval(starts(6 * HOUR, 6 * HOUR, 10, 20, 6 * HOUR - 30, 6 * HOUR,
                                  6 * HOUR), K)
    assert got == Expected(6 * HOUR, LEARNED, 5)


def test_a_wide_spread_teaches_no_schedule() -> None:
    assert learned_interval(starts(5 * HOUR, 7 * HOUR, 6 * HOUR, 5 * HOUR, 7 * HOUR), K) is None


def test_a_clock_jump_suspends_the_learned_schedule() -> None:
    # A --timezone change shifts event times by 3h: one gap neither 1 nor 2 intervals.
    assert learned_interval(starts(*[6 * HOUR] * 5, 9 * HOUR, *[6 * HOUR] * 3), K) is None
    assert learned_interval(starts(*[6 * HOUR] * 5, 3 * HOUR, *[6 * HOUR] * 3), K) is None
    # Once the jump has left the history, the schedule is learned again.
    assert learned_interval(starts(*[6 * HOUR] * 5), K) == Expected(6 * HOUR, LEARNED, 5)


def test_out_of_order_completions_teach_the_same_schedule() -> None:
    series, shuffled = Series(), Series()
    ordered = starts(*[12 * HOUR] * 6)
    for s in ordered:
        series.observe_duration(600)
        series.record_run(s, 600, 20)
    for s in (ordered[3], ordered[0], ordered[5], ordered[1], ordered[6], ordered[2], ordered[4]):
        shuffled.observe_duration(600)
        shuffled.record_run(s, 600, 20)
    assert [r.start for r in shuffled.history] == ordered
    assert expected_interval("one_time", None, shuffled.history, K) == Expected(
        12 * HOUR, LEARNED, 6)


def test_a_declared_interval_wins_then_clevertaps_frequency() -> None:
    history = runs([600] * 8, every=6 * HOUR)
    assert expected_interval("4h", 8 * HOUR, history, K) == Expected(8 * HOUR, DECLARED)
    assert expected_interval("4h", None, history, K) == Expected(4 * HOUR, CLEVERTAP)
    assert expected_interval("unknown", None, history, K) == Expected(6 * HOUR, LEARNED, 7)
    assert expected_interval("unknown", None, history[:3], K) is None


def test_the_history_keeps_its_length() -> None:
    s = Series()
    for i in range(30):
        s.observe_duration(60)
        s.record_run(T0 + i, 60, 20)
    assert len(s.history) == 20 and s.history[0].start == T0 + 10
    assert not any(r.first for r in s.history)


def test_an_encoding_without_history_still_loads() -> None:
    old = (b'[1700000000.0,1700000600.0,null,600.0,0,{"initiated":1,"completed":1},'
           b'[0,0,1,0,0,0,0,0,0,0,0,0],600.0]')
    s = Series.decode(old)
    assert s.history == [] and s.last_duration == 600
    s.observe_duration(300)
    s.record_run(T0, 300, 20)
    again = Series.decode(s.encode())
    assert again.history == [Completed(T0, 300, None, False)]  # not the series' first run


# ---------------------------------------------------------------- on the tracker

Make = Callable[..., ExportTracker]


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Make]:
    made: list[SQLiteStore] = []

    def factory() -> ExportTracker:
        store = SQLiteStore(tmp_path / "state.db")
        made.append(store)
        return ExportTracker(store, limits(), lambda: T0)

    yield factory
    for store in made:
        store.close()


def ev(status: str, t: float, export_id: str, frequency: str | None = "one_time",
       export_type: str = "events") -> StatusEvent:
    return StatusEvent(account="default", export_id=export_id, partner="amazon_s3",
                       export_type=export_type, frequency=frequency or "unknown",
                       status=status, event_time=t, received=t + 5)


async def run(t: ExportTracker, i: int, start: float, duration: float, **kw: str) -> None:
    await t.ingest(ev("initiated", start, str(i), **kw))
    await t.ingest(ev("completed", start + duration, str(i), **kw))


async def test_the_tracker_learns_as_runs_complete(make: Make) -> None:
    t = make()
    key = ("default", "amazon_s3", "events", "one_time")
    for i in range(4):
        await run(t, i, T0 + i * 6 * HOUR, 900)
    s = t.series[key]
    assert s.usual is None and s.expected is None  # four runs, three intervals
    rev = s.rev
    await run(t, 4, T0 + 4 * 6 * HOUR, 900)
    assert s.usual is not None and (s.usual.median, s.usual.runs) == (900, 5)
    assert s.expected == Expected(6 * HOUR, LEARNED, 4) and s.rev > rev
    [status] = compute(t, EMPTY, T0 + 4 * 6 * HOUR + 1000)
    assert (status.schedule, status.expected_interval) == ("learned, every 6h (from 4 runs)",
                                                           6 * HOUR)
    # A failed run and an abandoned one are not completed runs: the history holds five.
    await t.ingest(ev("initiated", T0 + 5 * 6 * HOUR, "5"))
    await t.ingest(ev("failed", T0 + 5 * 6 * HOUR + 60, "5"))
    assert len(s.history) == 5


async def test_declared_knobs_and_interval_apply_per_export(make: Make) -> None:
    t = make()
    config = parse_config(
        "exports:\n"
        "  - {partner: s3, type: events, frequency: auto, interval: 8h,\n"
        "     learn: {usual_min_runs: 3}}\n"
        "  - {partner: s3, type: profiles, frequency: auto}\n")
    await t.declare(config.exports, config.label_values())
    auto = ("default", "amazon_s3", "events", "unknown")
    assert t.series[auto].expected == Expected(8 * HOUR, DECLARED)  # before any webhook
    for i in range(3):
        await run(t, i, T0 + i * 6 * HOUR, 1200, frequency="")
    usual = t.series[auto].usual
    assert usual is not None and usual.runs == 3
    assert t.series[auto].expected == Expected(8 * HOUR, DECLARED)  # the declared one wins
    profiles = ("default", "amazon_s3", "profiles", "unknown")
    assert t.series[profiles].expected is None and t.series[profiles].usual is None
