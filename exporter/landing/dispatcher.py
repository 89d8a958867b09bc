"""The landing checks of accepted Completed webhooks, claimed from the store and recorded in it.

The webhook stores the check with its Completed (``Changes.checks``) and is answered; nothing
else happens on the request path. Every ``poll`` seconds the ``Dispatcher`` claims the checks
whose Completed arrived more than ``settle`` seconds ago, as many as the ``Checker`` has free
slots, so a claimed check starts listing at once and ends within its lease. A claim is the
store's: with several replicas on PostgreSQL exactly one gets each check, and a replica that
dies holding one leaves it to be claimed again when the lease ends (one that stops gives its
claims up); SQLite has one process, so
a restart resumes every pending check at once. The result goes into the series (its landing,
the landed bytes in its run history) and marks the check made, in one change that every
replica applies: a recorded check is never made again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import tzinfo
from typing import Final

from exporter.domain.declared import DeclaredExport
from exporter.domain.destination import LandingRun, StoreKind
from exporter.domain.keys import SeriesKey
from exporter.domain.landing import LandingResult
from exporter.domain.tracker import ExportTracker
from exporter.landing.check import Checker, CheckPolicy
from exporter.landing.lister import ListerFactory, preload
from exporter.store import StoreError
from exporter.store.base import CheckKey, CheckRow

log = logging.getLogger(__name__)

#: Beyond the longest a check can take (its retries, a last listing, a last wait).
LEASE_MARGIN_SECONDS: Final = 60.0
POLL_SECONDS: Final = 5.0


class Dispatcher:
    """Claims due landing checks, runs them off the request path and records their results."""

    def __init__(self, tracker: ExportTracker,
                 exports: Callable[[], Mapping[SeriesKey, DeclaredExport]], *,
                 policy: CheckPolicy, concurrency: int = 4,
                 zone: tzinfo, poll: float = POLL_SECONDS,
                 listers: ListerFactory | None = None, env: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.tracker = tracker
        self.exports = exports
        self.settle = policy.settle
        self.lease = (policy.retry_for + policy.bound.seconds + policy.max_backoff
                      + LEASE_MARGIN_SECONDS)
        self.zone = zone
        self.poll = poll
        self.clock = clock
        #: This process, as its claims name it.
        self.owner = uuid.uuid4().hex
        self.concurrency = concurrency
        # The settle time is waited for by the claim, which survives a restart.
        self.checker = Checker(policy=replace(policy, settle=0.0), concurrency=concurrency,
                               max_pending=concurrency, listers=listers, env=env)
        self._running: set[CheckKey] = set()
        #: Stores whose client library was imported off the loop (``preload``).
        self._loaded: set[StoreKind] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self.dispatch()
            except StoreError as exc:
                log.warning("could not claim landing checks: %s; will retry", exc)
            await asyncio.sleep(self.poll)

    async def dispatch(self) -> int:
        """Claim the due checks there is room for and start them; how many were started."""
        room = self.concurrency - len(self._running)
        kinds = {e.destination.kind for e in self.exports().values() if e.destination}
        if room <= 0 or not kinds:
            return 0
        if kinds - self._loaded:  # at start, and after a reload that names a new store
            await asyncio.to_thread(preload, kinds - self._loaded)
            self._loaded |= kinds
        now = self.clock()
        rows = await self.tracker.store.claim_checks(self.owner, now - self.settle, now,
                                                     self.lease, room)
        started = 0
        for row in rows:
            key = row[:3]
            if key in self._running:  # a claim renewed while its check runs
                continue
            export = self.exports().get((row.account, row.partner, row.export_type,
                                         row.frequency))
            if export is None or export.destination is None:
                await self._record(row, None)  # no longer declared with a destination
                continue
            run = LandingRun(row.export_id, row.started, row.export_type, zone=self.zone)

            async def record(result: LandingResult, row: CheckRow = row) -> None:
                await self._record(row, result)

            self._running.add(key)
            if self.checker.submit(export.destination, run, record):
                started += 1
            else:
                self._running.discard(key)
        return started

    async def _record(self, row: CheckRow, result: LandingResult | None) -> None:
        try:
            outcome = await self.tracker.record_landing(row, result)
        except StoreError as exc:
            # Left claimed: once the lease ends, it is checked again.
            log.warning("could not store the landing check of export %s: %s",
                        row.export_id, exc)
        else:
            if outcome is not None and result is not None:
                log.info("landing of export %s (account %s): %s, %d object(s), %d byte(s) "
                         "under %s", row.export_id, row.account, outcome, result.objects,
                         result.bytes, result.destination.url)
        finally:
            self._running.discard(row[:3])

    async def close(self) -> None:
        """Stop claiming, cancel the checks running and give up their claims, so that another
        replica (or the next start) makes them without waiting for the lease."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.checker.close()
        try:
            await self.tracker.store.release_checks(self.owner)
        except StoreError as exc:
            log.warning("could not give up the landing checks claimed: %s", exc)
