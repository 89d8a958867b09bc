"""Replicas on one PostgreSQL database behave as one exporter (in-process apps, real cluster)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from exporter.cli.flags import parse_settings
from exporter.store import StoreError, open_store
from exporter.store.postgres import LOCK_WRITE, PROBE_EVERY_SECONDS, PostgresStore
from exporter.store.postgres_schema import SCHEMA_VERSION
from exporter.web.app import create_app
from tests.helpers import ClientFactory, Exporter, Samples, event, series
from tests.postgres import Cluster, Replica, pg_cluster, pg_url
from tests.web.test_forget import forget_amid_events

__all__ = ["pg_cluster", "pg_url"]  # fixtures used here, imported from tests.postgres

#: Families every replica must expose identically: the export series and the shared state.
SHARED = tuple(f"clevertap_export_{n}" for n in (
    "status_events", "last_initiated", "last_completed", "last_failed", "in_flight",
    "duration_seconds", "last_duration", "expected_interval", "abandoned",
    "webhook_last_received", "last_delivery_delay", "remembered_"))

Start = Callable[..., Awaitable[Exporter]]


def shared(m: Samples) -> Samples:
    return {k: v for k, v in m.items() if k.startswith(SHARED)}


@pytest.fixture
def start_replica(aiohttp_client: ClientFactory, pg_url: str) -> Start:
    """Start an exporter app on the test's database; extra args are command-line flags."""

    async def start(*args: str) -> Exporter:
        settings = parse_settings(["--state-url", pg_url, *args], env={})
        return Exporter(await aiohttp_client(create_app(settings)), Path(pg_url))

    return start


async def converged(*replicas: Exporter, timeout: float = 5.0) -> Samples:
    """Wait until every replica exposes the same shared families; returns them."""
    deadline = time.monotonic() + timeout
    while True:
        views = [shared(await r.metrics()) for r in replicas]
        if all(v == views[0] for v in views):
            return views[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"replicas did not converge: {views}")
        await asyncio.sleep(0.05)


async def test_run_started_on_one_replica_finishes_on_the_other(start_replica: Start) -> None:
    a, b = await start_replica(), await start_replica()
    t0 = time.time() - 3600
    assert await a.post(event(1, "Initiated", t0)) == (200, {"status": "accepted"})
    # B decides under the write lock after catching up, so it sees A's run and closes it.
    assert await b.post(event(1, "Completed", t0 + 600)) == (200, {"status": "accepted"})
    # Redeliveries to the other replica are recognised.
    assert await b.post(event(1, "Initiated", t0)) == (200, {"status": "duplicate"})
    assert await a.post(event(1, "Completed", t0 + 600)) == (200, {"status": "duplicate"})
    m = await converged(a, b)
    assert m["clevertap_export_in_flight"][series()] == 0
    assert m["clevertap_export_duration_seconds_count"][series()] == 1
    assert m["clevertap_export_last_duration_seconds"][series()] == 600
    for status in ("initiated", "completed"):
        assert m["clevertap_export_status_events_total"][series(status=status)] == 1


async def test_three_replicas_a_webhook_on_each(start_replica: Start) -> None:
    replicas = [await start_replica() for _ in range(3)]
    t0 = time.time() - 600
    for i, r in enumerate(replicas):
        assert await r.post(event(i, "Initiated", t0 + i)) == (200, {"status": "accepted"})
    m = await converged(*replicas)
    assert m["clevertap_export_in_flight"][series()] == 3
    assert m["clevertap_export_in_flight_oldest_start_timestamp_seconds"][series()] == t0
    assert m["clevertap_export_status_events_total"][series(status="initiated")] == 3
    # Every replica now rejects each replica's event as a redelivery.
    for r in replicas:
        for i in range(3):
            assert await r.post(event(i, "Initiated", t0 + i)) == (200, {"status": "duplicate"})


async def test_concurrent_identical_redeliveries_are_stored_once(
    start_replica: Start, pg_url: str
) -> None:
    a, b = await start_replica(), await start_replica()
    body = event(7, "Initiated", time.time() - 60)
    answers = await asyncio.gather(*(r.post(body) for _ in range(10) for r in (a, b)))
    assert sorted(s["status"] for _, s in answers) == ["accepted"] + ["duplicate"] * 19
    assert {code for code, _ in answers} == {200}
    m = await converged(a, b)
    assert m["clevertap_export_status_events_total"][series(status="initiated")] == 1
    conn = await asyncpg.connect(pg_url)
    try:
        assert await conn.fetchval("SELECT count(*) FROM deliveries") == 1
    finally:
        await conn.close()


async def test_expiry_is_replicated(start_replica: Start) -> None:
    a, b = await start_replica("--in-flight-timeout", "1h"), await start_replica()
    assert (await a.post(event(1, "Initiated", time.time() - 7200)))[0] == 200
    await converged(a, b)
    assert await a.tracker.expire() == 1
    m = await converged(a, b)
    assert m["clevertap_export_abandoned_total"][series()] == 1
    assert m["clevertap_export_in_flight"][series()] == 0


@pytest.mark.parametrize("pruned", [False, True], ids=["catch-up", "log-pruned"])
async def test_lost_connection_refuses_then_catches_up(
    start_replica: Start, pg_url: str, pruned: bool
) -> None:
    """B is cut off while A takes a webhook; back, B catches up from the log, or reloads the
    whole state when the log was pruned past it."""
    role = f"b_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_url)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN SUPERUSER")
        a = await start_replica()
        b = await start_replica("--state-url", pg_url.replace("exporter@", f"{role}@"))
        t0 = time.time() - 600
        assert (await a.post(event(1, "Initiated", t0)))[0] == 200
        await converged(a, b)
        # B is cut off: its sessions end and it may not log in again, while A goes on.
        await admin.execute(f"ALTER ROLE {role} NOLOGIN")
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE usename = $1", role)
        assert await _wait_status(b, 503) == 503
        assert (await b.post(event(3, "Initiated", t0)))[0] == 503
        assert (await a.post(event(2, "Initiated", t0 + 1)))[0] == 200
        await asyncio.sleep(0.3)
        assert (await b.client.get("/readyz")).status == 503
        if pruned:
            await admin.execute(
                "WITH gone AS (DELETE FROM log RETURNING seq) INSERT INTO meta "
                "SELECT 'log_pruned_through', max(seq)::text FROM gone")
        await admin.execute(f"ALTER ROLE {role} LOGIN")
    finally:
        await admin.close()
    assert await _wait_status(b, 200) == 200
    m = await converged(a, b)
    assert m["clevertap_export_in_flight"][series()] == 2
    assert await b.post(event(2, "Initiated", t0 + 1)) == (200, {"status": "duplicate"})
    assert await b.post(event(3, "Initiated", t0)) == (200, {"status": "accepted"})


async def test_a_stored_delivery_stands(start_replica: Start, pg_url: str) -> None:
    """One rule on both stores (``base.net``): a delivery is written only where its key is not
    stored, so its first receipt stands, even one stored behind the replicas' backs."""
    a = await start_replica()
    t0 = time.time() - 600
    first = time.time() - 60
    conn = await asyncpg.connect(pg_url)
    try:
        # Stored behind the replicas' backs: in the table, not in the log.
        await conn.execute("INSERT INTO deliveries VALUES ('default', '5', 'initiated', $1, $2)",
                           float(t0), first)
        assert await a.post(event(5, "Initiated", t0)) == (200, {"status": "accepted"})
        assert await conn.fetchval("SELECT received FROM deliveries") == first
    finally:
        await conn.close()
    assert await _wait_status(a, 200) == 200
    assert await a.post(event(5, "Initiated", t0)) == (200, {"status": "duplicate"})


async def _wait_status(replica: Exporter, want: int, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        status = (await replica.client.get("/readyz")).status
        if status == want or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.02)


async def test_newer_schema_is_refused(pg_url: str, tmp_path: Path) -> None:
    async with open_store(tmp_path / "unused.db", pg_url):
        pass  # creates the schema
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("UPDATE meta SET value = $1 WHERE key = 'schema_version'",
                           str(SCHEMA_VERSION + 1))
    finally:
        await conn.close()
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1} is newer"):
        async with open_store(tmp_path / "unused.db", pg_url):
            pass
    # The process exits 1 with that one line.
    with pytest.raises(RuntimeError, match="exited with 1") as failed:
        await asyncio.to_thread(Replica("--state-url", pg_url).start)
    errors = [line for line in str(failed.value).splitlines() if " ERROR " in line]
    assert len(errors) == 1 and errors[0].endswith(
        f"state database schema version {SCHEMA_VERSION + 1} is newer than this exporter's "
        f"({SCHEMA_VERSION}): run a newer exporter"), failed.value


@pytest.mark.parametrize("foreign", [
    "CREATE TABLE users (id INT)",
    "CREATE TABLE meta (k TEXT, v TEXT); CREATE TABLE users (id INT)",
])
async def test_another_applications_database_is_refused_untouched(
        pg_url: str, tmp_path: Path, foreign: str) -> None:
    """--state-url at another application's database must not add seven tables to it
    (issue 23, item 12), as SQLite refuses a foreign file."""
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(foreign)
        before = {r[0] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        with pytest.raises(StoreError, match="not a clevertap-export-exporter database"):
            async with open_store(tmp_path / "unused.db", pg_url):
                pass
        after = {r[0] for r in await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    finally:
        await conn.close()
    assert after == before


async def test_unreachable_database_fails_start(pg_cluster: Cluster, tmp_path: Path) -> None:
    url = pg_cluster.url("no_such_database")
    with pytest.raises(StoreError, match=r"cannot open the state database .*no_such_database: "
                       r"database .* does not exist"):
        async with open_store(tmp_path / "unused.db", url):
            pass


def test_state_url_flag_and_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql://u:secret@127.0.0.1:5432/db"
    secret = tmp_path / "url"
    secret.write_text(url + "\n")
    assert parse_settings([], env={"EXPORTER_STATE_URL_FILE": str(secret)}).state.url == url
    assert parse_settings(["--state-url", url], env={}).state.url == url
    for argv, env in ((["--state-url", url, "--state-path", "x.db"], {}),
                      (["--state-url", url], {"EXPORTER_STATE_PATH": "x.db"})):
        with pytest.raises(SystemExit):
            parse_settings(argv, env=env)
        assert "mutually exclusive" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_settings(["--state-url", "mysql://x"], env={})
    assert "postgresql://USER" in capsys.readouterr().err


async def test_a_nul_in_a_text_field_is_refused_and_poisons_no_batch(
        start_replica: Start) -> None:
    """PostgreSQL's text cannot hold U+0000: such an event is a 422 naming the field, before it
    reaches a batch, so the webhooks committed with it are unaffected (issue 23, item 2)."""
    replica = await start_replica()
    bad = {**event(1, "Initiated"), "Export Request Id": "x\u0000"}
    answers = await asyncio.gather(*(
        replica.post(bad if i % 3 == 0 else event(100 + i, "Initiated")) for i in range(30)))
    refused = [a for i, a in enumerate(answers) if i % 3 == 0]
    assert all(status == 422 and "Export Request Id" in body["error"]
               and "NUL" in body["error"] for status, body in refused)
    assert all(a == (200, {"status": "accepted"}) for i, a in enumerate(answers) if i % 3)
    assert (await replica.client.get("/readyz")).status == 200


def _store(replica: Exporter) -> PostgresStore:
    store = replica.tracker.store
    assert isinstance(store, PostgresStore)
    return store


async def test_commits_are_synchronous_whatever_the_server_default(
        start_replica: Start, pg_url: str) -> None:
    """With ``synchronous_commit = off`` on the server, an acknowledged event could be lost in
    a crash: every session of the exporter sets it back on (issue 23, item 7)."""
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute(f"ALTER DATABASE {pg_url.rsplit('/', 1)[1]} "
                           "SET synchronous_commit = off")
        check = await asyncpg.connect(pg_url)
        assert await check.fetchval("SHOW synchronous_commit") == "off"
        await check.close()
    finally:
        await conn.close()
    replica = await start_replica()
    async with _store(replica)._pool.acquire() as pooled:
        assert await pooled.fetchval("SHOW synchronous_commit") == "on"
    assert (await replica.post(event(1, "Initiated")))[0] == 200


async def test_a_held_write_lock_is_answered_within_clevertaps_wait(
        start_replica: Start, pg_url: str) -> None:
    """A replica frozen while it holds the write lock delays the others by at most
    LOCK_WAIT_SECONDS: they answer 503 (CleverTap retries) rather than time out (item 5)."""
    replica = await start_replica()
    holder = await asyncpg.connect(pg_url)
    try:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT pg_advisory_xact_lock($1)", LOCK_WRITE)
        began = time.monotonic()
        status, _ = await replica.post(event(1, "Initiated"))
        waited = time.monotonic() - began
        assert status == 503 and waited < 3.0, (status, waited)
        await tx.rollback()
    finally:
        await holder.close()
    assert (await replica.post(event(1, "Initiated"))) == (200, {"status": "accepted"})
    assert (await replica.client.get("/readyz")).status == 200


async def test_readyz_is_a_write_probe(start_replica: Start, pg_url: str) -> None:
    """With its write privileges revoked, a replica answers every webhook 503: /readyz says so
    within a probe interval, and ready again once they are back (item 4)."""
    first = await start_replica()  # the schema, owned by the cluster's superuser
    assert (await first.post(event(1, "Initiated")))[0] == 200
    role = f"w{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_url)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN")
        await admin.execute(f"GRANT CREATE, USAGE ON SCHEMA public TO {role}")
        await admin.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
        await admin.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
        replica = await start_replica("--state-url", pg_url.replace("//exporter@", f"//{role}@"))
        assert (await replica.client.get("/readyz")).status == 200
        await admin.execute(f"REVOKE INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public "
                            f"FROM {role}")
        assert await _readyz_becomes(replica, 503)  # by the probe alone, with no webhook
        assert (await replica.post(event(2, "Initiated")))[0] == 503
        await admin.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
        assert await _readyz_becomes(replica, 200)
        assert (await replica.post(event(2, "Initiated")))[0] == 200
    finally:
        await admin.close()


async def _readyz_becomes(replica: Exporter, status: int) -> bool:
    deadline = time.monotonic() + PROBE_EVERY_SECONDS + 5
    while time.monotonic() < deadline:
        if (await replica.client.get("/readyz")).status == status:
            return True
        await asyncio.sleep(0.2)
    return False


async def test_forget_is_replicated(start_replica: Start, pg_url: str) -> None:
    """An account forgotten on one replica is gone from every replica's metrics, from the
    tables, and from a replica started afterwards; the other account stays."""
    a, b = await start_replica("--auth-token", "t"), await start_replica("--auth-token", "t")
    t0 = time.time() - 600
    for i, account in enumerate(("demo", "demo", "prod")):
        assert (await a.post(event(i, "Initiated", t0 + i), account,
                             {"Authorization": "Bearer t"}))[0] == 200
    await converged(a, b)
    resp = await a.client.delete("/api/v1/exports/demo", headers={"Authorization": "Bearer t"})
    assert resp.status == 200, await resp.text()
    m = await converged(a, b)
    assert set(m["clevertap_export_in_flight"]) == {series(account="prod")}
    assert set(m["clevertap_export_last_delivery_delay_seconds"]) == {(("account", "prod"),)}
    conn = await asyncpg.connect(pg_url)
    try:
        for table in ("series", "runs", "deliveries"):
            assert await conn.fetchval(
                f"SELECT count(*) FROM {table} WHERE account = 'demo'") == 0  # noqa: S608
        assert await conn.fetchval("SELECT count(*) FROM gauges WHERE key = 'delay:demo'") == 0
    finally:
        await conn.close()
    c = await start_replica()
    assert shared(await c.metrics()) == m


async def test_a_forget_batched_with_events_keeps_their_order(start_replica: Start) -> None:
    """Events and a forget of their series committed in one transaction: the tables end as
    the model does (a fresh replica reads the same), whichever came first."""
    a = await start_replica()
    await forget_amid_events(a, "demo")
    expected = shared(await a.metrics())
    fresh = await start_replica()
    assert shared(await fresh.metrics()) == expected
    assert {k[0] for k in fresh.tracker.series} <= {"demo"}
