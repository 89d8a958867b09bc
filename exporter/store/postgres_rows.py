"""A batch of ``Changes`` as PostgreSQL sees it: its net rows, written in one go, and its
encoding in the ``log`` table, from which the other replicas apply it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import asyncpg
import orjson

from exporter.store.base import (
    WRITE_ORDER,
    Changes,
    DeliveryRow,
    Keys,
    RunRow,
    SeriesRow,
    Snapshot,
    net,
)

Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


#: The statement of each kind of change in a set of ``net`` (applied in ``WRITE_ORDER``).
_WRITES: Final = {
    "label_values": "INSERT INTO label_values VALUES ($1, $2) ON CONFLICT DO NOTHING",
    "series": "INSERT INTO series VALUES ($1, $2, $3, $4, $5) ON CONFLICT "
              "(account, partner, export_type, frequency) DO UPDATE SET data = excluded.data",
    "runs": "INSERT INTO runs VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT "
            "(account, export_id) DO UPDATE SET partner = excluded.partner, "
            "export_type = excluded.export_type, frequency = excluded.frequency, "
            "started = excluded.started, last_finished = excluded.last_finished, "
            "updated = excluded.updated",
    "deleted_runs": "DELETE FROM runs WHERE account = $1 AND export_id = $2",
    "deleted_deliveries": "DELETE FROM deliveries WHERE account = $1 AND export_id = $2 "
                          "AND status = $3 AND event_time = $4",
    "deliveries": "INSERT INTO deliveries VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    "gauges": "INSERT INTO gauges VALUES ($1, $2) ON CONFLICT (key) DO UPDATE "
              "SET value = excluded.value",
    # Landing checks are not in the log: the replicas claim them from the table, and see their
    # results in the series.
    "checks": "INSERT INTO checks VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    "checked": "DELETE FROM checks WHERE account = $1 AND export_id = $2 AND started = $3",
    "deleted_series": "DELETE FROM series WHERE account = $1 AND partner = $2 "
                      "AND export_type = $3 AND frequency = $4",
    "deleted_gauges": "DELETE FROM gauges WHERE key = $1",
}


async def write_rows(conn: Conn, batch: Sequence[Changes]) -> None:
    """Write the net effect of ``batch`` (``base.net``)."""
    for step in net(batch):
        for attr in WRITE_ORDER:
            if rows := getattr(step, attr):
                await conn.executemany(_WRITES[attr], rows)
        if (cut := step.deliveries_received_before) is not None:
            await conn.execute("DELETE FROM deliveries WHERE received < $1", cut)


async def stored(conn: Conn, batch: Sequence[Changes]) -> Snapshot:
    """The rows stored for every key ``batch`` writes or deletes, and those its expiry would
    delete: what undoes it in a model (``Follower.revert``)."""
    keys = Keys.of(batch)
    series, runs, deliveries, horizon, labels, gauges = keys
    return Snapshot(
        series=[SeriesRow(*r) for r in await conn.fetch(
            "SELECT s.* FROM series s JOIN unnest($1::text[], $2::text[], $3::text[], "
            "$4::text[]) k (a, p, t, f) ON (s.account, s.partner, s.export_type, s.frequency) "
            "= (k.a, k.p, k.t, k.f)", *_columns(series, 4))],
        runs=[RunRow(*r) for r in await conn.fetch(
            "SELECT r.* FROM runs r JOIN unnest($1::text[], $2::text[]) k (a, e) "
            "ON (r.account, r.export_id) = (k.a, k.e)", *_columns(runs, 2))],
        deliveries={(a, e, s, t): r for a, e, s, t, r in await conn.fetch(
            "SELECT d.* FROM deliveries d LEFT JOIN unnest($1::text[], $2::text[], $3::text[], "
            "$4::float8[]) k (a, e, s, t) ON (d.account, d.export_id, d.status, d.event_time) "
            "= (k.a, k.e, k.s, k.t) WHERE k.a IS NOT NULL OR d.received < $5 "
            "ORDER BY d.received", *_columns(deliveries, 4), horizon)},
        label_values=[(a, b) for a, b in await conn.fetch(
            "SELECT l.* FROM label_values l JOIN unnest($1::text[], $2::text[]) k (a, b) "
            "ON (l.label, l.value) = (k.a, k.b)", *_columns(labels, 2))],
        gauges={k: v for k, v in await conn.fetch(
            "SELECT key, value FROM gauges WHERE key = ANY($1::text[])", gauges)},
    )


def _columns(keys: Sequence[tuple[object, ...]], width: int) -> list[list[object]]:
    """Keys as one list per column, for ``unnest``."""
    return [[k[i] for k in keys] for i in range(width)]


def encode(batch: Sequence[Changes]) -> bytes:
    """A log row: the batch's changes in order, as JSON (series data as hex)."""
    return orjson.dumps([[
        [[*s[:4], s.data.hex()] for s in c.series],
        [tuple(r) for r in c.runs],
        c.deleted_runs,
        [tuple(d) for d in c.deliveries],
        c.deleted_deliveries,
        c.deliveries_received_before,
        c.label_values,
        c.gauges,
        *([c.deleted_series, c.deleted_gauges] if c.forgets else []),
    ] for c in batch])


def decode(data: bytes) -> list[Changes]:
    """The changes of a log row written by ``encode`` (a change without a forget has none of
    its two lists, as before forgets existed)."""
    out = []
    for row in orjson.loads(data):
        series, runs, deleted_runs, deliveries, deleted_deliveries, before, labels, gauges = row[:8]
        forgot_series, forgot_gauges = row[8:] or ([], [])
        out.append(Changes(
            series=[SeriesRow(a, p, t, f, bytes.fromhex(h)) for a, p, t, f, h in series],
            runs=[RunRow(*r) for r in runs],
            deleted_runs=[(a, e) for a, e in deleted_runs],
            deliveries=[DeliveryRow(*d) for d in deliveries],
            deleted_deliveries=[(a, e, s, t) for a, e, s, t in deleted_deliveries],
            deliveries_received_before=before,
            label_values=[(a, b) for a, b in labels],
            gauges=[(k, v) for k, v in gauges],
            deleted_series=[(a, p, t, f) for a, p, t, f in forgot_series],
            deleted_gauges=[(k,) for (k,) in forgot_gauges],
        ))
    return out
