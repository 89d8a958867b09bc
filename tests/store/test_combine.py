"""Group commit: one transaction for a batch leaves the tables as committing each change in
turn would (``combine``)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.domain.model import Series
from exporter.store.base import Changes, DeliveryRow, RunRow, SeriesRow, combine
from exporter.store.sqlite import _WRITES, SQLiteStore

#: What committing one change did before batches were combined: its statements in this order,
#: then the expiry.
STEPWISE = [_WRITES[i] for i in (0, 1, 2, 3, 5, 4, 6)]

# A small key space, so that rows recur, are deleted and written again within a batch.
accounts = st.sampled_from(["a", "b"])
ids = st.sampled_from(["1", "2", "3"])
times = st.sampled_from([10.0, 20.0, 30.0])
series_rows = st.builds(SeriesRow, accounts, st.just("s3"), st.just("events"),
                        st.just("daily"),
                        st.sampled_from([Series().encode(), Series(abandoned=1).encode()]))
run_rows = st.builds(RunRow, accounts, ids, st.just("s3"), st.just("events"), st.just("daily"),
                     st.none() | times, st.none() | times, times)
delivery_rows = st.builds(DeliveryRow, accounts, ids, st.sampled_from(["Initiated"]), times,
                          times)
changes = st.builds(
    Changes,
    series=st.lists(series_rows, max_size=3),
    runs=st.lists(run_rows, max_size=3),
    deleted_runs=st.lists(st.tuples(accounts, ids), max_size=2),
    deliveries=st.lists(delivery_rows, max_size=3),
    deleted_deliveries=st.lists(st.tuples(accounts, ids, st.just("Initiated"), times),
                                max_size=2),
    deliveries_received_before=st.none() | times,
    label_values=st.lists(st.tuples(st.just("partner"), st.sampled_from(["x", "y"])),
                          max_size=2),
    gauges=st.lists(st.tuples(st.sampled_from(["last_received", "delay:a"]), times),
                    max_size=3),
    # A forget, now and then (it is rare, and its batch is written change by change).
    deleted_series=st.lists(st.tuples(accounts, st.just("s3"), st.just("events"),
                                      st.just("daily")), max_size=1),
    deleted_gauges=st.lists(st.sampled_from(["delay:a"]), max_size=1),
)


def _tables(path: Path) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(path) as db:
        return {t: sorted(db.execute(f"SELECT * FROM {t}"))  # noqa: S608
                for t in ("series", "runs", "deliveries", "label_values", "gauges")}


def _one_by_one(path: Path, batch: list[Changes], order: list[tuple[str, str]] = STEPWISE
                ) -> None:
    """Each change in its own transaction, its statements in ``order``, expiry last."""
    with sqlite3.connect(path, isolation_level=None) as db:
        for c in batch:
            db.execute("BEGIN")
            for attr, sql in order:
                if rows := getattr(c, attr):
                    db.executemany(sql, rows)
            if c.deliveries_received_before is not None:
                db.execute("DELETE FROM deliveries WHERE received < ?",
                           (c.deliveries_received_before,))
            db.executemany("DELETE FROM series WHERE account = ? AND partner = ? AND "
                           "export_type = ? AND frequency = ?", c.deleted_series)
            db.executemany("DELETE FROM gauges WHERE key = ?", [(k,) for k in c.deleted_gauges])
            db.execute("COMMIT")


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(before=st.lists(changes, max_size=2), batch=st.lists(changes, min_size=1, max_size=5))
def test_combined_batch_equals_its_changes_in_turn(tmp_path_factory: object,
                                                   before: list[Changes],
                                                   batch: list[Changes]) -> None:
    root = tmp_path_factory.mktemp("combine")  # type: ignore[attr-defined]
    stepwise, combined = root / "stepwise.db", root / "combined.db"
    for path in (stepwise, combined):
        SQLiteStore(path).close()  # the schema
        _one_by_one(path, before)  # rows already stored, for the batch to replace or delete
    _one_by_one(stepwise, batch)
    asyncio.run(_group_commit(combined, batch))
    assert _tables(combined) == _tables(stepwise)


async def _group_commit(path: Path, batch: list[Changes]) -> None:
    """Commit ``batch`` through the store, all queued in one loop turn: one transaction."""
    store = SQLiteStore(path)
    try:
        await asyncio.gather(*(store.commit(c) for c in batch))
    finally:
        store.close()


def test_a_row_rewritten_in_a_batch_is_written_once() -> None:
    first = Changes(gauges=[("last_received", 1.0)], runs=[RunRow("a", "1", "s3", "events",
                                                                  "daily", 5.0, None, 5.0)])
    second = Changes(gauges=[("last_received", 2.0)], runs=[RunRow("a", "1", "s3", "events",
                                                                   "daily", None, 9.0, 9.0)])
    merged = combine([first, second])
    assert merged.gauges == [("last_received", 2.0)]
    assert merged.runs == [RunRow("a", "1", "s3", "events", "daily", None, 9.0, 9.0)]
