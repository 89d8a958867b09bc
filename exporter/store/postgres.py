"""Shared state on PostgreSQL, so that several replicas behave as one exporter.

The tables are SQLite's, plus ``log``: every committed batch of ``Changes``, numbered by ``seq``.
A batch is written in one transaction that first takes a transaction-level advisory lock, so
writers commit one at a time and in ``seq`` order. Under the lock the replica applies the log
rows it has not seen yet (``Follower.apply_remote``), then runs its queued works on that current
model (so deduplication and the run rules are decided on every replica's committed events),
writes their rows and one log row, NOTIFYs, commits, and only then answers its callers.

Between writes a follower task LISTENs, polls every second as a safety net, and applies the other
replicas' rows. A replica that lost its connection, or whose write failed (its model may then
hold changes that were never stored), refuses changes and reports unhealthy until it has
reconnected and caught up; it reloads the whole state when its model is dirty or the log was
pruned past the last row it applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any, Final

import asyncpg

from exporter.store.base import (
    Changes,
    CheckRow,
    Follower,
    Freshness,
    Refused,
    RunRow,
    SeriesRow,
    Snapshot,
    StoreError,
    Work,
    describe,
    settle,
)
from exporter.store.postgres_rows import Conn, decode, encode, stored, write_rows
from exporter.store.postgres_schema import TABLES, check_version, migrate

log = logging.getLogger(__name__)

#: Advisory lock key of writes (``postgres_schema.LOCK_MIGRATE`` is the other).
LOCK_WRITE: Final = 0x63_74_65_78_00_02
CHANNEL: Final = "clevertap_export_log"
POLL_SECONDS: Final = 1.0
#: Log rows older than this are pruned; a replica away longer reloads the whole state.
LOG_RETENTION_SECONDS: Final = 600.0
PRUNE_EVERY_SECONDS: Final = 60.0
SIZE_EVERY_SECONDS: Final = 30.0
RECONNECT_SECONDS: Final = 0.5
#: Longer than CleverTap waits for an answer (3 s): past it nobody is served by waiting.
COMMAND_TIMEOUT: Final = 5.0

#: How long a write waits for the write lock before it answers 503: well under the 3 s CleverTap
#: waits, so a replica frozen while holding it (SIGSTOP, a long GC) costs a retry, not a timeout.
LOCK_WAIT_SECONDS: Final = 1.5
#: How often the follower proves that a write commits (privileges revoked, the server's disk
#: full): ``/readyz`` says not ready until one does.
PROBE_EVERY_SECONDS: Final = 5.0

#: Every session: named in pg_stat_activity; a replica frozen inside a transaction (holding the
#: write lock) is cut off by the server after 2 s; a write waits at most LOCK_WAIT_SECONDS for
#: the lock; and a commit returns only once it is on disk, whatever the server's default
#: (``synchronous_commit = off`` there would lose acknowledged events in a crash).
_SESSION: Final = {"application_name": "clevertap-export-exporter",
                   "idle_in_transaction_session_timeout": "2000",
                   "lock_timeout": str(int(LOCK_WAIT_SECONDS * 1000)),
                   "synchronous_commit": "on"}
#: Both return the database's clock, read with every write and probe: the time expiry is
#: decided on.
_PROBE: Final = ("INSERT INTO meta (key, value) VALUES ('write_probe', $1) "
                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value "
                 "RETURNING extract(epoch FROM clock_timestamp())::float8")
_LOCK: Final = ("SELECT extract(epoch FROM clock_timestamp())::float8 "
                "FROM (SELECT pg_advisory_xact_lock($1)) AS locked")
#: The rows after ``$1``, preceded by a row of seq -1 when pruning removed some of them.
_CATCH_UP: Final = """
SELECT seq, data FROM log WHERE seq > $1
UNION ALL
SELECT -1, NULL FROM meta WHERE key = 'log_pruned_through' AND value::bigint > $1
ORDER BY seq
"""
#: One log row and the NOTIFY that other replicas receive when it commits: the writer's id
#: and the row's seq, so that a replica knows how far behind it is before it applies the row.
_APPEND: Final = """
WITH row AS (INSERT INTO log (data) VALUES ($1) RETURNING seq)
SELECT seq, pg_notify($2, $3 || ' ' || seq) FROM row
"""
#: A prefix of the log (by seq, so no replica sees a hole that is not recorded as pruned).
_PRUNE: Final = """
WITH horizon AS (
    SELECT max(seq) AS seq FROM log WHERE at < now() - make_interval(secs => $1)
), gone AS (
    DELETE FROM log WHERE seq <= (SELECT seq FROM horizon)
)
INSERT INTO meta (key, value) SELECT 'log_pruned_through', seq::text FROM horizon
WHERE seq IS NOT NULL
ON CONFLICT (key) DO UPDATE SET value = excluded.value
"""

#: Due checks nobody holds a live claim on, claimed in one statement: a row locked by another
#: replica's claim is skipped, not waited for, so each check goes to exactly one replica.
_CLAIM: Final = """
UPDATE checks SET claimed_by = $1, claimed_until = $3 + $4
WHERE (account, export_id, started) IN (
    SELECT account, export_id, started FROM checks
    WHERE completed < $2 AND (claimed_until IS NULL OR claimed_until <= $3)
    ORDER BY completed LIMIT $5 FOR UPDATE SKIP LOCKED)
RETURNING account, export_id, started, partner, export_type, frequency, completed
"""

#: What the database raises for a value it will not hold (a constraint, a type's range, a
#: size limit, a trigger), refused for the change that holds it alone.
_REFUSALS: Final = (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError,
                    asyncpg.ProgramLimitExceededError, asyncpg.RaiseError)

#: What a lost or refused connection raises, besides the server's own errors.
_DB_ERRORS: Final = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)

_Pending = list[tuple[Work, asyncio.Future[None]]]


class PostgresStore:
    """State on a PostgreSQL database that other replicas share; open with ``await open()``."""

    def __init__(self, url: str, pool: asyncpg.Pool) -> None:
        self.url = url
        self.failures = 0  # this store restores its follower itself (see ``Store.failures``)
        self._pool = pool
        self._id = uuid.uuid4().hex  # tells this replica's own NOTIFYs from the others'
        self._listener: asyncpg.Connection | None = None
        self._follower: Follower | None = None
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._pending: _Pending = []
        self._lock = asyncio.Lock()  # one of: a write, a catch-up, a reload
        self._news = asyncio.Event()
        self._snapshot: Snapshot | None = None
        self._seq = 0  # the last log row the model holds
        self._head = 0  # the last log row heard of (committed by any replica)
        self._current_at = time.monotonic()  # when the model last held every committed row
        #: The database's clock as last read, and this host's monotonic clock then.
        self._clock: tuple[float, float] | None = None
        self._live = False  # connected and caught up
        self._dirty = False  # the model may hold changes the database does not
        self._closed = False
        self._refused = ""  # why the database was last refused, logged once
        self._size = 0
        self._size_at = 0.0
        self._prune_at = 0.0
        self._probe_at = 0.0

    @classmethod
    async def open(cls, url: str) -> PostgresStore:
        """Connect, migrate the schema and read the state; ``StoreError`` if any fails."""
        where = describe(url)
        try:
            # No minimum size: the pool would retry (and log) its floor during an outage.
            pool = await asyncpg.create_pool(url, min_size=0, max_size=2, reset=_keep_session,
                                             command_timeout=COMMAND_TIMEOUT,
                                             timeout=COMMAND_TIMEOUT, server_settings=_SESSION)
        except (*_DB_ERRORS, ValueError) as exc:
            raise StoreError(f"cannot open the state database {where}: {exc}") from exc
        store = cls(url, pool)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
            await store._connect_listener()
            store._snapshot, store._seq = await store._read_snapshot()
            store._head = store._seq
        except BaseException as exc:
            await store.close()
            if isinstance(exc, _DB_ERRORS):
                raise StoreError(f"cannot open the state database {where}: {exc}") from exc
            raise
        store._live = True
        return store

    async def close(self) -> None:
        """Write what is queued, stop following and close the connections."""
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self._writer
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._drop_listener()
        await self._pool.close()

    @property
    def healthy(self) -> bool:
        """Connected, caught up with every other replica, and the model is what is stored."""
        return self._live and not self._dirty and not self._closed

    def check(self) -> bool:
        """The follower task's verdict: it reads the database every ``POLL_SECONDS``."""
        return self.healthy

    def size_bytes(self) -> int:
        """Bytes of the tables and their indexes, as last measured."""
        return self._size

    def freshness(self) -> Freshness:
        """The log row the model holds, how far it is behind what was heard of, and the
        database's clock as last read (every write and probe), advanced by the monotonic
        clock, which a change of this host's clock leaves alone."""
        now = time.monotonic()
        behind = 0.0 if self.healthy and self._head <= self._seq else now - self._current_at
        database = None if self._clock is None else self._clock[1] + now - self._clock[0]
        return Freshness(self._seq, max(0, self._head - self._seq), behind, database)

    async def claim_checks(self, owner: str, completed_before: float, now: float,
                           lease: float, limit: int) -> list[CheckRow]:
        """Claim due checks for ``owner`` in the table every replica shares."""
        try:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(_CLAIM, owner, completed_before, now, lease, limit)
        except _DB_ERRORS as exc:
            raise StoreError(f"cannot claim landing checks: {exc}") from exc
        return [CheckRow(*r) for r in rows]

    async def release_checks(self, owner: str) -> None:
        try:
            async with self._pool.acquire() as conn:
                await conn.execute("UPDATE checks SET claimed_by = NULL, claimed_until = NULL "
                                   "WHERE claimed_by = $1", owner)
        except _DB_ERRORS as exc:
            raise StoreError(f"cannot release landing checks: {exc}") from exc

    def load(self) -> Snapshot:
        """The state as read when the store opened, handed over once (the owner keeps it)."""
        snapshot, self._snapshot = self._snapshot, None
        if snapshot is None:
            raise StoreError("the state is restored by the store itself")
        return snapshot

    def resume(self) -> None:
        """Nothing to do: after a failure the store restores its follower itself."""

    def follow(self, follower: Follower) -> None:
        """Keep ``follower`` current with the log from the state it loaded."""
        self._follower = follower
        self._task = asyncio.create_task(self._follow())

    async def submit(self, work: Work) -> None:
        """Queue ``work`` for the next transaction; returns once that has committed."""
        if not self.healthy:
            raise StoreError("the state database is not reachable or this replica is "
                             "catching up")
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((work, fut))
        if self._writer is None or self._writer.done():
            # Starts on the next loop turn: every caller queued before then joins the batch.
            self._writer = asyncio.create_task(self._write_batches())
        await fut

    async def _write_batches(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            if not self.healthy:  # refused before any work ran: the model is unchanged
                settle((fut for _, fut in batch), StoreError("the state database is not "
                                                              "reachable"))
                continue
            error: StoreError | None = None
            try:
                await self._write(batch)
            except asyncpg.LockNotAvailableError:
                # Taken before any work ran: the model is unchanged, nothing to reload.
                settle((fut for _, fut in batch), StoreError(
                    f"another replica held the write lock for {LOCK_WAIT_SECONDS:g} s"))
                continue
            except _DB_ERRORS as exc:
                error = StoreError(f"state database write failed: {exc}")
            except StoreError as exc:
                error = exc
            except Exception as exc:
                log.exception("state write failed")
                error = StoreError(f"state write failed: {exc}")
            if error is not None:
                self._dirty = True  # works may have run: their changes are in the model only
                self._news.set()  # the follower task reloads the model now
            settle((fut for _, fut in batch), error)

    async def _write(self, batch: _Pending) -> None:
        async with self._lock, self._pool.acquire() as conn:
            changes: list[Changes] = []
            seq = None
            try:
                async with conn.transaction():
                    await self._lock_and_catch_up(conn)
                    changes = [c for c in (work() for work, _ in batch) if c]
                    seq = await self._append(conn, changes)
            except _REFUSALS:
                # Rolled back: the model holds the batch, the database not. (No savepoint on
                # the usual path: it costs a round trip each way, and an xid, per batch.)
                async with conn.transaction():
                    await self._lock_and_catch_up(conn, undo=changes)
                    seq = await self._append(conn, await self._one_by_one(conn, batch),
                                             written=True)
            if seq is not None:  # committed: the model holds it already
                self._seq = seq
                self._caught_up()

    async def _lock_and_catch_up(self, conn: Conn, undo: Sequence[Changes] = ()) -> None:
        """Take the write lock and apply what other replicas committed; first undo ``undo``
        in the model, from what is stored now (then the others' rows are applied on top)."""
        self._read_clock(await conn.fetchval(_LOCK, LOCK_WRITE))
        if undo:
            assert self._follower is not None
            self._follower.revert(undo, await stored(conn, undo))
        # After the lock: every earlier writer has committed, this sees all of it.
        if not self._apply(await conn.fetch(_CATCH_UP, self._seq)):
            raise StoreError("the log was pruned past this replica's state")
        self._caught_up()

    async def _append(self, conn: Conn, changes: list[Changes], *, written: bool = False
                      ) -> int | None:
        """Write ``changes`` (unless ``written``) and their log row; the row's seq, or None
        with nothing to write."""
        seq = None
        if changes:
            if not written:
                await write_rows(conn, changes)
            seq = await conn.fetchval(_APPEND, encode(changes), CHANNEL, self._id)
        if time.monotonic() >= self._prune_at:
            self._prune_at = time.monotonic() + PRUNE_EVERY_SECONDS
            await conn.execute(_PRUNE, LOG_RETENTION_SECONDS)
        return seq

    async def _one_by_one(self, conn: Conn, batch: _Pending) -> list[Changes]:
        """The database refused the batch's rows, now undone in the model: run each work again
        and write its rows in a savepoint of its own, so that only a change the database
        refuses fails (``Refused``, answered at once) and the others are written. Returns
        those, for their log row."""
        assert self._follower is not None
        kept = []
        for work, fut in batch:
            if not (c := work()):
                continue
            try:
                async with conn.transaction():
                    await write_rows(conn, [c])
            except _REFUSALS as exc:
                self._follower.revert([c], await stored(conn, [c]))
                log.warning("state database refused a change, the rest of its batch is "
                            "stored: %s", exc)
                if not fut.done():
                    fut.set_exception(Refused(f"the state database refused it: {exc}"))
                continue
            kept.append(c)
        return kept

    def _caught_up(self) -> None:
        self._head = max(self._head, self._seq)
        if self._head <= self._seq:
            self._current_at = time.monotonic()

    def _read_clock(self, database: float) -> None:
        self._clock = (time.monotonic(), database)

    def _apply(self, rows: Sequence[asyncpg.Record]) -> bool:
        """Apply log rows to the follower; False when some were pruned before it saw them."""
        if not rows:
            return True
        if rows[0]["seq"] < 0:
            return False
        assert self._follower is not None
        self._follower.apply_remote([c for r in rows for c in decode(r["data"])])
        self._seq = rows[-1]["seq"]
        return True

    async def _follow(self) -> None:
        while not self._closed:
            try:
                if self._listener is None or self._listener.is_closed():
                    # Not ready until caught up: what it missed meanwhile is not in the model.
                    self._lost("connection closed")
                    await self._connect_listener()
                    assert self._listener is not None
                    # A newer exporter may have migrated the schema meanwhile.
                    await check_version(self._listener)
                await self._catch_up()
                if not self._live:
                    log.info("state database %s: connected and caught up", describe(self.url))
                await self._probe()
                self._live = True
                await self._measure()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_SECONDS):
                        await self._news.wait()
                self._news.clear()
            except StoreError as exc:  # a newer schema: refused until this exporter is too
                if self._live or str(exc) != self._refused:
                    log.error("state database %s: %s", describe(self.url), exc)
                self._refused = str(exc)
                self._lost(str(exc))
                await self._drop_listener()
                await asyncio.sleep(RECONNECT_SECONDS)
            except _DB_ERRORS as exc:
                self._lost(str(exc) or type(exc).__name__)
                await self._drop_listener()
                await asyncio.sleep(RECONNECT_SECONDS)
            except Exception:  # e.g. a log row it cannot apply: the model is half changed
                log.exception("could not apply the state log; reloading the whole state")
                self._lost("log not applied")
                self._dirty = True
                await asyncio.sleep(RECONNECT_SECONDS)

    def _lost(self, reason: str) -> None:
        if self._live:
            log.error("lost the state database %s (%s); refusing webhooks until reconnected "
                      "and caught up", describe(self.url), reason)
        self._live = False

    async def _catch_up(self) -> None:
        async with self._lock:
            if not self._dirty:
                assert self._listener is not None
                if self._apply(await self._listener.fetch(_CATCH_UP, self._seq)):
                    self._caught_up()
                    return
                log.warning("the state log was pruned past this replica's state: reloading")
            snapshot, seq = await self._read_snapshot()
            assert self._follower is not None
            self._follower.restore(snapshot)
            self._seq, self._dirty = seq, False
            self._caught_up()

    async def _read_snapshot(self) -> tuple[Snapshot, int]:
        async with self._pool.acquire() as conn, conn.transaction(
                isolation="repeatable_read", readonly=True):
            snapshot = Snapshot(
                series=[SeriesRow(*r) for r in await conn.fetch(
                    "SELECT account, partner, export_type, frequency, data FROM series")],
                runs=[RunRow(*r) for r in await conn.fetch(
                    "SELECT account, export_id, partner, export_type, frequency, started, "
                    "last_finished, updated FROM runs")],
                deliveries={(a, e, s, t): r for a, e, s, t, r in await conn.fetch(
                    "SELECT account, export_id, status, event_time, received FROM deliveries "
                    "ORDER BY received")},
                label_values=[(a, b) for a, b in await conn.fetch(
                    "SELECT label, value FROM label_values")],
                gauges={k: v for k, v in await conn.fetch("SELECT key, value FROM gauges")},
            )
            seq = await conn.fetchval(
                "SELECT greatest((SELECT max(seq) FROM log), (SELECT value::bigint FROM meta "
                "WHERE key = 'log_pruned_through'), 0)")
        return snapshot, int(seq)

    async def _connect_listener(self) -> None:
        conn = await asyncpg.connect(self.url, timeout=COMMAND_TIMEOUT,
                                     command_timeout=COMMAND_TIMEOUT, server_settings=_SESSION)
        conn.add_termination_listener(self._on_lost)
        self._listener = conn
        await conn.add_listener(CHANNEL, self._on_notify)

    async def _drop_listener(self) -> None:
        conn, self._listener = self._listener, None
        if conn is not None:
            conn.terminate()  # no goodbye: the server may be gone

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: object) -> None:
        writer, _, seq = str(payload).partition(" ")
        if writer != self._id:
            if seq.isdigit():
                self._head = max(self._head, int(seq))
            self._news.set()

    def _on_lost(self, conn: Any) -> None:
        self._news.set()

    async def _probe(self) -> None:
        """A small committed write every PROBE_EVERY_SECONDS; raises what refused it."""
        if self._live and time.monotonic() < self._probe_at:
            return
        assert self._listener is not None
        self._read_clock(await self._listener.fetchval(_PROBE, repr(time.time())))
        self._probe_at = time.monotonic() + PROBE_EVERY_SECONDS

    async def _measure(self) -> None:
        if time.monotonic() < self._size_at:
            return
        self._size_at = time.monotonic() + SIZE_EVERY_SECONDS
        assert self._listener is not None
        self._size = int(await self._listener.fetchval(
            "SELECT sum(pg_total_relation_size(t::regclass)) FROM unnest($1::text[]) t",
            list(TABLES)) or 0)


async def _keep_session(conn: Conn) -> None:
    """The pool's reset on release, a round trip per write, is not needed: transactions here
    leave no session state (their locks end with them, nothing LISTENs on a pooled one)."""
