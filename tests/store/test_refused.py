"""A change the SQLite database refuses fails alone: the others of its batch, and those queued
behind it, are stored and acknowledged, and the model holds none of it (a real file, with a
trigger that refuses one export id)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from exporter.domain.payload import StatusEvent
from exporter.domain.tracker import ACCEPTED, DUPLICATE, ExportTracker
from exporter.store import Refused
from exporter.store.sqlite import SQLiteStore
from tests.helpers import limits


def ev(export_id: str, partner: str = "amazon_s3") -> StatusEvent:
    now = time.time()
    return StatusEvent(account="default", export_id=export_id, partner=partner,
                       export_type="events", frequency="4h", status="initiated",
                       event_time=now - 600, received=now)


async def test_a_change_the_database_refuses_fails_alone(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "state.db"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("CREATE TRIGGER no_poison BEFORE INSERT ON deliveries "
                   "WHEN NEW.export_id = 'poison' BEGIN SELECT RAISE(ABORT, 'no poison'); END")
    store = SQLiteStore(path)
    try:
        tracker = ExportTracker(store, limits())
        events = [ev(str(i)) for i in range(10)]
        events.insert(4, ev("poison", partner="poisoned"))
        # One loop turn: one batch; then, while it commits, a second one queues behind it,
        # decided on a model that holds the refused change.
        first = [asyncio.ensure_future(tracker.ingest(e)) for e in events]
        await asyncio.sleep(0)
        second = [asyncio.ensure_future(tracker.ingest(ev(str(i)))) for i in range(10, 15)]
        results = await asyncio.gather(*first, *second, return_exceptions=True)
        assert isinstance(results[4], Refused) and "no poison" in str(results[4])
        assert [r for i, r in enumerate(results) if i != 4] == [ACCEPTED] * 15
        assert store.healthy and store.failures == 0
        assert not any("reload" in r.getMessage() for r in caplog.records)
        [series] = tracker.series.values()
        assert series.status_counts == {"initiated": 15}
        assert ("default", "poison") not in tracker.runs and len(tracker.in_flight) == 15
        assert "poisoned" not in tracker.labels.admitted.get("partner", set())
        with pytest.raises(Refused):
            await tracker.ingest(events[4])
        assert await tracker.ingest(events[0]) == DUPLICATE
    finally:
        store.close()
    with sqlite3.connect(path) as db:
        stored = {r[0] for r in db.execute("SELECT export_id FROM deliveries")}
        assert stored == {str(i) for i in range(15)}
        assert {r[0] for r in db.execute("SELECT export_id FROM runs")} == stored
        assert db.execute("SELECT count(*) FROM series").fetchone() == (1,)
    # What was stored is what a restart reads.
    store = SQLiteStore(path)
    try:
        again = ExportTracker(store, limits())
        assert [s.status_counts for s in again.series.values()] == [{"initiated": 15}]
    finally:
        store.close()
