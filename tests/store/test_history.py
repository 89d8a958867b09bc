"""The run history lives in the series' own encoding: both backends keep it across a restart
with no schema change, and a series stored before the history loads and starts one."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter.domain.model import Completed
from exporter.domain.payload import StatusEvent
from exporter.domain.schedule import LEARNED, Expected
from exporter.domain.thresholds import HOUR
from exporter.domain.tracker import ExportTracker
from exporter.store import open_store
from exporter.store.base import Changes, SeriesRow
from tests.helpers import limits
from tests.postgres import pg_cluster, pg_url

__all__ = ["pg_cluster", "pg_url"]  # fixtures used here, imported from tests.postgres

T0 = 1_700_000_000.0
KEY = ("default", "amazon_s3", "events", "one_time")
#: A series as the exporter stored it before the history: eight fields.
OLD = (b'[1699990000.0,1699990600.0,null,600.0,0,{"initiated":3,"completed":3},'
       b'[0,0,3,0,0,0,0,0,0,0,0,0],1800.0]')


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None
    return str(request.getfixturevalue("pg_url"))


def ev(status: str, t: float, export_id: str) -> StatusEvent:
    return StatusEvent(account="default", export_id=export_id, partner="amazon_s3",
                       export_type="events", frequency="one_time", status=status,
                       event_time=t, received=t + 5)


async def test_the_history_and_what_it_teaches_survive_a_restart(
        tmp_path: Path, url: str | None) -> None:
    async with open_store(tmp_path / "state.db", url) as store:
        t = ExportTracker(store, limits(), lambda: T0)
        for i in range(6):
            start = T0 + i * 8 * HOUR
            await t.ingest(ev("initiated", start, str(i)))
            await t.ingest(ev("completed", start + 1200 + 10 * i, str(i)))
        before = t.series[KEY]
        assert before.expected == Expected(8 * HOUR, LEARNED, 5)
        assert before.usual is not None and before.usual.runs == 6
    async with open_store(tmp_path / "state.db", url) as store:
        after = ExportTracker(store, limits(), lambda: T0).series[KEY]
    assert after.history == before.history and len(after.history) == 6
    assert after.history[0] == Completed(T0, 1200, None, True)
    assert (after.usual, after.expected) == (before.usual, before.expected)


async def test_a_series_stored_without_history_loads_and_starts_one(
        tmp_path: Path, url: str | None) -> None:
    async with open_store(tmp_path / "state.db", url) as store:
        await store.submit(lambda: Changes(series=[SeriesRow(*KEY, OLD)]))
    async with open_store(tmp_path / "state.db", url) as store:
        t = ExportTracker(store, limits(), lambda: T0)
        s = t.series[KEY]
        assert s.history == [] and s.usual is None and s.last_duration == 600
        assert s.status_counts == {"initiated": 3, "completed": 3}
        await t.ingest(ev("initiated", T0, "9"))
        await t.ingest(ev("completed", T0 + 900, "9"))
    async with open_store(tmp_path / "state.db", url) as store:
        s = ExportTracker(store, limits(), lambda: T0).series[KEY]
    # Not the series' first run: three completed before the history began.
    assert s.history == [Completed(T0, 900, None, False)]
    assert s.status_counts == {"initiated": 4, "completed": 4} and s.duration_sum == 2700
