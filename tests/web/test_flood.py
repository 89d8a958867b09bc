"""Flood tests: hostile volumes of label values and export ids leave the exporter bounded.

The in-process floods drive ``ExportTracker.ingest`` with bodies parsed by ``parse_body`` on a
real SQLite store (concurrent batches, so the group commit shares disk syncs), and measure the
series count, the model's table sizes, the store size and the process RSS. The suite runs
FLOOD_EVENTS (default 20,000) events per flood; ``FLOOD_EVENTS=1000000 pytest -s
tests/web/test_flood.py`` runs the full million and prints the figures. A smaller flood goes
through HTTP as well.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import psutil
import pytest

from exporter.domain import normalize
from exporter.domain.labelcap import OTHER_SERIES
from exporter.domain.limits import Limits
from exporter.domain.payload import StatusEvent, parse_body
from exporter.domain.tracker import ExportTracker
from exporter.store.sqlite import SQLiteStore
from tests.helpers import Exporter, limits

pytestmark = pytest.mark.slow

FLOOD_EVENTS = int(os.environ.get("FLOOD_EVENTS", "20000"))
BATCH = 2000  # events ingested concurrently, sharing one group commit
DEADLINE_SECONDS = max(60.0, FLOOD_EVENTS / 1000)  # 1 ms per event at worst
UTC = ZoneInfo("UTC")
RNG_SEED = 7


def body(export_id: str, status: str, when: float, partner: str = "Amazon S3",
         type_: str = "Events", frequency: str = "Every 4 hours") -> bytes:
    return json.dumps({"Export Request Id": export_id, "Partner": partner, "Type": type_,
                       "Status": status, "Frequency": frequency,
                       "Date and Time": when}).encode()


def checkpointed_size(store: SQLiteStore) -> int:
    """The database size once the WAL is folded in: the data, without the WAL's swings."""
    conn = sqlite3.connect(store.path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return store.size_bytes()


def rss_bytes() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


class Flood:
    """A tracker on a real store, fed in concurrent batches with a deadline."""

    def __init__(self, path: Path, bounds: Limits,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = SQLiteStore(path)
        self.tracker = ExportTracker(self.store, bounds, clock)
        self.deadline = time.monotonic() + DEADLINE_SECONDS

    async def feed(self, bodies: Iterator[tuple[str, bytes]], received: float | None = None,
                   ) -> None:
        batch: list[Awaitable[str]] = []
        for account, raw in bodies:
            event = parse_body(raw, account, time.time() if received is None else received,
                               UTC)
            assert isinstance(event, StatusEvent), event
            batch.append(self.tracker.ingest(event))
            if len(batch) >= BATCH:
                await asyncio.gather(*batch)
                batch.clear()
                assert time.monotonic() < self.deadline, "flood exceeded its time budget"
        await asyncio.gather(*batch)

    def close(self) -> None:
        self.store.close()


def label_bodies(n: int) -> Iterator[tuple[str, bytes]]:
    """Every event brings a fresh partner and type string; every other one a fresh account
    and frequency too, the rest combine 32 accounts with 32 frequencies (combinations that
    the per-label caps alone would let multiply into cap**4 series)."""
    rng = random.Random(RNG_SEED)
    now = time.time()
    for i in range(n):
        tag = f"{i}-{rng.getrandbits(32):x}"
        if i % 2:
            account, frequency = f"acct-{tag}", f"Every {tag} minutes"
        else:
            account, frequency = f"a{rng.randrange(32)}", f"F{rng.randrange(32)}"
        yield account, body(f"id{i}", "Initiated" if i % 3 else "Completed", now,
                            f"Partner {tag}", f"Type {tag}", frequency)


async def test_label_flood_keeps_series_under_caps(tmp_path: Path) -> None:
    bounds = limits(max_label_values=32, max_series=200)
    flood = Flood(tmp_path / "state.db", bounds)
    before = len(flood.tracker.series)
    started = time.monotonic()
    try:
        await flood.feed(label_bodies(FLOOD_EVENTS))
        t = flood.tracker
        series_after = len(t.series)
        print(f"\nlabel flood: {FLOOD_EVENTS} events, each with a distinct partner and type "
              f"string, half with distinct account and frequency strings too: series "
              f"{before} -> {series_after} (cap "
              f"{bounds.max_series} + 'other'), admitted per label "
              f"{ {k: len(v) for k, v in t.labels.admitted.items()} }, folded {t.labels.overflow}, "
              f"{time.monotonic() - started:.1f} s")
        assert series_after <= bounds.max_series + 1
        assert OTHER_SERIES in t.series
        assert all(len(v) <= bounds.max_label_values for v in t.labels.admitted.values())
        assert t.labels.overflow["series"] > 0
        assert t.labels.overflow["partner"] > 0
        for key in t.series:
            assert all(normalize.LABEL_VALUE_RE.fullmatch(v) for v in key[1:])
        # Every event is still counted, in the series it was folded into.
        total = sum(n for s in t.series.values() for n in s.status_counts.values())
        assert total == FLOOD_EVENTS
    finally:
        flood.close()
    # The admitted values and the cap survive a restart.
    flood = Flood(tmp_path / "state.db", bounds)
    try:
        assert len(flood.tracker.series) == series_after
        await flood.feed(label_bodies(BATCH))
        assert len(flood.tracker.series) <= bounds.max_series + 1
    finally:
        flood.close()


def id_bodies(start: int, n: int, now: float) -> Iterator[tuple[str, bytes]]:
    """Distinct export ids: two in three get Initiated then Completed, one in three stays
    in flight."""
    for i in range(start, start + n):
        yield "flood", body(f"x{i}", "Initiated", now - 60)
        if i % 3:
            yield "flood", body(f"x{i}", "Completed", now)


async def test_id_flood_keeps_memory_and_store_bounded(tmp_path: Path) -> None:
    defaults = limits()
    bounds = limits(max_remembered_deliveries=min(defaults.max_remembered_deliveries,
                                                  FLOOD_EVENTS // 8),
                    max_runs=min(defaults.max_runs, FLOOD_EVENTS // 16))
    flood = Flood(tmp_path / "state.db", bounds)
    t = flood.tracker
    exports = FLOOD_EVENTS  # distinct ids; 5 events per 3 exports
    half = exports // 2
    now = time.time()
    rss0, size0 = rss_bytes(), checkpointed_size(flood.store)
    started = time.monotonic()
    try:
        await flood.feed(id_bodies(0, half, now))
        rss1, size1 = rss_bytes(), checkpointed_size(flood.store)
        await flood.feed(id_bodies(half, exports - half, now))
        wal_peak = flood.store.size_bytes()
        rss2, size2 = rss_bytes(), checkpointed_size(flood.store)
        elapsed = time.monotonic() - started
        counts = t.series[("flood", "amazon_s3", "events", "4h")].status_counts
        print(f"\nid flood: {exports} distinct export ids ({counts}): "
              f"RSS {rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} (half) -> {rss2 / 2**20:.1f} MiB, "
              f"store {size0 / 2**20:.2f} -> {size1 / 2**20:.2f} -> {size2 / 2**20:.2f} MiB "
              f"({wal_peak / 2**20:.2f} with the WAL), "
              f"deliveries {len(t.deliveries)}/{bounds.max_remembered_deliveries}, runs "
              f"{len(t.runs)}/{bounds.max_runs} ({len(t.in_flight)} in flight), "
              f"forgotten {t.forgotten}, {elapsed:.1f} s")
        assert len(t.deliveries) <= bounds.max_remembered_deliveries
        assert len(t.runs) <= bounds.max_runs
        assert len(t.in_flight) <= len(t.runs)
        assert t.forgotten["delivery"] > 0 and t.forgotten["run"] > 0
        # The limits were reached in the first half: the second half adds (almost) nothing.
        assert size2 <= size1 * 1.1 + 2**20
        assert rss2 <= rss1 * 1.1 + 16 * 2**20
    finally:
        flood.close()
    # What is stored is what the limits allow, and a restart loads no more.
    flood = Flood(tmp_path / "state.db", bounds)
    try:
        assert len(flood.tracker.deliveries) <= bounds.max_remembered_deliveries
        assert len(flood.tracker.runs) <= bounds.max_runs
    finally:
        flood.close()


async def test_retention_and_in_flight_timeout_prune_by_age(tmp_path: Path) -> None:
    now = [time.time()]
    bounds = limits(in_flight_timeout=48 * 3600.0, retention=7 * 86400.0)
    flood = Flood(tmp_path / "state.db", bounds, clock=lambda: now[0])
    t = flood.tracker
    n = min(FLOOD_EVENTS, 10_000) * 3 // 5
    sizes = []
    try:
        for cycle in range(3):
            await flood.feed(id_bodies(cycle * n, n, now[0]), received=now[0])
            running = len(t.in_flight)
            assert running and t.deliveries and len(t.runs) == n
            now[0] += 49 * 3600  # past the in-flight timeout
            assert await t.expire() == running
            assert not t.in_flight
            now[0] += 7 * 86400  # past the retention: deliveries and finished runs go
            await t.expire()
            assert not t.deliveries
            assert len(t.runs) == running  # abandoned runs count as finished when abandoned
            now[0] += 7 * 86400
            await t.expire()
            assert not t.runs
            sizes.append(checkpointed_size(flood.store))
        print(f"\nage pruning: 3 cycles of {n} exports ({running} left in flight, abandoned "
              f"after the timeout, then everything forgotten after the retention): store "
              f"{' -> '.join(f'{s / 2**20:.2f}' for s in sizes)} MiB")
        # Freed pages are reused: repeating the cycle does not grow the file.
        assert sizes[2] <= sizes[1] * 1.1 + 2**20
    finally:
        flood.close()


async def test_http_flood_keeps_series_under_caps(
    start_exporter: Callable[..., Awaitable[Exporter]],
) -> None:
    exporter = await start_exporter("--max-label-values", "8", "--max-series", "20")
    n = 1500
    rng = random.Random(RNG_SEED)

    async def post(i: int) -> int:
        tag = rng.getrandbits(40)
        status, _ = await exporter.post(json.loads(body(
            f"h{i}", "Initiated", time.time(), f"Partner {tag}", f"Type {tag}",
            f"Freq {tag}")), account=f"acct{tag}")
        return status

    for start in range(0, n, 100):
        statuses = await asyncio.gather(*(post(i) for i in range(start, start + 100)))
        assert set(statuses) == {200}
    metrics = await exporter.metrics()
    in_flight = metrics["clevertap_export_in_flight"]
    assert len(in_flight) <= 21
    assert sum(metrics["clevertap_export_status_events_total"].values()) == n
    overflow = metrics["clevertap_export_label_overflow_total"]
    assert overflow[(("label", "account"),)] == n - 8
    print(f"\nHTTP flood: {n} webhooks with distinct account/partner/type/frequency: "
          f"{len(in_flight)} series exposed (cap 20 + 'other'), folded "
          f"{ {dict(k)['label']: v for k, v in overflow.items()} }")
