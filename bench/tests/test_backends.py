"""The transaction counter read from SQLite's WAL index, on a database SQLite itself writes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bench.backends import SqliteBackend, commit_delta


def test_counts_committed_transactions_across_wal_restarts(tmp_path: Path) -> None:
    b = SqliteBackend(tmp_path)
    conn = sqlite3.connect(b.db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x BLOB)")
    before = b.commits()
    for i in range(300):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?)", (b"x" * 3000,))
        conn.execute("COMMIT")
        if i == 150:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the WAL starts over
    conn.execute("SELECT count(*) FROM t").fetchall()  # reads commit nothing
    assert commit_delta(before, b.commits()) == 300
    conn.close()


def test_no_database_yet_means_unknown(tmp_path: Path) -> None:
    assert SqliteBackend(tmp_path).commits() is None
    assert commit_delta(None, 5) is None


def test_delta_survives_the_counter_wrapping() -> None:
    assert commit_delta(2**32 - 2, 3) == 5
