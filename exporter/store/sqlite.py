"""Durable state: an embedded SQLite database written with group commit.

The store knows tables and rows, not exports. Every change queued during one turn of the event
loop is written at the start of the next turn in one transaction with one sync (WAL,
``synchronous=FULL``), and only then are its callers woken. So a caller is answered only after
its change is on disk, and concurrent callers share one disk sync instead of queueing behind one
another's. The commit runs on the loop thread on purpose: a commit is a fraction of a
millisecond, while handing each batch to a writer thread and back cost two thread wake-ups and
GIL hand-offs, which measured several milliseconds of latency on a busy core (bench/PROFILE.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from exporter.store.base import (
    Changes,
    Follower,
    RunRow,
    SeriesRow,
    Snapshot,
    StoreError,
    Work,
    settle,
)

SCHEMA_VERSION: Final = 1
_WAL_SIZE_LIMIT: Final = 4 * 1024 * 1024

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
"""


_Pending = list[tuple[Changes, asyncio.Future[None]]]


class SQLiteStore:
    """SQLite state file with group commit on the event loop.

    After a failed commit the store refuses every change until ``resume()`` is called: those
    changes were computed from in-memory state that the disk never received, so the owner must
    reload its state from ``load()`` first.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.failures = 0
        self._pending: _Pending = []
        self._flush_scheduled = False
        self._rejecting = False
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = self._connect()
            self._conn.executescript(_SCHEMA)
            self._conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open state database {self.path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        # The WAL file otherwise stays at its largest size ever (a flood, a big expiry);
        # this truncates it back after each checkpoint.
        conn.execute(f"PRAGMA journal_size_limit={_WAL_SIZE_LIMIT}")
        return conn

    def close(self) -> None:
        """Commit what is queued and close the database."""
        if self._pending:
            self._flush()
        self._closed = True
        self._conn.close()

    @property
    def healthy(self) -> bool:
        """Whether the store is open and its last commit succeeded."""
        return not self._closed and not self._rejecting

    def load(self) -> Snapshot:
        """Read the whole state, as committed."""
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open state database {self.path}: {exc}") from exc
        try:
            return Snapshot(
                series=[SeriesRow(*r) for r in conn.execute("SELECT * FROM series")],
                runs=[RunRow(*r) for r in conn.execute("SELECT * FROM runs")],
                deliveries={(a, e, s, t): r for a, e, s, t, r in conn.execute(
                    "SELECT account, export_id, status, event_time, received FROM deliveries "
                    "ORDER BY received")},
                label_values=list(conn.execute("SELECT label, value FROM label_values")),
                gauges=dict(conn.execute("SELECT key, value FROM gauges")),
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read state database {self.path}: {exc}") from exc
        finally:
            conn.close()

    def check(self) -> bool:
        """A cheap read that proves the database file is usable."""
        try:
            conn = self._connect()
            try:
                conn.execute("SELECT 1 FROM meta LIMIT 1").fetchall()
            finally:
                conn.close()
        except sqlite3.Error:
            return False
        return True

    def size_bytes(self) -> int:
        """Bytes on disk of the database and its write-ahead log."""
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += Path(f"{self.path}{suffix}").stat().st_size
        return total

    async def commit(self, changes: Changes) -> None:
        """Make ``changes`` durable; returns once they are synced, raises ``StoreError`` if not."""
        if self._closed:
            raise StoreError("state store is closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._pending.append((changes, fut))
        if not self._flush_scheduled:
            # Runs after every callback already queued: those callers join this batch.
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        await fut

    def follow(self, follower: Follower) -> None:
        """Nothing to follow: this process is the file's only writer."""

    async def submit(self, work: Work) -> None:
        """``work`` runs at once (the model is current: no other writer) and joins the batch."""
        await self.commit(work())

    def resume(self) -> None:
        """Accept changes again after a failure, once the owner has reloaded its state."""
        stale, self._pending = self._pending, []
        settle((f for _, f in stale),
               StoreError("state store is recovering from a failed write"))
        self._rejecting = False

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._pending = self._pending, []
        error: StoreError | None = None
        if self._rejecting:
            error = StoreError("state store is recovering from a failed write")
        else:
            try:
                self._apply(c for c, _ in batch)
            except (sqlite3.Error, OSError) as exc:
                self.failures += 1
                self._rejecting = True
                error = StoreError(f"state store write failed: {exc}")
        settle((f for _, f in batch), error)

    def _apply(self, changes: Iterable[Changes]) -> None:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for c in changes:
                if c.label_values:
                    conn.executemany(
                        "INSERT OR IGNORE INTO label_values VALUES (?, ?)", c.label_values
                    )
                if c.series:
                    conn.executemany("INSERT OR REPLACE INTO series VALUES (?,?,?,?,?)", c.series)
                if c.runs:
                    conn.executemany(
                        "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?)", c.runs
                    )
                if c.deleted_runs:
                    conn.executemany(
                        "DELETE FROM runs WHERE account = ? AND export_id = ?", c.deleted_runs
                    )
                if c.deliveries:
                    conn.executemany(
                        "INSERT OR IGNORE INTO deliveries VALUES (?,?,?,?,?)", c.deliveries
                    )
                if c.deleted_deliveries:
                    conn.executemany(
                        "DELETE FROM deliveries WHERE account = ? AND export_id = ? "
                        "AND status = ? AND event_time = ?", c.deleted_deliveries
                    )
                if c.deliveries_received_before is not None:
                    conn.execute(
                        "DELETE FROM deliveries WHERE received < ?",
                        (c.deliveries_received_before,),
                    )
                if c.gauges:
                    conn.executemany("INSERT OR REPLACE INTO gauges VALUES (?, ?)", c.gauges)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

