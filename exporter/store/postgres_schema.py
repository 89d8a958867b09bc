"""The PostgreSQL schema: versioned migrations, run at start-up under an advisory lock."""

from __future__ import annotations

from typing import Final

from exporter.store.base import StoreError
from exporter.store.postgres_rows import Conn

SCHEMA_VERSION: Final = 2
#: Advisory lock key of migrations (any bigint unique to this application).
LOCK_MIGRATE: Final = 0x63_74_65_78_00_01
TABLES: Final = ("meta", "series", "runs", "deliveries", "label_values", "gauges", "log",
                  "checks")
#: MIGRATIONS[n] takes the schema from version n to n + 1.
MIGRATIONS: Final = ("""
CREATE TABLE series (
    account TEXT NOT NULL, partner TEXT NOT NULL, export_type TEXT NOT NULL,
    frequency TEXT NOT NULL, data BYTEA NOT NULL,
    PRIMARY KEY (account, partner, export_type, frequency)
);
CREATE TABLE runs (
    account TEXT NOT NULL, export_id TEXT NOT NULL, partner TEXT NOT NULL,
    export_type TEXT NOT NULL, frequency TEXT NOT NULL,
    started DOUBLE PRECISION, last_finished DOUBLE PRECISION, updated DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account, export_id)
);
CREATE TABLE deliveries (
    account TEXT NOT NULL, export_id TEXT NOT NULL, status TEXT NOT NULL,
    event_time DOUBLE PRECISION NOT NULL, received DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account, export_id, status, event_time)
);
CREATE INDEX deliveries_received ON deliveries (received);
CREATE TABLE label_values (label TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (label, value));
CREATE TABLE gauges (key TEXT PRIMARY KEY, value DOUBLE PRECISION NOT NULL);
CREATE TABLE log (
    seq BIGSERIAL PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    data BYTEA NOT NULL
);
""", """
CREATE TABLE checks (
    account TEXT NOT NULL, export_id TEXT NOT NULL, started DOUBLE PRECISION NOT NULL,
    partner TEXT NOT NULL, export_type TEXT NOT NULL, frequency TEXT NOT NULL,
    completed DOUBLE PRECISION NOT NULL,
    claimed_by TEXT, claimed_until DOUBLE PRECISION,
    PRIMARY KEY (account, export_id, started)
);
CREATE INDEX checks_completed ON checks (completed);
""")


async def migrate(conn: Conn) -> None:
    """Bring the schema to ``SCHEMA_VERSION`` under an advisory lock; refuse a newer one."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_MIGRATE)
        version = await check_version(conn)
        if version == 0:
            await conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        for script in MIGRATIONS[version:]:
            await conn.execute(script)
        await conn.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', $1) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value", str(SCHEMA_VERSION))


async def check_version(conn: Conn) -> int:
    """The schema version, checked at start-up and on every reconnection: a newer exporter
    may have migrated it meanwhile, whose tables this one must not write."""
    version = await _version(conn)
    if version > SCHEMA_VERSION:
        raise StoreError(f"state database schema version {version} is newer than this "
                         f"exporter's ({SCHEMA_VERSION}): run a newer exporter")
    return version


async def _version(conn: Conn) -> int:
    """The schema version of this exporter's tables, 0 in an empty schema; refuses another
    application's database rather than add tables beside its own."""
    tables = {r["tablename"] for r in await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
    if not tables:
        return 0
    found = None
    if "meta" in tables and {"key", "value"} <= {r["attname"] for r in await conn.fetch(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'meta'::regclass")}:
        found = await conn.fetchval("SELECT value FROM meta WHERE key = 'schema_version'")
    if found is None or not str(found).isdigit():
        raise StoreError(
            "the state database is not a clevertap-export-exporter database (it has the "
            f"tables {', '.join(sorted(tables)[:10])} and no schema_version); refusing to add "
            "tables to another application's database: give the exporter a database of its own")
    return int(found)
