"""The Checker: checks after the settle delay, a bounded number at once, results to the
integrator's callback, one client per store; against moto's S3 server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from dataclasses import replace

import pytest

from exporter.domain.destination import Destination, LandingRun
from exporter.domain.landing import LandingResult, Outcome
from exporter.landing.check import Checker
from exporter.landing.lister import Lister, Page
from tests.landing.conftest import S3Store
from tests.landing.test_stores import QUICK, event_file, filled

pytestmark = pytest.mark.process


class Watched:
    """A real lister, and how many of its listings run at once (the most seen)."""

    def __init__(self, lister: Lister, hold: float) -> None:
        self.lister = lister
        self.hold = hold
        self.now = self.most = self.opened = 0

    async def pages(self, bucket: str, prefix: str, page_size: int) -> AsyncGenerator[Page, None]:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(self.hold)  # a slow store: the listings overlap
            async for page in self.lister.pages(bucket, prefix, page_size):
                yield page
        finally:
            self.now -= 1

    async def close(self) -> None:
        await self.lister.close()


async def test_checks_settle_run_a_bounded_number_at_once_and_are_recorded(
        s3_store: S3Store) -> None:
    runs = [LandingRun(str(1690283492 + i), time.time(), "events") for i in range(8)]
    bucket = await filled(s3_store, {event_file(r.request_id, 0): b"x" * (i + 1)
                                     for i, r in enumerate(runs[:6])})
    dest = s3_store.destination(bucket, "ct")
    watched: list[Watched] = []

    def listers(d: Destination) -> Lister:
        watched.append(Watched(s3_store.lister(d), hold=0.3))
        return watched[-1]

    recorded: list[LandingResult] = []

    async def record(result: LandingResult) -> None:
        recorded.append(result)
        if len(recorded) == 1:
            raise RuntimeError("the integrator's store is down")  # logged, checks go on

    checker = Checker(record, policy=replace(QUICK, settle=0.4), concurrency=3,
                      listers=listers)
    submitted = time.time()
    assert all(checker.submit(dest, run) for run in runs)
    assert checker.pending == 8 and recorded == []
    await checker.join()
    await checker.close()
    assert len(watched) == 1, "one client for one store"
    assert watched[0].most == 3
    assert checker.pending == 0
    by_run = {r.run.request_id: r for r in recorded}
    assert len(by_run) == 8
    for i, run in enumerate(runs):
        result = by_run[run.request_id]
        assert result.started >= submitted + 0.4
        expected = (Outcome.LANDED, 1, i + 1) if i < 6 else (Outcome.EMPTY, 0, 0)
        assert (result.outcome, result.objects, result.bytes) == expected


async def test_the_pending_checks_are_bounded_and_close_cancels_them(
        s3_store: S3Store) -> None:
    recorded: list[LandingResult] = []

    async def record(result: LandingResult) -> None:
        recorded.append(result)

    checker = Checker(record, policy=replace(QUICK, settle=60), max_pending=2,
                      env=s3_store.env())
    dest = s3_store.destination("bucket")
    run = LandingRun("1", time.time())
    assert checker.submit(dest, run) and checker.submit(dest, run)
    assert not checker.submit(dest, run)
    await checker.close()
    assert checker.pending == 0 and recorded == []
    assert not checker.submit(dest, run)


async def test_a_credential_file_that_cannot_be_read_is_recorded_as_an_error(
        s3_store: S3Store) -> None:
    recorded: list[LandingResult] = []

    async def record(result: LandingResult) -> None:
        recorded.append(result)

    env = {"EXPORTER_S3_ACCESS_KEY_ID": "AKIA", "EXPORTER_S3_SECRET_ACCESS_KEY_FILE":
           "/nonexistent/secret"}
    checker = Checker(record, policy=QUICK, env=env)
    assert checker.submit(s3_store.destination("bucket"), LandingRun("1", time.time()))
    await checker.join()
    await checker.close()
    [result] = recorded
    assert result.outcome is Outcome.ERROR and result.attempts == 0
    assert result.detail == "cannot read EXPORTER_S3_SECRET_ACCESS_KEY_FILE: " \
                            "FileNotFoundError"
