"""Durable state: an embedded SQLite database written with group commit.

The store knows tables and rows, not exports. Every change queued while no commit is running is
written at the start of the next loop turn, in one transaction with one sync (WAL,
``synchronous=FULL``), and only then are its callers woken. The transaction runs on a writer
thread: SQLite releases the GIL while it syncs, so the event loop goes on reading, applying and
queueing the next requests meanwhile, and those form the next batch the moment the commit
returns. One batch is in the thread at a time, so batches commit in the order the model changed;
after a failed commit every change queued behind it is refused (it was computed from a model
the disk never received) until the owner has reloaded. bench/PROFILE.md has the measurements.

What the store refuses, rather than lose or mix up state:

* a second process on the same file, by any path: an OS lock on the database file itself,
  held for the process's lifetime (``<file>.lock`` names the holder's pid);
* a file that is not this exporter's, or is from a newer schema, and rows that do not have the
  types of their columns (named by table and key; ``skip_corrupt`` starts without them);
* creating an empty database where one existed (its ``-wal``, ``-shm`` or ``.lock`` remain), or
  recreating a dropped table, unless ``init`` says so;
* writing once the file at the path, or its write-ahead log, is no longer the one it opened
  (deleted, replaced or cut while running; ``sqlite_guard``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import Final

from exporter.store import sqlite_guard, sqlite_rows, sqlite_schema, statefile
from exporter.store.base import (
    Changes,
    CheckKey,
    CheckRow,
    Follower,
    Freshness,
    Refused,
    RunRow,
    SeriesRow,
    Snapshot,
    StoreError,
    Work,
    settle,
)

log = logging.getLogger(__name__)

_WAL_SIZE_LIMIT: Final = 4 * 1024 * 1024
#: Seconds without a commit after which the writer checkpoints (sqlite_guard.checkpoint).
IDLE_CHECKPOINT_SECONDS: Final = 1.0
#: Seconds a readiness write probe waits for the write lock before it calls the store busy.
_PROBE_TIMEOUT: Final = 2.0

#: Each change queued, whom to answer, and the work that made it (run again when the database
#: refuses a change before it).
_Pending = list[tuple[Changes, asyncio.Future[None], Work | None]]
#: What the loop hands the writer thread: where to answer, the rows, and whom to answer.
_Job = tuple[asyncio.AbstractEventLoop, list[Changes], _Pending]


class SQLiteStore:
    """SQLite state file with group commit on a writer thread.

    After a failed commit the store refuses every change until ``resume()`` is called: those
    changes were computed from in-memory state that the disk never received, so the owner must
    reload its state from ``load()`` first.

    ``init`` allows creating the database, or its missing tables, where one existed before;
    ``skip_corrupt`` deletes (and logs, by table and key) rows whose values cannot be read
    instead of refusing to start.
    """

    def __init__(self, path: str | Path, *, init: bool = False,
                 skip_corrupt: bool = False) -> None:
        self.path = Path(path)
        self.failures = 0
        self._commits = 0
        self._follower: Follower | None = None
        self._pending: _Pending = []
        self._flush_scheduled = False
        #: The batch the writer thread is committing; changes queue in ``_pending`` meanwhile.
        self._writing: _Pending | None = None
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._rejecting = False
        self._closed = False
        self._conn_lock = threading.Lock()  # the writer's connection, also the guard's
        #: Landing checks handed out, until when: the only claimant is this process (the lock).
        self._claims: dict[CheckKey, float] = {}
        traces = statefile.traces(self.path)
        if not self.path.exists() and traces and not init:
            raise StoreError(
                f"state database {self.path} is missing but {', '.join(traces)} beside it "
                "show(s) that one existed: restore it, or start with --state-init to begin "
                "with an empty state")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = statefile.acquire_lock(self.path)  # creates the file, empty
        except OSError as exc:
            raise StoreError(f"cannot open state database {self.path}: {exc}") from exc
        try:
            self._open(skip_corrupt, init)
        except BaseException:
            os.close(self._lock)
            raise
        # A daemon: a process that exits without close() must not hang on it; an unfinished
        # transaction is rolled back by SQLite, and nobody was answered for it.
        self._writer = threading.Thread(target=self._write, name="sqlite-writer", daemon=True)
        self._writer.start()

    def _open(self, skip_corrupt: bool, init: bool) -> None:
        conn: sqlite3.Connection | None = None
        try:
            sqlite_schema.check(self.path, init)  # before anything is written to the file
            self._conn = conn = self._connect(create=True)
            identity = statefile.identity(self.path)
            sqlite_schema.create(conn)
            sqlite_schema.check_rows(conn, self.path, skip_corrupt)
            # A write now, so the write-ahead log exists from here on (wal_problem).
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('opened', ?)",
                         (repr(time.time()),))
            self._guard = sqlite_guard.FileGuard(self.path, conn, self._conn_lock, identity)
        except BaseException as exc:
            if conn is not None:
                conn.close()
            if isinstance(exc, sqlite3.Error | OSError):
                raise StoreError(f"cannot open state database {self.path}: {exc}") from exc
            raise

    def _connect(self, *, create: bool = False, timeout: float = 30) -> sqlite3.Connection:
        # Only the start-up may create the file: a later connection to a path whose file was
        # deleted must fail, not make an empty database there.
        uri = self.path.resolve().as_uri() + ("?mode=rwc" if create else "?mode=rw")
        # Not same-thread: the writer thread commits on the connection the start-up opened.
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=timeout,
                               check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        # The WAL file otherwise stays at its largest size ever (a flood, a big expiry);
        # this truncates it back after each checkpoint.
        conn.execute(f"PRAGMA journal_size_limit={_WAL_SIZE_LIMIT}")
        # wal_autocheckpoint stays at 1000 pages: a commit in a hundred also checkpoints, which
        # beat a checkpointer thread (the WAL then never restarts under load; bench/commit.py).
        return conn

    def close(self) -> None:
        """Commit what is queued and close the database."""
        if self._closed:
            return
        self._jobs.put(None)
        self._writer.join()  # the batch in the thread, if any, commits first
        batch, self._pending = self._pending, []
        if batch:
            error = self._refusal() or self._commit_rows([c for c, _, _ in batch if c])
            settle((f for _, f, _ in batch), error if isinstance(error, StoreError) else None)
        self._closed = True
        self._conn.close()
        os.close(self._lock)

    @property
    def healthy(self) -> bool:
        """Whether the store is open, still the file at its path, and its last commit
        succeeded."""
        return not self._closed and not self._rejecting and self._guard.lost is None

    def load(self) -> Snapshot:
        """Read the whole state, as committed."""
        if self._guard.lost is not None:
            # The open connection still reads what this process committed: the model stays
            # what it stored, while every write is refused.
            return self._read(self._conn)
        try:
            conn = self._connect()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open state database {self.path}: {exc}") from exc
        try:
            return self._read(conn)
        finally:
            conn.close()

    def _read(self, conn: sqlite3.Connection) -> Snapshot:
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

    def check(self) -> bool:
        """Whether a change submitted now would be stored: the file at the path is still the
        one opened, and a small write transaction commits (a read alone passes on a full disk).

        Runs in a worker thread, on a connection of its own.
        """
        if self._closed or not self._guard.intact():
            return False
        try:
            conn = self._connect(timeout=_PROBE_TIMEOUT)
            try:
                conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES "
                             "('write_probe', ?)", (repr(time.time()),))
            finally:
                conn.close()
        except sqlite3.Error as exc:
            log.warning("state database %s: write probe failed: %s", self.path, exc)
            return False
        return True

    def freshness(self) -> Freshness:
        """Always current: this process is the file's only writer, on its own clock."""
        return Freshness(self._commits, 0, 0.0, None)

    def size_bytes(self) -> int:
        """Bytes on disk of the database and its write-ahead log."""
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += Path(f"{self.path}{suffix}").stat().st_size
        return total

    async def claim_checks(self, owner: str, completed_before: float, now: float,
                           lease: float, limit: int) -> list[CheckRow]:
        """The due checks not handed out in the last ``lease`` seconds; the file has one
        process (its lock), so the claims live in memory and a restart resumes them all."""
        for key in [k for k, until in self._claims.items() if until <= now]:
            del self._claims[key]
        rows = await asyncio.to_thread(self._due_checks, completed_before,
                                       limit + len(self._claims))
        claimed = [r for r in rows if r[:3] not in self._claims][:limit]
        self._claims.update((r[:3], now + lease) for r in claimed)
        return claimed

    async def release_checks(self, owner: str) -> None:
        """Forget the claims: this process is the only claimant."""
        self._claims.clear()

    def _due_checks(self, completed_before: float, limit: int) -> list[CheckRow]:
        try:
            conn = self._connect()
            try:
                return [CheckRow(*r) for r in conn.execute(
                    "SELECT * FROM checks WHERE completed < ? ORDER BY completed LIMIT ?",
                    (completed_before, limit))]
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read state database {self.path}: {exc}") from exc

    async def commit(self, changes: Changes, work: Work | None = None) -> None:
        """Make ``changes`` (made by ``work``) durable; returns once they are synced, raises
        ``StoreError`` if not."""
        if self._closed:
            raise StoreError("state store is closed")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._pending.append((changes, fut, work))
        if not self._flush_scheduled and self._writing is None:
            # Runs after every callback already queued: those callers join this batch. While
            # a commit runs, the batch is handed over when it returns (``_written``).
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        await fut

    def follow(self, follower: Follower) -> None:
        """Nothing to follow (this process is the file's only writer): ``follower`` is only
        told to undo a change the database refuses."""
        self._follower = follower

    async def submit(self, work: Work) -> None:
        """``work`` runs at once (the model is current: no other writer) and joins the batch.

        Nothing to write (a redelivery) is answered as soon as everything before it is durable:
        at once when no commit is queued or running, else with the last batch.
        """
        changes = work()
        if changes or self._pending or not self.healthy:
            await self.commit(changes, work)
        elif self._writing is not None:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._writing.append((changes, fut, work))
            await fut

    def resume(self) -> None:
        """Accept changes again after a failure, once the owner has reloaded its state."""
        stale, self._pending = self._pending, []
        settle((f for _, f, _ in stale),
               StoreError("state store is recovering from a failed write"))
        self._rejecting = False

    def _flush(self) -> None:
        """Hand the queued batch to the writer thread (on the loop, with no commit running)."""
        self._flush_scheduled = False
        batch, self._pending = self._pending, []
        error = self._refusal()
        rows = [c for c, _, _ in batch if c]
        if error is not None or not rows:
            # Refused, or only redeliveries: what they repeat is durable (no commit runs).
            settle((f for _, f, _ in batch), error)
            return
        self._writing = batch
        self._jobs.put((asyncio.get_running_loop(), rows, batch))

    def _refusal(self) -> StoreError | None:
        """Why nothing may be written now, or None."""
        if self._closed:
            return StoreError("state store is closed")
        if self._rejecting:
            return StoreError("state store is recovering from a failed write")
        if self._guard.lost is not None:
            # Counted as a failure so the owner reloads (from the open connection) and its
            # model does not claim what this batch changed.
            self.failures += 1
            self._rejecting = True
            return sqlite_guard.lost_error()
        return None

    def _write(self) -> None:
        """The writer thread: commit each batch handed over and answer on the loop; once idle
        for IDLE_CHECKPOINT_SECONDS after a commit, copy the log into the database file."""
        dirty = False
        while True:
            try:
                job = self._jobs.get(timeout=IDLE_CHECKPOINT_SECONDS if dirty else None)
            except queue.Empty:
                dirty = False
                self._guard.checkpoint()
                continue
            if job is None:
                return
            loop, rows, batch = job
            error = self._commit_rows(rows)
            dirty = not isinstance(error, StoreError)  # a refusal commits those before it
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(self._written, batch, error)

    def _written(self, batch: _Pending, error: StoreError | sqlite_rows.Refusal | None) -> None:
        """On the loop: answer the committed batch, then hand over what queued meanwhile."""
        self._writing = None
        if isinstance(error, tuple):
            self._isolate(batch, *error)
            error = None
        elif error is not None:
            self.failures += 1
            self._rejecting = True
        else:
            self._commits += 1
            for changes, _, _ in batch:
                for key in changes.checked:
                    self._claims.pop(key, None)
        settle((f for _, f, _ in batch), error)
        if self._pending and not self._flush_scheduled:
            self._flush()

    def _isolate(self, batch: _Pending, index: int, why: Exception) -> None:
        """The database refused the ``index``-th change of ``batch`` (those before it are
        committed): answer it alone, undo it and every later change in the model, and queue
        the later works to run again (they were decided on a model that held it)."""
        bad = [e for e in batch if e[0]][index]
        at = next(i for i, e in enumerate(batch) if e is bad)
        redo, batch[at:] = batch[at + 1:] + self._pending, []
        undo = [bad[0], *(c for c, _, _ in redo)]
        if self._follower is not None:
            with self._conn_lock:
                stored = sqlite_rows.stored(self._conn, undo)
            self._follower.revert(undo, stored)
        log.warning("state database refused a change, the rest of its batch is stored: %s", why)
        settle([bad[1]], Refused(f"the state database refused it: {why}"))
        self._pending = [(c if work is None else work(), f, work) for c, f, work in redo]

    def _commit_rows(self, rows: list[Changes]) -> StoreError | sqlite_rows.Refusal | None:
        """Write ``rows`` in one transaction; the error, the change the database refused (those
        before it are committed), or None once they are synced."""
        if not rows:
            return None
        if not self._guard.intact():
            return sqlite_guard.lost_error()
        try:
            with self._conn_lock:
                refused = self._apply(rows)
        except (sqlite3.Error, OSError) as exc:
            return StoreError(f"state store write failed: {exc}")
        # Again after the commit: a file or log removed while it ran took the commit with it.
        return refused if self._guard.intact() else sqlite_guard.lost_error()

    def _apply(self, rows: list[Changes]) -> sqlite_rows.Refusal | None:
        return sqlite_rows.commit(self._conn, rows)  # a method: bench/commit.py times it

