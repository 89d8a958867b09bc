"""Two exporter processes on one PostgreSQL under a burst from 8 clients: SIGKILL of a replica,
and PostgreSQL itself restarted. Nothing acknowledged may be lost, and afterwards every
replica exposes the same totals.

The events are the crash-consistency test's (``main`` retried until acknowledged, ``lossy``
sent once). A client posts each event to one replica and, when that one refuses, drops the
connection or answers 503, to the other, as a load balancer in front of both would. The figures
go to the assertion messages and to ``SUMMARY`` in the temporary directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp

from tests.helpers import ExporterProcess, Samples
from tests.postgres import Cluster, pg_cluster, pg_url, replica_process
from tests.store.test_crash_consistency import (
    LOST,
    Ev,
    Load,
    _check_responses,
    expected_main,
    make_events,
)
from tests.store.test_postgres import shared

# Fixtures used here, imported from tests.postgres.
__all__ = ["pg_cluster", "pg_url", "replica_process"]

CLIENTS = 8
#: The first of the crash test's exports (both accounts), for a burst of about 800 events.
EXPORTS = 400
LOSSY = 80
DEADLINE_SECONDS = 60.0
SUMMARY = Path(tempfile.gettempdir()) / "clevertap-postgres-faults.txt"

Replicas = Callable[[int], list[ExporterProcess]]


def burst_events(rng: random.Random) -> list[Ev]:
    first = 1_700_000_000 + EXPORTS
    return [e for e in make_events(rng) if (e.account == "main" and int(e.export_id) < first)
            or (e.account == "lossy" and int(e.export_id[1:]) < LOSSY)]


class Burst(Load):
    """The crash test's load, from CLIENTS workers, failing over between the replicas."""

    def __init__(self, replicas: list[ExporterProcess], rng: random.Random,
                 events: list[Ev]) -> None:
        super().__init__(replicas[0], rng, events)
        self.replicas = replicas
        self.events = events
        self.target = {id(ev): rng.randrange(len(replicas)) for ev in events}
        self.lost = self.unavailable = 0
        self.started = time.monotonic()

    async def run(self, disrupt: Callable[[Burst], Coroutine[Any, Any, None]]) -> None:
        connector = aiohttp.TCPConnector(limit=CLIENTS)
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            tasks = [*(asyncio.create_task(self.worker(session)) for _ in range(CLIENTS)),
                     asyncio.create_task(disrupt(self))]
            try:
                async with asyncio.timeout(DEADLINE_SECONDS):
                    await self.queue.join()
                    await tasks[-1]
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    async def deliver(self, session: aiohttp.ClientSession, ev: Ev) -> None:
        target = self.replicas[self.target[id(ev)]]
        try:
            async with session.post(f"{target.url}/webhook/{ev.account}", data=ev.body) as resp:
                status, body = resp.status, await resp.json()
        except aiohttp.ClientConnectorError:
            self.refused += 1  # nothing was sent: the other replica gets it
            await self.retry(ev, sent=False)
            return
        except (aiohttp.ClientError, TimeoutError, ConnectionError):
            self.posts += 1
            self.lost += 1
            await self.retry(ev)
            return
        self.posts += 1
        if status == 503:  # not stored, or its commit's fate unknown: the same as no answer
            self.unavailable += 1
            await self.retry(ev)
            return
        self.answered(ev, status, body)

    def redeliver(self, ev: Ev) -> None:
        self.fail_over(ev)  # to the other replica

    async def retry(self, ev: Ev, sent: bool = True) -> None:
        if sent:
            ev.responses.append(LOST)
        await asyncio.sleep(0.01)
        if ev.retry or not sent:
            self.fail_over(ev)

    def fail_over(self, ev: Ev) -> None:
        self.target[id(ev)] = (self.target[id(ev)] + 1) % len(self.replicas)
        self.queue.put_nowait(ev)

    async def acks_reach(self, n: int) -> None:
        while self.acks < n:
            await asyncio.sleep(0.005)

    async def verdict(self, name: str, disruption: str) -> str:
        """Check what the replicas expose against what was acknowledged; the figures."""
        m = await converged(self.replicas)
        lost, bad = check(self.events, m)
        acknowledged = sum(e.acknowledged for e in self.events)
        line = (f"{len(self.events)} events, {self.posts} posts sent ({self.refused} more "
                f"refused), {self.acks} answered 200, {acknowledged} events acknowledged, "
                f"{self.lost} responses lost, {self.unavailable} answered 503, {disruption}, "
                f"acknowledged events lost: {lost}; {time.monotonic() - self.started:.1f} s")
        with SUMMARY.open("a") as f:
            f.write(f"{name}: {line}\n")
        print(line)
        assert not self.surprises, self.surprises[:5]
        assert lost == 0 and not bad, f"{line}: {bad[:5]}"
        return line


def check(events: list[Ev], m: Samples) -> tuple[int, list[str]]:
    """Acknowledged events missing from ``m``, and every other mismatch."""
    main = [e for e in events if e.account == "main"]
    counts, _, running, _ = expected_main(main)
    all_counts = m["clevertap_export_status_events_total"]
    got = {k: v for k, v in all_counts.items() if ("account", "main") in k}
    lossy = [e for e in events if e.account == "lossy"]
    lossy_key = tuple(sorted((*lossy[0].series, ("status", "initiated"))))
    acked_lossy = sum(e.acknowledged for e in lossy)
    stored_lossy = int(all_counts.get(lossy_key, 0))
    lost = int(sum(max(0, n - got.get(k, 0)) for k, n in counts.items())
               + max(0, acked_lossy - stored_lossy))
    bad = [] if got == counts else ["main counts differ from what was sent"]
    in_flight = {k: v for k, v in m["clevertap_export_in_flight"].items()
                 if ("account", "main") in k and v}
    if in_flight != running:
        bad.append("main in-flight differs")
    if not acked_lossy <= stored_lossy <= len(lossy):
        bad.append(f"lossy: {acked_lossy} acknowledged, {stored_lossy} stored, {len(lossy)} sent")
    # A first answer of duplicate is right after a 503 whose commit went through.
    bad += _check_responses(events)
    return lost, bad


async def converged(replicas: list[ExporterProcess], timeout: float = 10.0) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        views = [shared(await asyncio.to_thread(r.metrics)) for r in replicas]
        if all(v == views[0] for v in views) or time.monotonic() > deadline:
            assert all(v == views[0] for v in views), "replicas expose different totals"
            return views[0]
        await asyncio.sleep(0.1)


async def start_all(replicas: list[ExporterProcess]) -> None:
    await asyncio.gather(*(asyncio.to_thread(r.start) for r in replicas))


async def test_sigkill_of_a_replica_during_a_burst(
    replica_process: Callable[..., ExporterProcess],
) -> None:
    rng = random.Random(1010)
    events = burst_events(rng)
    a, b = replica_process(), replica_process()
    await start_all([a, b])
    burst = Burst([a, b], rng, events)
    kills = 0

    async def kill_and_restart(burst: Burst) -> None:
        nonlocal kills
        for victim, at, back in ((b, 0.2, 0.4), (a, 0.6, 0.8)):
            await burst.acks_reach(int(len(events) * at))
            await asyncio.sleep(rng.uniform(0, 0.05))
            await asyncio.to_thread(victim.kill)
            kills += 1
            await burst.acks_reach(int(len(events) * back))
            await asyncio.to_thread(victim.start)

    await burst.run(kill_and_restart)
    line = await burst.verdict("sigkill", f"{kills} replicas SIGKILLed and restarted")
    assert kills == 2 and burst.lost + burst.refused > 0, line


async def test_postgres_restart_under_load(
    replica_process: Callable[..., ExporterProcess], pg_cluster: Cluster
) -> None:
    rng = random.Random(2020)
    events = burst_events(rng)
    replicas = [replica_process(), replica_process()]
    await start_all(replicas)
    burst = Burst(replicas, rng, events)
    not_ready: set[str] = set()
    restarted = 0.0

    async def watch_readiness() -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                for r in replicas:
                    with contextlib.suppress(aiohttp.ClientError):
                        async with session.get(f"{r.url}/readyz") as resp:
                            if resp.status == 503:
                                not_ready.add(r.url)
                await asyncio.sleep(0.02)

    async def restart_postgres(burst: Burst) -> None:
        nonlocal restarted
        await burst.acks_reach(len(events) // 3)
        t = time.monotonic()
        await asyncio.to_thread(pg_cluster.restart)
        restarted = time.monotonic() - t

    watcher = asyncio.create_task(watch_readiness())
    try:
        await burst.run(restart_postgres)
    finally:
        watcher.cancel()
    line = await burst.verdict("pg-restart", f"PostgreSQL restarted in {restarted:.1f} s, "
                               f"{len(not_ready)} of 2 replicas seen not ready")
    assert burst.unavailable + burst.lost > 0, line
    assert len(not_ready) == 2, line
    async with aiohttp.ClientSession() as session:
        for r in replicas:
            async with session.get(f"{r.url}/readyz") as resp:
                assert resp.status == 200
