"""Each store, against its real server: a run's files landed (count and bytes), an empty
prefix, a prefix ending inside a file name, a missing bucket, a store that never answers and
a listing cut at its bound. Permission refusals are in test_permissions.py."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from exporter.domain.destination import LandingRun
from exporter.domain.landing import Outcome
from exporter.landing.check import CheckPolicy, check_landing
from exporter.landing.lister import Bound, Lister, tally
from tests.landing.conftest import AZ_ACCOUNT, Store

pytestmark = pytest.mark.process

_names = itertools.count()
RID = "1690283492"
EVENTS = LandingRun(RID, time.time(), "events")
QUICK = CheckPolicy(settle=0, retry_for=0, bound=Bound(pages=100, seconds=10, page_size=1000))
ListerOf = Callable[..., Lister]


def bucket_name(store: Store) -> str:
    # Names valid in all three stores; one per test, the servers live for the session.
    return f"landing-{store.kind}-{next(_names)}-{int(time.time() * 1000) % 10**8}"


async def filled(store: Store, files: dict[str, bytes]) -> str:
    bucket = bucket_name(store)
    await store.make_bucket(bucket)
    for name, data in files.items():
        await store.put(bucket, name, data)
    return bucket


def event_file(rid: str, idx: int) -> str:
    return f"ct/{rid}-1690283500-App_Launched-20230725-{idx}-db1.json.gz"


async def test_files_of_the_run_landed(store: Store, lister_of: ListerOf) -> None:
    files = {event_file(RID, 0): b"x" * 10, event_file(RID, 1): b"y" * 20,
             event_file(RID, 2): b"z" * 30,
             # Another request whose id starts with ours, and one whose run ts is our id.
             event_file(RID + "0", 0): b"no" * 50,
             f"ct/1690283493-{RID}-App_Launched-20230725-0-db1.json.gz": b"no" * 50,
             f"other/{RID}-1690283500-x.json.gz": b"no" * 50}
    bucket = await filled(store, files)
    dest = store.destination(bucket, "ct")
    before = time.time()
    result = await check_landing(dest, EVENTS, lister_of(dest), QUICK)
    assert (result.outcome, result.objects, result.bytes) == (Outcome.LANDED, 3, 60)
    assert result.prefix == f"ct/{RID}-" and not result.truncated and result.attempts == 1
    assert result.newest is not None and before - 60 <= result.newest <= time.time() + 60
    assert result.detail == ""


async def test_a_prefix_ending_inside_a_name_lists_only_that_request(
        store: Store, lister_of: ListerOf) -> None:
    bucket = await filled(store, {event_file(RID, 0): b"a", event_file(RID + "0", 0): b"bb",
                                  event_file("1690283493", 0): b"ccc"})
    dest = store.destination(bucket)
    listed: list[str] = []

    def every(o: Any) -> bool:
        listed.append(o.name)
        return True

    found = await tally(lister_of(dest), bucket, f"ct/{RID}-", Bound(), every)
    assert listed == [event_file(RID, 0)] and found.bytes == 1


async def test_an_empty_prefix_is_empty(store: Store, lister_of: ListerOf) -> None:
    bucket = await filled(store, {event_file("1690283493", 0): b"other run"})
    dest = store.destination(bucket, "ct")
    result = await check_landing(dest, EVENTS, lister_of(dest), QUICK)
    assert (result.outcome, result.objects, result.bytes, result.newest) == \
        (Outcome.EMPTY, 0, 0, None)
    empty = await filled(store, {})
    dest = store.destination(empty, "ct")
    assert (await check_landing(dest, EVENTS, lister_of(dest), QUICK)).outcome is Outcome.EMPTY


async def test_custom_names_are_matched_by_the_run_window(store: Store,
                                                          lister_of: ListerOf) -> None:
    bucket = await filled(store, {"ct/2023-07-25/lake-1690283500-i-1.csv.gz": b"12345"})
    dest = store.destination(bucket, "ct", folder="{{Date}}/{{Instance-id}}", names="custom")
    now = time.time()
    # 2023-07-25 in UTC: the folder's date is the run's start, the files' time is now.
    run = LandingRun(RID, 1690283492.0)
    assert dest.listing_prefix(run) == "ct/2023-07-25/"
    result = await check_landing(dest, replace(run, started=now - 60), lister_of(dest), QUICK)
    assert result.outcome is Outcome.EMPTY, "the date folder is the start's: 2023 is not today"
    dest = store.destination(bucket, "ct/2023-07-25", names="custom")
    result = await check_landing(dest, replace(run, started=now - 60), lister_of(dest), QUICK)
    assert (result.outcome, result.objects, result.bytes) == (Outcome.LANDED, 1, 5)
    later = replace(run, started=now + 3600)  # written long before this run started
    assert (await check_landing(dest, later, lister_of(dest), QUICK)).outcome is Outcome.EMPTY


async def test_a_missing_bucket_is_not_found(store: Store, lister_of: ListerOf) -> None:
    dest = store.destination(bucket_name(store))
    result = await check_landing(dest, EVENTS, lister_of(dest),
                                 replace(QUICK, retry_for=30))
    assert result.outcome is Outcome.NOT_FOUND and result.attempts == 1, result
    assert result.detail


async def test_a_store_that_does_not_answer_is_an_error_within_the_bound(
        store: Store, lister_of: ListerOf, silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}"
    dest = store.destination("silent-bucket")
    dest = replace(dest, endpoint=url + (f"/{AZ_ACCOUNT}" if store.kind == "azure" else ""))
    policy = replace(QUICK, bound=Bound(seconds=1.5))
    began = time.monotonic()
    result = await check_landing(dest, EVENTS, lister_of(dest), policy)
    took = time.monotonic() - began
    assert result.outcome is Outcome.ERROR and result.detail == "no answer within 1.5s"
    assert 1.4 <= took < 5


# The GCS emulator answers in one page whatever maxResults says: test_gcs.py pages GCS.
@pytest.mark.parametrize("kind", ["s3", "azure"])
async def test_a_listing_is_cut_at_its_page_bound(kind: str,
                                                  request: pytest.FixtureRequest) -> None:
    store: Store = request.getfixturevalue(f"{kind}_store")
    bucket = await filled(store, {event_file(RID, i): b"x" * (i + 1) for i in range(7)})
    dest = store.destination(bucket, "ct")
    lister = store.lister(dest)
    try:
        bound = Bound(pages=2, page_size=2, seconds=10)
        result = await check_landing(dest, EVENTS, lister, replace(QUICK, bound=bound))
        assert (result.outcome, result.objects, result.truncated) == (Outcome.LANDED, 4, True)
        assert result.bytes == 1 + 2 + 3 + 4
        # A bound the listing fits in is not truncated.
        whole = await check_landing(dest, EVENTS, lister,
                                    replace(QUICK, bound=Bound(pages=4, page_size=2)))
        assert (whole.objects, whole.bytes, whole.truncated) == (7, 28, False)
    finally:
        await lister.close()


async def test_an_empty_listing_is_retried_until_the_files_arrive(
        store: Store, lister_of: ListerOf) -> None:
    import asyncio

    bucket = await filled(store, {})
    dest = store.destination(bucket, "ct")
    policy = replace(QUICK, retry_for=20, backoff=0.2, max_backoff=0.4)
    check = asyncio.ensure_future(check_landing(dest, EVENTS, lister_of(dest), policy))
    await asyncio.sleep(0.5)
    assert not check.done()
    await store.put(bucket, event_file(RID, 0), b"late")
    result = await check
    assert (result.outcome, result.objects, result.bytes) == (Outcome.LANDED, 1, 4)
    assert result.attempts >= 2 and result.finished - result.started < 10

