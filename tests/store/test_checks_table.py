"""The landing checks' table arrives with schema version 2: a version-1 state (SQLite file or
PostgreSQL database) is given it at start-up and keeps its rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg

from exporter.store.base import Changes, CheckRow
from exporter.store.postgres import PostgresStore
from exporter.store.postgres_schema import MIGRATIONS
from exporter.store.sqlite import SQLiteStore
from tests.postgres import pg_cluster, pg_url

__all__ = ["pg_cluster", "pg_url"]  # fixtures used here, imported from tests.postgres

ROW = CheckRow("default", "7", 1.0e9, "amazon_s3", "events", "4h", 1.0e9 + 60)


async def test_a_version_1_sqlite_file_gets_the_checks_table(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SQLiteStore(path)
    store.close()
    with sqlite3.connect(path) as db:  # as version 1 left it
        db.execute("DROP TABLE checks")
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    store = SQLiteStore(path)
    try:
        await store.submit(lambda: Changes(checks=[ROW]))
        assert await store.claim_checks("me", 2.0e9, 1.0e9, 60, 10) == [ROW]
        assert await store.claim_checks("me", 2.0e9, 1.0e9, 60, 10) == []  # claimed
        assert await store.claim_checks("me", 2.0e9, 1.0e9 + 61, 60, 10) == [ROW]  # lapsed
        await store.submit(lambda: Changes(checked=[ROW[:3]]))
        assert await store.claim_checks("me", 2.0e9, 1.0e9 + 200, 60, 10) == []
    finally:
        store.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            "2",)


async def test_a_version_1_postgresql_database_gets_the_checks_table(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        await conn.execute(MIGRATIONS[0])
        await conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    finally:
        await conn.close()
    store = await PostgresStore.open(pg_url)
    try:
        await store.submit(lambda: Changes(checks=[ROW]))
        assert await store.claim_checks("a", 2.0e9, 1.0e9, 60, 10) == [ROW]
        assert await store.claim_checks("b", 2.0e9, 1.0e9 + 30, 60, 10) == []
        await store.release_checks("b")  # not b's: still a's
        assert await store.claim_checks("b", 2.0e9, 1.0e9 + 30, 60, 10) == []
        await store.release_checks("a")  # a stops: b takes it at once
        assert await store.claim_checks("b", 2.0e9, 1.0e9 + 30, 60, 10) == [ROW]
        await store.submit(lambda: Changes(checked=[ROW[:3]]))
        assert await store.claim_checks("b", 2.0e9, 1.0e9 + 200, 60, 10) == []
    finally:
        await store.close()
