"""The store's promise: nothing is acknowledged unless committed, even when a write fails."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from exporter.store.base import Changes
from exporter.store.sqlite import SQLiteStore
from tests.helpers import Exporter, event, labels, series

Start = Callable[..., Awaitable[Exporter]]


async def test_group_commit_batches_concurrent_writers(exporter: Exporter) -> None:
    t0 = time.time() - 3600
    results = await asyncio.gather(*(exporter.post(event(i, "Initiated", t0)) for i in range(200)))
    assert all(r == (200, {"status": "accepted"}) for r in results)
    with sqlite3.connect(exporter.state) as db:
        assert db.execute("SELECT count(*) FROM runs WHERE started IS NOT NULL").fetchone() == (
            200,)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    m = await exporter.metrics()
    assert m["clevertap_export_in_flight"][series()] == 200


async def test_failed_write_is_not_acknowledged_and_memory_reloads(
    start_exporter: Start, tmp_path: Path
) -> None:
    exp = await start_exporter()
    assert (await exp.post(event(1, "Initiated")))[0] == 200
    # A trigger makes the next write of run 2 fail inside SQLite with an operational error,
    # as a full disk does (a refused value, a constraint, fails its change alone: test_refused).
    with sqlite3.connect(exp.state) as db:
        db.execute("CREATE TRIGGER boom BEFORE INSERT ON runs WHEN NEW.export_id = '2' "
                   "BEGIN INSERT INTO disk_says_no VALUES (1); END")
    second = event(2, "Initiated")
    status, answer = await exp.post(second)
    assert (status, answer["status"]) == (503, "unavailable")
    m = await exp.metrics()
    assert m["clevertap_export_in_flight"][series()] == 1  # run 2 is not claimed
    assert m["clevertap_export_webhook_requests_total"][labels(outcome="unavailable")] == 1
    with sqlite3.connect(exp.state) as db:
        db.execute("DROP TRIGGER boom")
    # CleverTap's retry of the same event is stored now, not mistaken for a duplicate.
    assert await exp.post(second) == (200, {"status": "accepted"})
    m = await exp.metrics()
    assert m["clevertap_export_in_flight"][series()] == 2
    assert (await exp.client.get("/readyz")).status == 200


def test_store_reports_unusable_file(tmp_path: Path) -> None:
    bad = tmp_path / "state.db"
    bad.write_bytes(b"this is not a database" * 100)
    try:
        SQLiteStore(bad)
    except Exception as exc:
        assert "cannot open state database" in str(exc)
    else:
        raise AssertionError("opening a corrupt file must fail")


async def test_empty_changes_commit(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    try:
        await store.commit(Changes())
        assert store.healthy and store.check()
    finally:
        store.close()
