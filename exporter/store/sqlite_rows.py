"""A batch of ``Changes`` as SQLite sees it: its net rows (``base.net``), and the rows stored for
the keys it touches, which undo it in a model when the database refuses it."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from exporter.store.base import WRITE_ORDER, Changes, Keys, RunRow, SeriesRow, Snapshot, net

#: The statement of each kind of change in a set of ``net`` (applied in ``WRITE_ORDER``).
_WRITES: Final = {
    "label_values": "INSERT OR IGNORE INTO label_values VALUES (?, ?)",
    "series": "INSERT OR REPLACE INTO series VALUES (?,?,?,?,?)",
    "runs": "INSERT OR REPLACE INTO runs VALUES (?,?,?,?,?,?,?,?)",
    "deleted_runs": "DELETE FROM runs WHERE account = ? AND export_id = ?",
    "deleted_deliveries": "DELETE FROM deliveries WHERE account = ? AND export_id = ? "
                          "AND status = ? AND event_time = ?",
    "deliveries": "INSERT OR IGNORE INTO deliveries VALUES (?,?,?,?,?)",
    "gauges": "INSERT OR REPLACE INTO gauges VALUES (?, ?)",
    "checks": "INSERT OR IGNORE INTO checks VALUES (?,?,?,?,?,?,?)",
    "checked": "DELETE FROM checks WHERE account = ? AND export_id = ? AND started = ?",
    "deleted_series": "DELETE FROM series WHERE account = ? AND partner = ? "
                      "AND export_type = ? AND frequency = ?",
    "deleted_gauges": "DELETE FROM gauges WHERE key = ?",
}
#: What SQLite raises for a value it will not hold (a constraint, a trigger, a size limit).
REFUSALS: Final = (sqlite3.IntegrityError, sqlite3.DataError)
#: A change of a batch that the database refused (its index in the rows), and why.
Refusal = tuple[int, Exception]


def commit(conn: sqlite3.Connection, rows: list[Changes]) -> Refusal | None:
    """Write ``rows`` in one transaction; when the database refuses them, each in a savepoint
    of its own up to the first it refuses, which is returned (those before it are committed)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("SAVEPOINT batch")
        try:
            write_rows(conn, rows)
            refused = None
        except REFUSALS:
            conn.execute("ROLLBACK TO batch")
            refused = _first_refused(conn, rows)
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    return refused


def _first_refused(conn: sqlite3.Connection, rows: list[Changes]) -> Refusal | None:
    for i, c in enumerate(rows):
        conn.execute("SAVEPOINT one")
        try:
            write_rows(conn, [c])
        except REFUSALS as exc:
            conn.execute("ROLLBACK TO one")
            return i, exc
        finally:
            conn.execute("RELEASE one")
    return None


def write_rows(conn: sqlite3.Connection, batch: Sequence[Changes]) -> None:
    """Write the net effect of ``batch`` in the open transaction."""
    for step in net(batch):
        for attr in WRITE_ORDER:
            if rows := getattr(step, attr):
                conn.executemany(_WRITES[attr], rows)
        if (cut := step.deliveries_received_before) is not None:
            conn.execute("DELETE FROM deliveries WHERE received < ?", (cut,))


def stored(conn: sqlite3.Connection, batch: Sequence[Changes]) -> Snapshot:
    """The rows stored for every key ``batch`` writes or deletes, and those its expiry would
    delete (``Follower.revert``)."""
    keys = Keys.of(batch)

    def each(sql: str, params: Sequence[Sequence[object]]) -> list[Any]:
        return [row for p in params for row in conn.execute(sql, p)]

    deliveries = each("SELECT * FROM deliveries WHERE account = ? AND export_id = ? AND "
                      "status = ? AND event_time = ?", keys.deliveries)
    deliveries += conn.execute("SELECT * FROM deliveries WHERE received < ?",
                               (keys.received_before,)).fetchall()
    deliveries.sort(key=lambda d: d[4])  # oldest first, as a snapshot's
    return Snapshot(
        series=[SeriesRow(*r) for r in each(
            "SELECT * FROM series WHERE account = ? AND partner = ? AND export_type = ? AND "
            "frequency = ?", keys.series)],
        runs=[RunRow(*r) for r in each(
            "SELECT * FROM runs WHERE account = ? AND export_id = ?", keys.runs)],
        deliveries={(a, e, s, t): r for a, e, s, t, r in deliveries},
        label_values=[(a, b) for a, b in each(
            "SELECT * FROM label_values WHERE label = ? AND value = ?", keys.label_values)],
        gauges={k: v for k, v in each(
            "SELECT key, value FROM gauges WHERE key = ?", [(g,) for g in keys.gauges])},
    )
