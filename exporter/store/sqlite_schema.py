"""The SQLite state file's schema: its tables, and what a file must be for the store to use it."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Final

from exporter.store import statefile
from exporter.store.base import StoreError

log = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 2
TABLES: Final = ("meta", "series", "runs", "deliveries", "label_values", "gauges", "checks")
#: Tables a schema version added: a file of an older version lacks them by right (it gets them).
_ADDED_IN: Final = {"checks": 2}
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS series (
    account TEXT NOT NULL, partner TEXT NOT NULL, export_type TEXT NOT NULL,
    frequency TEXT NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (account, partner, export_type, frequency)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    account TEXT NOT NULL, export_id TEXT NOT NULL, partner TEXT NOT NULL,
    export_type TEXT NOT NULL, frequency TEXT NOT NULL,
    started REAL, last_finished REAL, updated REAL NOT NULL,
    PRIMARY KEY (account, export_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deliveries (
    account TEXT NOT NULL, export_id TEXT NOT NULL, status TEXT NOT NULL,
    event_time REAL NOT NULL, received REAL NOT NULL,
    PRIMARY KEY (account, export_id, status, event_time)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS deliveries_received ON deliveries (received);
CREATE TABLE IF NOT EXISTS label_values (
    label TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (label, value)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS gauges (key TEXT PRIMARY KEY, value REAL NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checks (
    account TEXT NOT NULL, export_id TEXT NOT NULL, started REAL NOT NULL,
    partner TEXT NOT NULL, export_type TEXT NOT NULL, frequency TEXT NOT NULL,
    completed REAL NOT NULL,
    PRIMARY KEY (account, export_id, started)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS checks_completed ON checks (completed);
"""


def create(conn: sqlite3.Connection) -> None:
    """The tables that are missing, and the schema version of a new file."""
    conn.executescript(_SCHEMA)
    conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                 (str(SCHEMA_VERSION),))
    # An older file has just been given the tables it lacked.
    conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                 (str(SCHEMA_VERSION),))


def check(path: Path, init: bool) -> None:
    """Refuse another program's file, a newer schema, or a dropped table, read-only."""
    ro = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    try:
        tables = statefile.tables(ro)
        if not tables:
            return  # an empty SQLite file (e.g. made by touch) is as good as none
        row = (ro.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
               if "meta" in tables else None)
    finally:
        ro.close()
    if "meta" not in tables:
        raise StoreError(
            f"{path} is not a clevertap-export-exporter state database (it has the "
            f"tables {', '.join(sorted(tables))} and no schema_version); refusing to "
            "add tables to another program's file")
    version = str(row[0]) if row else ""
    if not version.isdigit():
        raise StoreError(f"{path} is not a clevertap-export-exporter state database "
                         f"(schema_version {version or 'missing'})")
    if int(version) > SCHEMA_VERSION:
        raise StoreError(
            f"state database {path} has schema_version {version}, written by a newer "
            f"exporter; this one reads up to {SCHEMA_VERSION}: upgrade the exporter")
    missing = [t for t in TABLES
               if t not in tables and _ADDED_IN.get(t, 0) <= int(version)]
    if missing and not init:
        raise StoreError(
            f"state database {path} lacks the table(s) {', '.join(missing)}: it is "
            "damaged; restore it, or start with --state-init to recreate them empty")


def check_rows(conn: sqlite3.Connection, path: Path, skip_corrupt: bool) -> None:
    """Refuse rows of the wrong type, or delete them (and log each) with ``skip_corrupt``."""
    corrupt = list(statefile.corrupt_rows(conn))
    if not corrupt:
        return
    listing = "; ".join(f"{table} {key!r}: {why}" for table, key, why in corrupt[:20])
    more = f" (and {len(corrupt) - 20} more)" if len(corrupt) > 20 else ""
    if not skip_corrupt:
        raise StoreError(
            f"state database {path} has {len(corrupt)} corrupt row(s): {listing}{more}; "
            "start with --state-skip-corrupt to delete them and start without them")
    conn.execute("BEGIN IMMEDIATE")
    for table, key, why in corrupt:
        log.warning("state database %s: deleting corrupt row of %s %r: %s",
                    path, table, key, why)
        where = " AND ".join(f"{c} IS ?" for c in statefile.key_columns(table))
        conn.execute(f"DELETE FROM {table} WHERE {where}", key)  # noqa: S608
    conn.execute("COMMIT")
