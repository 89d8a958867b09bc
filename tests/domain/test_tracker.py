"""The export model's rules, on the tracker itself: no HTTP, a real SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from exporter.domain.labelcap import OTHER_SERIES
from exporter.domain.payload import StatusEvent
from exporter.domain.tracker import ACCEPTED, DUPLICATE, ExportTracker
from exporter.store.sqlite import SQLiteStore
from tests.helpers import limits

T0 = 1_700_000_000.0
KEY = ("default", "amazon_s3", "events", "4h")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


Make = Callable[..., ExportTracker]


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Make]:
    made: list[SQLiteStore] = []

    def factory(clock: Clock | None = None, **changes: Any) -> ExportTracker:
        store = SQLiteStore(tmp_path / "state.db")
        made.append(store)
        return ExportTracker(store, limits(**changes), clock or Clock())

    yield factory
    for store in made:
        store.close()


def ev(status: str, t: float, export_id: str = "1", *, partner: str = "amazon_s3",
       account: str = "default", received: float | None = None) -> StatusEvent:
    return StatusEvent(account=account, export_id=export_id, partner=partner,
                       export_type="events", frequency="4h", status=status, event_time=t,
                       received=T0 + 5 if received is None else received)


async def test_a_run_goes_in_flight_and_completes_with_its_duration(make: Make) -> None:
    t = make()
    assert await t.ingest(ev("initiated", T0)) == ACCEPTED
    assert t.series[KEY].running == {("default", "1"): T0}
    assert await t.ingest(ev("completed", T0 + 900)) == ACCEPTED
    s = t.series[KEY]
    assert not s.running and not t.in_flight
    assert (s.last_initiated, s.last_completed, s.last_duration) == (T0, T0 + 900, 900)
    assert s.status_counts == {"initiated": 1, "completed": 1} and s.duration_sum == 900


async def test_a_redelivery_counts_once(make: Make) -> None:
    t = make()
    assert await t.ingest(ev("initiated", T0)) == ACCEPTED
    assert await t.ingest(ev("initiated", T0, received=T0 + 60)) == DUPLICATE
    assert t.series[KEY].status_counts == {"initiated": 1}


async def test_a_completed_before_its_initiated_leaves_nothing_in_flight(make: Make) -> None:
    t = make()
    await t.ingest(ev("completed", T0 + 900))
    await t.ingest(ev("initiated", T0))  # the late Initiated of a run already finished
    assert not t.in_flight and t.series[KEY].last_completed == T0 + 900
    assert t.series[KEY].last_duration is None


async def test_a_recurring_id_started_again_abandons_the_unfinished_run(make: Make) -> None:
    t = make()
    await t.ingest(ev("initiated", T0))
    await t.ingest(ev("initiated", T0 + 4 * 3600))  # the next schedule, same Export Request Id
    s = t.series[KEY]
    assert s.abandoned == 1 and s.running == {("default", "1"): T0 + 4 * 3600}
    await t.ingest(ev("completed", T0 + 4 * 3600 + 600))
    assert not t.in_flight and s.last_duration == 600


async def test_a_failed_status_closes_the_run_without_a_duration(make: Make) -> None:
    t = make()
    await t.ingest(ev("initiated", T0))
    await t.ingest(ev("failed", T0 + 60))
    s = t.series[KEY]
    assert not t.in_flight and s.last_failed == T0 + 60 and s.last_duration is None


async def test_expiry_abandons_old_runs_and_forgets_after_the_retention(make: Make) -> None:
    clock = Clock()
    t = make(clock, in_flight_timeout=3600.0, retention=7200.0)
    await t.ingest(ev("initiated", T0, "old", received=T0))
    await t.ingest(ev("initiated", T0 + 3000, "new", received=T0 + 3000))
    clock.now = T0 + 3601
    assert await t.expire() == 1
    assert set(t.in_flight) == {("default", "new")} and t.series[KEY].abandoned == 1
    clock.now = T0 + 3601 + 7201
    await t.expire()
    assert ("default", "old") not in t.runs and not t.deliveries


async def test_label_and_series_caps_fold_into_other_and_count(make: Make) -> None:
    t = make(max_label_values=2, max_series=3)
    for i, partner in enumerate(("p1", "p2", "p3")):
        await t.ingest(ev("initiated", T0 + i, str(i), partner=partner))
    assert ("default", "other", "events", "4h") in t.series
    assert t.labels.overflow == {"partner": 1}
    await t.ingest(ev("initiated", T0, "9", account="acme"))  # a fourth series
    assert OTHER_SERIES in t.series and t.labels.overflow["series"] == 1
    assert len(t.series) == 4


async def test_the_model_survives_a_restart(make: Make) -> None:
    t = make()
    await t.ingest(ev("initiated", T0))
    await t.ingest(ev("completed", T0 + 900, "2"))
    t.store.close()  # type: ignore[attr-defined]  # the SQLite store, closed to reopen
    again = make()
    assert again.series[KEY].status_counts == t.series[KEY].status_counts
    assert set(again.in_flight) == {("default", "1")}
    assert await again.ingest(ev("completed", T0 + 900, "2")) == DUPLICATE
