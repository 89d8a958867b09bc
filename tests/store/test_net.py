"""Group commit on both stores: one transaction for a batch leaves the tables as applying each
change in turn would (``base.net``), checked against a reference that applies them one by one."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.store.base import Changes, RunRow, Snapshot, net
from exporter.store.postgres import PostgresStore
from exporter.store.sqlite import SQLiteStore
from tests.postgres import pg_cluster, pg_url
from tests.strategies import change_sets

__all__ = ["pg_cluster", "pg_url"]  # fixtures used here, imported from tests.postgres

Tables = dict[str, list[tuple[object, ...]]]
TABLES = ("series", "runs", "deliveries", "label_values", "gauges")
batches = st.tuples(st.lists(change_sets, max_size=2), st.lists(change_sets, min_size=1,
                                                                max_size=5))


def in_turn(changes: Sequence[Changes]) -> Tables:
    """The tables after applying each change on its own: its rows in the order it lists them
    (a run written then deleted, a delivery written where none is stored then deleted), then
    its expiry and what it forgets."""
    series: dict[tuple[object, ...], tuple[object, ...]] = {}
    runs: dict[tuple[object, ...], tuple[object, ...]] = {}
    deliveries: dict[tuple[object, ...], tuple[object, ...]] = {}
    labels: set[tuple[object, ...]] = set()
    gauges: dict[str, float] = {}
    for c in changes:
        labels.update(c.label_values)
        series.update((tuple(r[:4]), tuple(r)) for r in c.series)
        runs.update((tuple(r[:2]), tuple(r)) for r in c.runs)
        for run in c.deleted_runs:
            runs.pop(run, None)
        for d in c.deliveries:
            deliveries.setdefault(tuple(d[:4]), tuple(d))
        for delivery in c.deleted_deliveries:
            deliveries.pop(delivery, None)
        gauges.update(c.gauges)
        if (cut := c.deliveries_received_before) is not None:
            deliveries = {k: d for k, d in deliveries.items() if float(d[4]) >= cut}  # type: ignore[arg-type]
        for key in c.deleted_series:
            series.pop(key, None)
        for (gauge,) in c.deleted_gauges:
            gauges.pop(gauge, None)
    return {"series": sorted(series.values()), "runs": sorted(runs.values()),
            "deliveries": sorted(deliveries.values()), "label_values": sorted(labels),
            "gauges": sorted(gauges.items())}


def _sqlite_tables(path: Path) -> Tables:
    with sqlite3.connect(path) as db:
        return {t: sorted(db.execute(f"SELECT * FROM {t}")) for t in TABLES}  # noqa: S608


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches)
def test_sqlite_batch_equals_its_changes_in_turn(
        tmp_path_factory: object, changes: tuple[list[Changes], list[Changes]]) -> None:
    before, batch = changes
    path = tmp_path_factory.mktemp("net") / "state.db"  # type: ignore[attr-defined]

    async def commit() -> None:
        store = SQLiteStore(path)
        try:
            for c in before:  # rows already stored, for the batch to replace or delete
                await store.commit(c)
            await asyncio.gather(*(store.commit(c) for c in batch))  # one loop turn: one batch
        finally:
            store.close()

    asyncio.run(commit())
    assert _sqlite_tables(path) == in_turn([*before, *batch])


class _Quiet:
    """A follower of a store that no other replica writes to."""

    def restore(self, snapshot: Snapshot) -> None:
        """Nothing to replace: the test reads the tables."""

    def apply_remote(self, changes: Sequence[Changes]) -> None:
        raise AssertionError("no other replica writes")

    def revert(self, changes: Sequence[Changes], stored: Snapshot) -> None:
        raise AssertionError("the database refuses none of these changes")


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches)
def test_postgres_batch_equals_its_changes_in_turn(
        pg_url: str, changes: tuple[list[Changes], list[Changes]]) -> None:
    before, batch = changes

    async def commit() -> Tables:
        store = await PostgresStore.open(pg_url)
        store.follow(_Quiet())
        try:
            async with store._pool.acquire() as conn:
                await conn.execute(f"TRUNCATE {', '.join(TABLES)}")
            for c in before:
                await store.submit(lambda c=c: c)  # type: ignore[misc]
            # Queued in one loop turn: one transaction.
            await asyncio.gather(*(store.submit(lambda c=c: c) for c in batch))  # type: ignore[misc]
            reader = await asyncpg.connect(pg_url)
            try:
                return {t: sorted(tuple(r) for r in await reader.fetch(
                    f"SELECT * FROM {t}")) for t in TABLES}  # noqa: S608
            finally:
                await reader.close()
        finally:
            await store.close()

    assert asyncio.run(commit()) == in_turn([*before, *batch])


def test_a_row_rewritten_in_a_batch_is_written_once() -> None:
    first = Changes(gauges=[("last_received", 1.0)], runs=[RunRow("a", "1", "s3", "events",
                                                                  "daily", 5.0, None, 5.0)])
    second = Changes(gauges=[("last_received", 2.0)], runs=[RunRow("a", "1", "s3", "events",
                                                                   "daily", None, 9.0, 9.0)])
    [merged] = net([first, second])
    assert merged.gauges == [("last_received", 2.0)]
    assert merged.runs == [RunRow("a", "1", "s3", "events", "daily", None, 9.0, 9.0)]


def test_a_batch_is_cut_after_each_expiry() -> None:
    """The expiry deletes by time, so what follows it is written after it."""
    steps = net([Changes(gauges=[("g", 1.0)]), Changes(deliveries_received_before=5.0),
                 Changes(gauges=[("g", 2.0)])])
    assert [(s.gauges, s.deliveries_received_before) for s in steps] == [
        ([("g", 1.0)], 5.0), ([("g", 2.0)], None)]
