"""How fresh a replica knows itself to be: its sequence, how far behind it is, its clock against
the database's (expiry runs on the database's), a schema migrated while it was away, and a
change the database refuses, alone of its batch (real cluster; a replica's clock shifted
through the tracker's clock)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import pytest

from exporter.cli.flags import parse_settings
from exporter.domain.payload import StatusEvent
from exporter.domain.tracker import ACCEPTED, DUPLICATE, ExportTracker
from exporter.metrics.collector import TrackerCollector
from exporter.store import Refused, StoreError, open_store
from exporter.store.postgres_schema import SCHEMA_VERSION
from exporter.web.app import create_app
from tests.helpers import ClientFactory, Exporter, event, limits, series
from tests.postgres import pg_cluster, pg_url

__all__ = ["pg_cluster", "pg_url"]  # fixtures used here, imported from tests.postgres

DAY = 86400.0


def ev(status: str, t: float, received: float) -> StatusEvent:
    return StatusEvent(account="default", export_id="1", partner="amazon_s3",
                       export_type="events", frequency="4h", status=status, event_time=t,
                       received=received)


def skew_metric(tracker: ExportTracker) -> float:
    [family] = [f for f in TrackerCollector(tracker).collect()
                if f.name == "clevertap_export_state_clock_skew_seconds"]
    return float(family.samples[0].value)


async def test_a_replica_days_ahead_abandons_and_forgets_nothing(pg_url: str,
                                                                 tmp_path: Path) -> None:
    """+3 days once abandoned every in-flight run, +8 days wiped the duplicate memory, for
    every replica: now the database's clock decides, and the skew is exposed."""
    bounds = limits()
    assert bounds.in_flight_timeout < 3 * DAY and bounds.retention < 8 * DAY
    async with open_store(tmp_path / "unused.db", pg_url) as one, \
            open_store(tmp_path / "unused.db", pg_url) as other:
        honest = ExportTracker(one, bounds)
        ahead = ExportTracker(other, bounds, clock=lambda: time.time() + 8 * DAY)
        now = time.time()
        initiated = ev("initiated", now - 600, now)
        assert await honest.ingest(initiated) == ACCEPTED
        assert await ahead.expire() == 0
        assert ahead.in_flight and honest.in_flight
        async with asyncio.timeout(5):
            while not honest.store.freshness().sequence == ahead.store.freshness().sequence:
                await asyncio.sleep(0.02)
        assert honest.in_flight and ahead.deliveries and honest.deliveries
        # The duplicate memory is intact on both replicas.
        assert await ahead.ingest(initiated) == DUPLICATE
        assert await honest.ingest(initiated) == DUPLICATE
        assert abs(skew_metric(ahead) - 8 * DAY) < 5
        assert abs(skew_metric(honest)) < 5


async def _terminate_others(pg_url: str, *, allow: bool = True) -> None:
    """Cut every session of the test's database; with ``allow=False`` let none in again until
    called with ``allow=True``."""
    root, name = pg_url.rsplit("/", 1)
    conn = await asyncpg.connect(f"{root}/postgres")
    try:
        await conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {allow}')
        if not allow:
            await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = $1", name)
    finally:
        await conn.close()


async def test_sequence_and_how_far_behind(pg_url: str, tmp_path: Path) -> None:
    async with open_store(tmp_path / "unused.db", pg_url) as one, \
            open_store(tmp_path / "unused.db", pg_url) as other:
        a, _ = ExportTracker(one, limits()), ExportTracker(other, limits())
        start = one.freshness().sequence
        now = time.time()
        assert await a.ingest(ev("initiated", now - 600, now)) == ACCEPTED
        assert one.freshness().sequence == start + 1
        async with asyncio.timeout(5):
            while other.freshness().sequence != start + 1:
                await asyncio.sleep(0.02)
        assert other.freshness()[1:3] == (0, 0.0)
        # Cut off from the database, a replica counts the seconds since it was current.
        await _terminate_others(pg_url, allow=False)
        await asyncio.sleep(1)
        assert not other.healthy and other.freshness().behind_seconds >= 0.9
        await _terminate_others(pg_url)
        async with asyncio.timeout(5):
            while other.freshness().behind_seconds != 0:
                await asyncio.sleep(0.02)


async def test_a_schema_migrated_while_away_is_refused_on_reconnection(
        pg_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with open_store(tmp_path / "unused.db", pg_url) as store:
        tracker = ExportTracker(store, limits())
        conn = await asyncpg.connect(pg_url)
        try:
            # A newer exporter migrates the schema; this replica's connections drop.
            await conn.execute("UPDATE meta SET value = $1 WHERE key = 'schema_version'",
                               str(SCHEMA_VERSION + 1))
            await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                               "datname = current_database() AND pid <> pg_backend_pid()")
            await asyncio.sleep(2)  # several reconnection attempts
            assert not store.healthy
            with pytest.raises(StoreError):
                await tracker.ingest(ev("initiated", time.time(), time.time()))
            refusals = [r for r in caplog.records if "newer than this exporter" in r.getMessage()]
            assert len(refusals) == 1
            # Back to this exporter's version: it reconnects and is ready again.
            await conn.execute("UPDATE meta SET value = $1 WHERE key = 'schema_version'",
                               str(SCHEMA_VERSION))
        finally:
            await conn.close()
        async with asyncio.timeout(5):
            while not store.healthy:
                await asyncio.sleep(0.02)


async def test_a_change_the_database_refuses_fails_alone(pg_url: str, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """One event of a batch violates a constraint: it alone is refused, the others of its batch
    are stored and acknowledged, the model holds none of it, and nothing reloads."""
    async with open_store(tmp_path / "unused.db", pg_url) as one, \
            open_store(tmp_path / "unused.db", pg_url) as other:
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.execute("ALTER TABLE deliveries ADD CONSTRAINT no_poison "
                               "CHECK (export_id <> 'poison')")
            tracker, follower = ExportTracker(one, limits()), ExportTracker(other, limits())
            now = time.time()
            events = [StatusEvent(account="default", export_id=str(i), partner="amazon_s3",
                                  export_type="events", frequency="4h", status="initiated",
                                  event_time=now - 600, received=now) for i in range(10)]
            events.insert(4, events[0]._replace(export_id="poison", partner="poisoned"))
            # Submitted in one loop turn: one batch, one transaction.
            results = await asyncio.gather(*(tracker.ingest(e) for e in events),
                                           return_exceptions=True)
            assert [r for r in results if r != ACCEPTED] == [results[4]]
            assert isinstance(results[4], Refused) and "no_poison" in str(results[4])
            stored = {r["export_id"] for r in await conn.fetch("SELECT export_id FROM deliveries")}
            assert stored == {str(i) for i in range(10)}
            runs = {r["export_id"] for r in await conn.fetch("SELECT export_id FROM runs")}
            assert runs == stored
            assert await conn.fetchval("SELECT count(*) FROM series") == 1
        finally:
            await conn.close()
        assert one.healthy and one.failures == 0
        assert not any("reload" in r.getMessage() for r in caplog.records)
        # The model holds none of the refused event: no run, no series, no label value.
        assert ("default", "poison") not in tracker.runs and len(tracker.in_flight) == 10
        assert {k[1] for k in tracker.series} == {"amazon_s3"}
        assert "poisoned" not in tracker.labels.admitted.get("partner", set())
        [series] = tracker.series.values()
        assert series.status_counts == {"initiated": 10}
        async with asyncio.timeout(5):
            while len(follower.in_flight) != 10:
                await asyncio.sleep(0.02)
        # The retry is refused again, precisely; the good ones are duplicates.
        with pytest.raises(Refused):
            await tracker.ingest(events[4])
        assert await tracker.ingest(events[0]) == DUPLICATE


async def test_the_refused_event_is_answered_422_and_counted(
        aiohttp_client: ClientFactory, pg_url: str) -> None:
    settings = parse_settings(["--state-url", pg_url], env={})
    replica = Exporter(await aiohttp_client(create_app(settings)), Path(pg_url))
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("ALTER TABLE deliveries ADD CONSTRAINT no_poison "
                           "CHECK (export_id <> 'poison')")
    finally:
        await conn.close()
    t0 = time.time() - 600
    answers = await asyncio.gather(replica.post(event(1, "Initiated", t0)),
                                   replica.post(event("poison", "Initiated", t0)),
                                   replica.post(event(2, "Initiated", t0)))
    assert answers[0] == answers[2] == (200, {"status": "accepted"})
    status, body = answers[1]
    assert (status, body["status"]) == (422, "invalid") and "no_poison" in body["error"]
    m = await replica.metrics()
    assert m["clevertap_export_webhook_requests_total"][(("outcome", "invalid"),)] == 1
    assert m["clevertap_export_in_flight"][series()] == 2
    assert (await replica.client.get("/readyz")).status == 200
