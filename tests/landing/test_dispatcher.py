"""Landing checks from an accepted Completed to a recorded result: stored with the Completed,
claimed once (across a restart, and across two replicas on PostgreSQL), listed on moto's S3
server, and recorded with the run (its landing, the landed bytes in its history)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from datetime import UTC
from pathlib import Path

import pytest

from exporter.domain.declared import DeclaredConfig, DeclaredExport, parse_config
from exporter.domain.keys import SeriesKey
from exporter.domain.model import Landed
from exporter.domain.payload import StatusEvent
from exporter.domain.thresholds import HOUR
from exporter.domain.tracker import ExportTracker
from exporter.landing.check import CheckPolicy
from exporter.landing.dispatcher import Dispatcher
from exporter.store.base import Changes, CheckRow
from exporter.store.postgres import PostgresStore
from exporter.store.sqlite import SQLiteStore
from tests.helpers import limits
from tests.landing.conftest import S3Store, Store
from tests.postgres import pg_cluster, pg_url

__all__ = ["pg_cluster", "pg_url"]  # fixtures used here, imported from tests.postgres

KEY: SeriesKey = ("default", "amazon_s3", "events", "4h")
T0 = 1_760_000_000.0
#: Short retries: an empty listing is retried once or twice, then recorded.
POLICY = CheckPolicy(settle=0.0, retry_for=0.2, backoff=0.05, max_backoff=0.1)


def config(s3: S3Store, bucket: str) -> DeclaredConfig:
    return parse_config(
        "exports:\n"
        "  - {partner: Amazon S3, type: Events, frequency: Every 4 hours,\n"
        f"     destination: {{url: 's3://{bucket}/exports/', endpoint: '{s3.server.url}',\n"
        "                   region: us-east-1}}\n")


def ev(status: str, t: float, export_id: str) -> StatusEvent:
    return StatusEvent(account="default", export_id=export_id, partner="amazon_s3",
                       export_type="events", frequency="4h", status=status, event_time=t,
                       received=t + 5)


async def complete(t: ExportTracker, export_id: str, start: float,
                   duration: float = 600) -> None:
    assert await t.ingest(ev("initiated", start, export_id)) == "accepted"
    assert await t.ingest(ev("completed", start + duration, export_id)) == "accepted"


def landing(t: ExportTracker) -> Landed:
    found = t.series[KEY].landing
    assert found is not None, "no landing recorded"
    return found


def dispatcher(t: ExportTracker, cfg: DeclaredConfig, s3: S3Store, *,
               settle: float = 0.0, clock: Callable[[], float] = time.time) -> Dispatcher:
    exports: Mapping[SeriesKey, DeclaredExport] = cfg.exports
    return Dispatcher(t, lambda: exports, policy=replace(POLICY, settle=settle), zone=UTC,
                      env=s3.env(), clock=clock)


@contextlib.asynccontextmanager
async def dispatching(t: ExportTracker, cfg: DeclaredConfig, s3: S3Store, *,
                      settle: float = 0.0,
                      clock: Callable[[], float] = time.time) -> AsyncIterator[Dispatcher]:
    """``dispatcher``, closed on the way out."""
    d = dispatcher(t, cfg, s3, settle=settle, clock=clock)
    try:
        yield d
    finally:
        await d.close()


async def run_all(d: Dispatcher) -> int:
    started = await d.dispatch()
    await d.checker.join()
    return started


@pytest.fixture
async def bucket(s3_store: S3Store) -> str:
    name = f"b-{uuid.uuid4().hex[:12]}"
    await s3_store.make_bucket(name)
    return name


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[Callable[[], ExportTracker]]:
    opened: list[SQLiteStore] = []

    def make() -> ExportTracker:
        if opened:
            opened.pop().close()
        store = SQLiteStore(tmp_path / "state.db")
        opened.append(store)
        return ExportTracker(store, limits(), clock=lambda: T0 + 10 * HOUR)

    yield make
    for store in opened:
        store.close()


async def test_a_completed_run_whose_files_exist_is_landed_with_counts_and_bytes(
        sqlite: Callable[[], ExportTracker], s3_store: S3Store, bucket: str) -> None:
    t = sqlite()
    cfg = config(s3_store, bucket)
    await t.declare(cfg.exports, cfg.label_values())
    await s3_store.put(bucket, "exports/771-1690283492-app_launched-20231004-0-1.json", b"x" * 100)
    await s3_store.put(bucket, "exports/771-1690283492-app_launched-20231004-1-1.json", b"y" * 50)
    await s3_store.put(bucket, "exports/772-1690283492-other_run-20231004-0-1.json", b"z" * 999)
    await complete(t, "771", T0)
    async with dispatching(t, cfg, s3_store) as d:
        assert await run_all(d) == 1
        series = t.series[KEY]
        assert series.landing is not None
        assert (series.landing.outcome, series.landing.objects, series.landing.bytes) == (
            "landed", 2, 150)
        assert series.landing.prefix == "exports/771-"
        assert [r.landed_bytes for r in series.history] == [150]
        assert t.landing_checks == {(KEY, "landed"): 1}
        assert await run_all(d) == 0  # checked once: the check is marked made


async def test_an_empty_prefix_is_recorded_empty_and_a_missing_bucket_not_found(
        sqlite: Callable[[], ExportTracker], s3_store: S3Store, bucket: str) -> None:
    t = sqlite()
    cfg = config(s3_store, bucket)
    await t.declare(cfg.exports, cfg.label_values())
    await complete(t, "9", T0)
    async with dispatching(t, cfg, s3_store) as d:
        assert await run_all(d) == 1
        assert landing(t).outcome == "empty"
        assert t.series[KEY].history[-1].landed_bytes == 0
        assert t.series[KEY].failed_checks == 0
        gone = config(s3_store, "no-such-bucket-" + bucket[2:])
        await t.declare(gone.exports, gone.label_values())
        d.exports = lambda: gone.exports
        await complete(t, "10", T0 + 4 * HOUR)
        assert await run_all(d) == 1
        assert landing(t).outcome == "not_found"
        assert t.series[KEY].failed_checks == 1
        assert t.series[KEY].history[-1].landed_bytes is None  # nothing known of its size


async def test_the_check_waits_for_the_settle_time_off_the_request_path(
        sqlite: Callable[[], ExportTracker], s3_store: S3Store, bucket: str) -> None:
    t = sqlite()
    cfg = config(s3_store, bucket)
    await t.declare(cfg.exports, cfg.label_values())
    await complete(t, "5", T0)
    now = [T0 + 600]  # the Completed arrived at T0 + 605
    async with dispatching(t, cfg, s3_store, settle=60, clock=lambda: now[0]) as d:
        assert await run_all(d) == 0
        assert t.series[KEY].landing is None
        now[0] = T0 + 666
        assert await run_all(d) == 1
        assert t.series[KEY].landing is not None


async def test_a_restart_between_the_completed_and_the_check_checks_once(
        sqlite: Callable[[], ExportTracker], s3_store: S3Store, bucket: str) -> None:
    t = sqlite()
    cfg = config(s3_store, bucket)
    await t.declare(cfg.exports, cfg.label_values())
    await s3_store.put(bucket, "exports/31-1-e-20231004-0-1.json", b"x" * 10)
    await complete(t, "31", T0)
    t = sqlite()  # the process restarts before any check
    await t.declare(cfg.exports, cfg.label_values())
    async with dispatching(t, cfg, s3_store) as d:
        assert await run_all(d) == 1
        assert landing(t).bytes == 10
    t = sqlite()  # and again after it: nothing left to check
    async with dispatching(t, cfg, s3_store) as d:
        assert await run_all(d) == 0
        assert landing(t).bytes == 10


async def test_a_run_far_smaller_than_its_usual_is_smaller_than_usual(
        sqlite: Callable[[], ExportTracker], s3_store: S3Store, bucket: str) -> None:
    t = sqlite()
    cfg = config(s3_store, bucket)
    await t.declare(cfg.exports, cfg.label_values())
    async with dispatching(t, cfg, s3_store) as d:
        for i in range(6):  # the minimum history is five checked runs
            await s3_store.put(bucket, f"exports/{i}-1-e-20231004-0-1.json", b"x" * 1000)
            await complete(t, str(i), T0 + i * 4 * HOUR)
            await run_all(d)
            assert landing(t).outcome == "landed"
        usual = t.series[KEY].usual_landed
        assert usual is not None and (usual.median, usual.runs) == (1000, 6)
        await s3_store.put(bucket, "exports/6-1-e-20231004-0-1.json", b"x" * 99)
        await complete(t, "6", T0 + 6 * 4 * HOUR)
        await run_all(d)
        assert landing(t).outcome == "smaller_than_usual"
        assert t.series[KEY].history[-1].landed_bytes == 99


async def test_a_new_export_is_never_smaller_than_usual(
        sqlite: Callable[[], ExportTracker], s3_store: S3Store, bucket: str) -> None:
    t = sqlite()
    cfg = config(s3_store, bucket)
    await t.declare(cfg.exports, cfg.label_values())
    async with dispatching(t, cfg, s3_store) as d:
        for i, size in enumerate((1000, 1000, 1000, 1000, 5)):  # four runs: too few to tell
            await s3_store.put(bucket, f"exports/{i}-1-e-20231004-0-1.json", b"x" * size)
            await complete(t, str(i), T0 + i * 4 * HOUR)
            await run_all(d)
            assert landing(t).outcome == "landed"


async def test_a_check_of_an_export_no_longer_with_a_destination_is_dropped(
        sqlite: Callable[[], ExportTracker], s3_store: S3Store, bucket: str) -> None:
    t = sqlite()
    cfg = config(s3_store, bucket)
    await t.declare(cfg.exports, cfg.label_values())
    await complete(t, "1", T0)
    other = parse_config("exports:\n  - {partner: s3, type: events, frequency: 4h,\n"
                         f"     destination: 's3://{bucket}/x/'}}\n"
                         "  - {partner: s3, type: profiles, frequency: 4h,\n"
                         f"     destination: 's3://{bucket}/y/'}}\n")
    moved = {k: v for k, v in other.exports.items() if k != KEY}
    d = dispatcher(t, cfg, s3_store)
    d.exports = lambda: moved
    try:
        assert await run_all(d) == 0
        d.exports = lambda: cfg.exports
        assert await run_all(d) == 0  # gone for good
        assert t.series[KEY].landing is None
    finally:
        await d.close()


async def test_two_replicas_on_postgresql_check_each_run_once_and_both_show_it(
        pg_url: str, s3_store: S3Store, bucket: str) -> None:
    cfg = config(s3_store, bucket)
    a_store, b_store = await PostgresStore.open(pg_url), await PostgresStore.open(pg_url)
    a = ExportTracker(a_store, limits(), clock=lambda: T0)
    b = ExportTracker(b_store, limits(), clock=lambda: T0)
    da, db = dispatcher(a, cfg, s3_store), dispatcher(b, cfg, s3_store)
    try:
        for t in (a, b):
            await t.declare(cfg.exports, cfg.label_values())
        for i in range(3):
            await s3_store.put(bucket, f"exports/{i}-1-e-20231004-0-1.json", b"x" * (i + 1))
            await complete(a if i % 2 else b, str(i), T0 + i * 4 * HOUR)
        started = await asyncio.gather(da.dispatch(), db.dispatch())
        await asyncio.gather(da.checker.join(), db.checker.join())
        assert sum(started) == 3
        assert await da.dispatch() + await db.dispatch() == 0
        await _until(lambda: all(t.series[KEY].landing is not None
                                 and len([r for r in t.series[KEY].history
                                          if r.landed_bytes is not None]) == 3
                                 for t in (a, b)))
        for t in (a, b):
            assert sorted(r.landed_bytes or 0 for r in t.series[KEY].history) == [1, 2, 3]
            assert t.landing_checks == {(KEY, "landed"): 3}
    finally:
        for d in (da, db):
            await d.close()
        for s in (a_store, b_store):
            await s.close()


async def test_a_lapsed_claim_is_claimed_again_and_a_live_one_is_not(pg_url: str) -> None:
    a_store, b_store = await PostgresStore.open(pg_url), await PostgresStore.open(pg_url)
    try:
        t = ExportTracker(a_store, limits())
        await t.store.submit(lambda: _changes_with(CheckRow("default", "7", T0, *KEY[1:],
                                                            T0 + 60)))
        assert len(await a_store.claim_checks("a", T0 + 120, T0 + 120, 100, 5)) == 1
        assert await b_store.claim_checks("b", T0 + 120, T0 + 150, 100, 5) == []
        assert len(await b_store.claim_checks("b", T0 + 120, T0 + 221, 100, 5)) == 1
    finally:
        for s in (a_store, b_store):
            await s.close()


def _changes_with(row: CheckRow) -> Changes:
    return Changes(checks=[row])


async def _until(ok: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not ok():
            await asyncio.sleep(0.05)


async def test_each_store_lands_through_the_dispatcher(
        sqlite: Callable[[], ExportTracker], store: Store) -> None:
    bucket = f"d-{uuid.uuid4().hex[:12]}"
    await store.make_bucket(bucket)
    await store.put(bucket, "exports/55-1690283492-e-20231004-0-1.json", b"x" * 123)
    await store.put(bucket, "exports/56-1690283492-e-20231004-0-1.json", b"x" * 999)
    t = sqlite()
    parsed = parse_config("exports:\n  - {partner: Amazon S3, type: Events, "
                          "frequency: Every 4 hours}\n")
    exports = {KEY: replace(parsed.exports[KEY],
                            destination=store.destination(bucket, "exports/"))}
    await t.declare(exports, parsed.label_values())
    await complete(t, "55", T0)
    d = Dispatcher(t, lambda: exports, policy=POLICY, zone=UTC, env=store.env())
    try:
        assert await run_all(d) == 1
        assert (landing(t).outcome, landing(t).objects, landing(t).bytes) == ("landed", 1, 123)
    finally:
        await d.close()


async def test_a_replica_that_stops_mid_check_leaves_it_to_another_at_once(
        pg_url: str, s3_store: S3Store, bucket: str, silent_port: int) -> None:
    cfg = config(s3_store, bucket)
    destination = cfg.exports[KEY].destination
    assert destination is not None
    hanging = {KEY: replace(cfg.exports[KEY], destination=replace(
        destination, endpoint=f"http://127.0.0.1:{silent_port}"))}
    a_store, b_store = await PostgresStore.open(pg_url), await PostgresStore.open(pg_url)
    a = ExportTracker(a_store, limits(), clock=lambda: T0)
    b = ExportTracker(b_store, limits(), clock=lambda: T0)
    da = Dispatcher(a, lambda: hanging, policy=POLICY, zone=UTC, env=s3_store.env())
    db = dispatcher(b, cfg, s3_store)
    try:
        for t in (a, b):
            await t.declare(cfg.exports, cfg.label_values())
        await s3_store.put(bucket, "exports/3-1-e-20231004-0-1.json", b"x" * 7)
        await complete(a, "3", T0)
        assert await da.dispatch() == 1  # listing a store that never answers
        assert await db.dispatch() == 0  # a holds the claim
        await da.close()  # a stops: its check is cancelled and its claim given up
        assert await run_all(db) == 1
        await _until(lambda: a.series[KEY].landing is not None)
        assert landing(b).bytes == 7 and landing(a).bytes == 7
    finally:
        for d in (da, db):
            await d.close()
        for s in (a_store, b_store):
            await s.close()
