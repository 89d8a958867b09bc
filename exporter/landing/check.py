"""The landing check of one run, with retries, and the ``Checker`` that runs them off the
request path.

A Completed webhook is answered first; the check starts after ``settle`` seconds (the files
of a run may still be arriving), lists the run's prefix, and retries an empty or failed
listing with doubling waits for ``retry_for`` seconds: a store's listing may lag its writes,
and a store may be briefly unreachable. A refused listing or a missing bucket is not retried:
waiting does not give a credential its permission. At most ``concurrency`` checks list at
once; the results go to the integrator's ``record`` callback.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Final

from exporter.domain.destination import Destination, LandingRun
from exporter.domain.landing import LandingResult, Outcome
from exporter.landing.lister import (
    Bound,
    Lister,
    ListerFactory,
    ListingError,
    ObjectInfo,
    Tally,
    open_lister,
    tally,
)

log = logging.getLogger(__name__)

#: Retried outcomes: the files may still be arriving, the store may come back.
_RETRIED: Final = (Outcome.EMPTY, Outcome.ERROR)


@dataclass(frozen=True, slots=True)
class CheckPolicy:
    """How long to wait, retry and list; every duration in seconds."""

    #: After a Completed, before the first listing.
    settle: float = 60.0
    #: How long after the first listing an empty or failed one is retried.
    retry_for: float = 900.0
    #: The first wait between attempts, doubled each time up to ``max_backoff``.
    backoff: float = 5.0
    max_backoff: float = 120.0
    #: With custom file names, objects modified this long before the run's start count.
    lead: float = 300.0
    bound: Bound = field(default_factory=Bound)


async def check_landing(destination: Destination, run: LandingRun, lister: Lister,
                        policy: CheckPolicy = CheckPolicy(),
                        clock: Callable[[], float] = time.time) -> LandingResult:
    """List ``run``'s objects at ``destination`` until they are found or ``retry_for`` is
    spent; never raises for anything the store does."""
    prefix = destination.listing_prefix(run)
    started = clock()
    delay = policy.backoff
    attempts = 0
    while True:
        attempts += 1
        checked = clock()

        def accept(o: ObjectInfo, checked: float = checked) -> bool:
            return destination.matches(run, o.name, o.modified, checked, policy.lead)

        detail = ""
        try:
            found = await tally(lister, destination.bucket, prefix, policy.bound, accept)
            outcome = Outcome.LANDED if found.objects else Outcome.EMPTY
        except ListingError as exc:
            found, outcome, detail = Tally(0, 0, None, 0, False), exc.outcome, exc.detail
        except Exception as exc:  # a client library's surprise must not end the checks
            log.exception("landing check of %s failed", destination.url)
            found, outcome = Tally(0, 0, None, 0, False), Outcome.ERROR
            detail = f"unexpected {exc.__class__.__name__}"
        finished = clock()
        if (outcome not in _RETRIED or found.truncated
                or finished + delay > started + policy.retry_for):
            return LandingResult(destination, run, outcome, found.objects, found.bytes,
                                 found.truncated, prefix, started, finished, attempts,
                                 found.newest, detail)
        await asyncio.sleep(delay)
        delay = min(delay * 2, policy.max_backoff)


Record = Callable[[LandingResult], Awaitable[None]]


class Checker:
    """Runs landing checks in the background: ``submit`` returns at once; at most
    ``concurrency`` checks list at a time and at most ``max_pending`` wait; one lister (one
    client) per store, account and endpoint, closed by ``close``."""

    def __init__(self, record: Record | None = None, *, policy: CheckPolicy = CheckPolicy(),
                 concurrency: int = 4, max_pending: int = 1000,
                 listers: ListerFactory | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.record = record
        self.policy = policy
        self.max_pending = max_pending
        self._open = listers or partial(open_lister, env=dict(os.environ if env is None
                                                              else env))
        self._listers: dict[tuple[str, str | None, str | None, str | None], Lister] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def pending(self) -> int:
        """Checks submitted and not yet recorded."""
        return len(self._tasks)

    def submit(self, destination: Destination, run: LandingRun,
               record: Record | None = None) -> bool:
        """Schedule a check of ``run``, its result to ``record`` (else the Checker's own);
        False (nothing scheduled) when closed or ``max_pending`` checks are waiting already."""
        if self._closed or len(self._tasks) >= self.max_pending:
            return False
        to = record or self.record
        if to is None:
            raise ValueError("no record callback for the check")
        task = asyncio.get_running_loop().create_task(self._check(destination, run, to))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _check(self, destination: Destination, run: LandingRun, record: Record) -> None:
        if self.policy.settle > 0:
            await asyncio.sleep(self.policy.settle)
        async with self._slots:
            try:
                lister = self._lister(destination)
            except Exception as exc:  # e.g. a credential file that cannot be read
                log.error("landing check of %s: %s", destination.url, exc)
                now = time.time()
                result = LandingResult(destination, run, Outcome.ERROR, 0, 0, False,
                                       destination.listing_prefix(run), now, now, 0,
                                       detail=str(exc))
            else:
                result = await check_landing(destination, run, lister, self.policy)
        try:
            await record(result)
        except Exception:
            log.exception("recording the landing check of %s failed", destination.url)

    def _lister(self, destination: Destination) -> Lister:
        key = destination.client_key
        if key not in self._listers:
            self._listers[key] = self._open(destination)
        return self._listers[key]

    async def join(self) -> None:
        """Wait until every submitted check is recorded."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """Cancel the checks not yet recorded and close the clients."""
        self._closed = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for lister in self._listers.values():
            await lister.close()
        self._listers.clear()
