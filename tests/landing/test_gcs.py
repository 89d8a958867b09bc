"""What the GCS emulator does not do: refuse a token, page a listing. A real HTTP server on
127.0.0.1 answering GCS's JSON API (objects.list) as GCS documents it stands in for it."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from exporter.domain.destination import parse_destination
from exporter.domain.landing import Outcome
from exporter.landing.check import check_landing
from exporter.landing.lister import Bound, open_lister
from tests.landing.test_stores import EVENTS, QUICK, RID, event_file

NAMES = [event_file(RID, i) for i in range(7)]
Serve = Callable[[web.Application], Awaitable[TestServer]]


def gcs_app(seen: list[dict[str, str]]) -> web.Application:
    async def objects(request: web.Request) -> web.Response:
        seen.append(dict(request.query))
        bucket = request.match_info["bucket"]
        if bucket == "denied":
            return web.json_response({"error": {"code": 403, "message": "lister@p.iam does "
                                      "not have storage.objects.list access"}}, status=403)
        if bucket == "expired":
            return web.json_response({"error": {"code": 401, "message": "Invalid Credentials"}},
                                     status=401)
        prefix = request.query.get("prefix", "")
        size = int(request.query.get("maxResults", "1000"))
        start = int(request.query.get("pageToken", "0"))
        names = [n for n in NAMES if n.startswith(prefix)]
        page = names[start:start + size]
        body: dict[str, Any] = {"items": [
            {"name": n, "size": str(len(n)), "updated": "2023-07-25T11:12:00.000Z"}
            for n in page]}
        if start + size < len(names):
            body["nextPageToken"] = str(start + size)
        return web.json_response(body)

    app = web.Application()
    app.router.add_get("/storage/v1/b/{bucket}/o", objects)
    return app


async def check(serve: Serve, bucket: str, bound: Bound | None = None) -> Any:
    seen: list[dict[str, str]] = []
    server = await serve(gcs_app(seen))
    dest = parse_destination(f"gs://{bucket}/ct", endpoint=str(server.make_url("")))
    lister = open_lister(dest, {})
    try:
        policy = replace(QUICK, bound=bound or Bound())
        return await check_landing(dest, EVENTS, lister, policy), seen
    finally:
        await lister.close()


@pytest.fixture
def serve(aiohttp_server: Any) -> Serve:
    async def start(app: web.Application) -> TestServer:
        server: TestServer = await aiohttp_server(app, host="127.0.0.1")
        return server

    return start


async def test_gcs_pages_are_followed_and_cut_at_the_bound(serve: Serve) -> None:
    result, seen = await check(serve, "lake", Bound(pages=2, page_size=3))
    assert (result.outcome, result.objects, result.truncated) == (Outcome.LANDED, 6, True)
    assert result.bytes == sum(len(n) for n in NAMES[:6])
    assert result.newest == 1690283520.0
    # The request asks for only the fields counted, under the run's prefix.
    assert seen[0] == {"prefix": f"ct/{RID}-", "maxResults": "3",
                       "fields": "items(name,size,updated),nextPageToken"}
    assert seen[1]["pageToken"] == "3"
    result, _ = await check(serve, "lake", Bound(pages=3, page_size=3))
    assert (result.objects, result.truncated, result.bytes) == \
        (7, False, sum(map(len, NAMES)))


async def test_gcs_refusals_are_cannot_list_permission(serve: Serve) -> None:
    began = time.monotonic()
    result, _ = await check(serve, "denied")
    assert result.outcome is Outcome.CANNOT_LIST_PERMISSION and result.attempts == 1
    assert result.detail.startswith("HTTP 403") and "storage.objects.list" in result.detail
    result, _ = await check(serve, "expired")
    assert result.outcome is Outcome.CANNOT_LIST_PERMISSION
    assert time.monotonic() - began < 10
