"""The write-ahead log stays bounded: checkpoints fold it back into the database, a flood's WAL
is cut back to 4 MiB, a reader never holds up a commit, and close() leaves a whole file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from exporter.store.base import Changes, SeriesRow
from exporter.store.sqlite import SQLiteStore

LIMIT = 4 * 1024 * 1024  # docs/reliability.md: the WAL is cut back to 4 MiB after a checkpoint
#: One transaction's frames beyond the 1000-page checkpoint threshold.
SLACK = 256 * 1024


def wal_bytes(store: SQLiteStore) -> int:
    return Path(f"{store.path}-wal").stat().st_size


def row(i: int, size: int = 2000) -> SeriesRow:
    """A series row whose data (a JSON list, as the store checks) takes about ``size`` bytes."""
    return SeriesRow(f"acct{i % 50}", "amazon_s3", "events", f"f{i}",
                     b'["' + b"x" * (size - 4) + b'"]')


async def test_wal_stays_bounded_over_many_commits(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    try:
        peak = 0
        for i in range(1500):  # each commit writes a fresh row: about 5,000 WAL frames in all
            await store.commit(Changes(series=[row(i)], gauges=[("last_received", float(i))]))
            peak = max(peak, wal_bytes(store))
        assert peak <= LIMIT + SLACK
    finally:
        store.close()
    reopened = SQLiteStore(tmp_path / "state.db")
    try:
        assert len(reopened.load().series) == 1500
    finally:
        reopened.close()


async def test_a_flood_grows_the_wal_and_the_next_commit_cuts_it_back(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    try:
        await store.commit(Changes(series=[row(i, 3000) for i in range(3000)]))
        assert wal_bytes(store) > LIMIT  # one transaction of about 9 MB
        await store.commit(Changes(gauges=[("last_received", 1.0)]))
        assert wal_bytes(store) <= LIMIT
    finally:
        store.close()


async def test_a_reader_does_not_block_commits_and_the_wal_recovers(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    reader = sqlite3.connect(store.path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM series").fetchone() == (0,)
        # The open snapshot keeps every checkpoint from completing: the WAL only grows.
        for i in range(600):
            await store.commit(Changes(series=[row(i)]))
        assert wal_bytes(store) > LIMIT + SLACK
        assert reader.execute("SELECT count(*) FROM series").fetchone() == (0,)
        reader.execute("COMMIT")
        for i in range(600, 1800):
            await store.commit(Changes(series=[row(i)]))
        assert wal_bytes(store) <= LIMIT
    finally:
        reader.close()
        store.close()
    assert not Path(f"{store.path}-wal").exists()  # close() checkpointed everything
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM series").fetchone() == (1800,)
