"""The OpenAPI document (``exporter/web/openapi.py``) names every route the app serves, with
each combination of flags that adds or moves routes."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web

from exporter.web.app import create_app, create_metrics_app
from exporter.web.openapi import openapi_document
from tests.helpers import make_settings


def _routes(app: web.Application) -> set[tuple[str, str]]:
    # aiohttp adds a HEAD route beside every GET; the document says so once, in its summary.
    return {(r.method.lower(), r.resource.canonical) for r in app.router.routes()
            if r.resource is not None and r.method != "HEAD"}


def _documented(doc: dict[str, object]) -> set[tuple[str, str]]:
    paths = doc["paths"]
    assert isinstance(paths, dict)
    return {(method, path) for path, ops in paths.items() for method in ops}


@pytest.mark.parametrize("flags", [
    (),
    ("--oauth-client-id", "ct", "--oauth-client-secret", "s3cret", "--bench-noop",
     "--oauth-username", "u", "--oauth-password", "p"),
    ("--metrics-port", "9999"),
], ids=["default", "oauth-and-noop", "metrics-port"])
def test_openapi_describes_every_route(tmp_path: Path, flags: tuple[str, ...]) -> None:
    settings = make_settings(tmp_path / "state.db", *flags)
    separate = settings.listen.metrics_port is not None
    app = create_app(settings, serve_metrics=not separate)
    served = _routes(app) | (_routes(create_metrics_app(app)) if separate else set())
    assert _documented(openapi_document(settings)) == served
    for path in ("/oauth/token", "/", "/api/v1/exports", "/api/v1/events", "/-/reload"):
        if path != "/oauth/token" or "--oauth-client-id" in flags:
            assert any(p == path for _, p in served)
