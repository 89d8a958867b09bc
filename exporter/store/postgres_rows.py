"""A batch of ``Changes`` as PostgreSQL sees it: its net rows, written in one go, and its
encoding in the ``log`` table, from which the other replicas apply it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg
import orjson

from exporter.store.base import Changes, DeliveryRow, RunRow, SeriesRow

Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy


@dataclass(slots=True)
class _Net:
    """The net effect of a batch of ``Changes``, applied in order, as rows to write."""

    series: dict[tuple[str, str, str, str], SeriesRow] = field(default_factory=dict)
    runs: dict[tuple[str, str], RunRow | None] = field(default_factory=dict)
    deliveries: dict[tuple[str, str, str, float], DeliveryRow | None] = field(
        default_factory=dict)
    #: Deliveries deleted at some point of the batch: deleted first, even if inserted again.
    deleted: set[tuple[str, str, str, float]] = field(default_factory=set)
    received_before: float | None = None
    label_values: set[tuple[str, str]] = field(default_factory=set)
    gauges: dict[str, float] = field(default_factory=dict)

    def add(self, c: Changes) -> None:
        self.label_values.update(c.label_values)
        for s in c.series:
            self.series[(s.account, s.partner, s.export_type, s.frequency)] = s
        for r in c.runs:
            self.runs[(r.account, r.export_id)] = r
        for k in c.deleted_runs:
            self.runs[k] = None
        for d in c.deliveries:
            self.deliveries[(d.account, d.export_id, d.status, d.event_time)] = d
        for dk in c.deleted_deliveries:
            self.deliveries[dk] = None
            self.deleted.add(dk)
        horizon = c.deliveries_received_before
        if horizon is not None:
            self.received_before = max(horizon, self.received_before or horizon)
            for dk, row in self.deliveries.items():
                if row is not None and row.received < horizon:
                    self.deliveries[dk] = None
        self.gauges.update(c.gauges)


async def write_batch(conn: Conn, batch: Sequence[Changes]) -> None:
    """Write ``batch``: its net effect (``write_rows``) in one go, or change by change when it
    holds a forget (by hand and rare), whose deletions keep their place among its changes."""
    if not any(c.forgets for c in batch):
        await write_rows(conn, batch)
        return
    for c in batch:
        await write_rows(conn, [c])
        if c.forgets:
            await conn.executemany(
                "DELETE FROM series WHERE account = $1 AND partner = $2 AND export_type = $3 "
                "AND frequency = $4", c.deleted_series)
            await conn.executemany("DELETE FROM gauges WHERE key = $1",
                                   [(k,) for k in c.deleted_gauges])


async def write_rows(conn: Conn, batch: Sequence[Changes]) -> None:
    """Write the net effect of ``batch``; a delivery already stored fails the transaction (the
    model missed it, so it must be reloaded rather than answer on a wrong decision)."""
    net = _Net()
    for c in batch:
        net.add(c)
    if net.label_values:
        await conn.executemany("INSERT INTO label_values VALUES ($1, $2) ON CONFLICT DO NOTHING",
                               sorted(net.label_values))
    if net.series:
        await conn.executemany(
            "INSERT INTO series VALUES ($1, $2, $3, $4, $5) ON CONFLICT "
            "(account, partner, export_type, frequency) DO UPDATE SET data = excluded.data",
            list(net.series.values()))
    await _write_runs(conn, net)
    if net.received_before is not None:
        await conn.execute("DELETE FROM deliveries WHERE received < $1", net.received_before)
    gone = net.deleted | {k for k, d in net.deliveries.items() if d is None}
    if gone:
        await conn.executemany("DELETE FROM deliveries WHERE account = $1 AND export_id = $2 "
                               "AND status = $3 AND event_time = $4", sorted(gone))
    added = [d for d in net.deliveries.values() if d is not None]
    if added:
        await conn.executemany("INSERT INTO deliveries VALUES ($1, $2, $3, $4, $5)", added)
    if net.gauges:
        await conn.executemany(
            "INSERT INTO gauges VALUES ($1, $2) ON CONFLICT (key) DO UPDATE "
            "SET value = excluded.value", list(net.gauges.items()))


async def _write_runs(conn: Conn, net: _Net) -> None:
    gone = [k for k, r in net.runs.items() if r is None]
    if gone:
        await conn.executemany("DELETE FROM runs WHERE account = $1 AND export_id = $2", gone)
    kept = [r for r in net.runs.values() if r is not None]
    if kept:
        await conn.executemany(
            "INSERT INTO runs VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT "
            "(account, export_id) DO UPDATE SET partner = excluded.partner, "
            "export_type = excluded.export_type, frequency = excluded.frequency, "
            "started = excluded.started, last_finished = excluded.last_finished, "
            "updated = excluded.updated", kept)


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
            deleted_gauges=list(forgot_gauges),
        ))
    return out
