"""A request for a path close to a route gets a 404 that names the route it meant."""

from __future__ import annotations

import pytest

from exporter.web.routes import near_miss
from tests.helpers import Exporter, event


@pytest.mark.parametrize(("method", "path", "meant"), [
    ("POST", "/webhook/", "POST /webhook"),
    ("POST", "/webhook/acme/", "POST /webhook/acme"),
    ("POST", "/Webhook", "POST /webhook"),
    ("POST", "/webhooks/acme", "POST /webhook/acme"),
    ("GET", "/metrics/", "GET /metrics"),
    ("GET", "/metric", "GET /metrics"),
    ("GET", "/api/v1/export", "GET /api/v1/exports"),
    ("POST", "/-/reload/", "POST /-/reload"),
])
async def test_near_misses_name_the_route(exporter: Exporter, method: str, path: str,
                                          meant: str) -> None:
    resp = await exporter.client.request(method, path, json=event())
    assert resp.status == 404
    doc = await resp.json()
    assert doc["status"] == "not_found"
    assert doc["error"] == f"no route {method} {path}: did you mean {meant}?"
    assert doc["path"] == meant.split(" ", 1)[1]


async def test_far_misses_stay_a_plain_404(exporter: Exporter) -> None:
    for path in ("/nothing-here", "/webhook/acme/extra/more", "/wp-admin/login.php"):
        resp = await exporter.client.post(path, data=b"{}")
        assert resp.status == 404
        assert await resp.json() == {"status": "not_found", "error": "Not Found"}
    # Nothing was stored by any near or far miss.
    assert not exporter.tracker.series


def test_near_miss_prefers_the_closest_route() -> None:
    routes = ["/webhook", "/webhook/{account}", "/metrics", "/api/v1/exports",
              "/api/v1/events"]
    assert near_miss("/api/v1/event/", routes) == ("/api/v1/events", "/api/v1/events")
    assert near_miss("/WEBHOOK/Acme", routes) == ("/webhook/{account}", "/webhook/Acme")
    assert near_miss("/webhook", routes) is None  # a route itself
    assert near_miss("/", routes) is None
