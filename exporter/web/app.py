"""The HTTP application: its factory, routes, server options and state lifecycle.

``middleware`` holds the cross-cutting concerns, ``handlers`` the routes (their paths are in
``routes``), ``appkeys`` the typed state they share, and ``instruments`` the exporter's own
request metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Final, TypedDict

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    ProcessCollector,
)

from exporter.domain.declared import ConfigHolder
from exporter.domain.tracker import ExportTracker
from exporter.landing.check import CheckPolicy
from exporter.landing.dispatcher import Dispatcher
from exporter.metrics.collector import TrackerCollector, WebConfigCollector
from exporter.metrics.exposition import SeriesExposition
from exporter.metrics.instruments import Instruments
from exporter.security import oauth
from exporter.security.allowlist import SourcePolicy
from exporter.security.assertion import AssertionVerifier
from exporter.security.auth import WebhookAuth
from exporter.security.oauth import TOKEN_PATH, ResourceOwner, TokenEndpoint, TokenIssuer
from exporter.security.users import BasicAuthUsers
from exporter.security.webconfig import WebConfigFile
from exporter.store import StoreError, describe, open_store
from exporter.web import routes
from exporter.web.appkeys import RUNTIME, Runtime
from exporter.web.handlers import (
    api_events,
    api_exports,
    forget,
    healthz,
    metrics,
    noop,
    openapi,
    readyz,
    reload_handler,
    runbook,
    status_page,
    token,
    webhook,
)
from exporter.web.middleware import middleware
from exporter.web.outcomes import described
from exporter.web.reload import declare_exports
from exporter.web.settings import Settings

log = logging.getLogger(__name__)

EXPIRE_EVERY_SECONDS: Final = 30.0

#: Header limits passed to aiohttp's server: CleverTap sends a handful of short headers.
MAX_HEADERS: Final = 64

MAX_HEADER_LINE_BYTES: Final = 8190

#: After answering a request whose body was not read (408, 413, 401), aiohttp keeps reading
#: and discarding the body so the client sees the answer; this bounds that, then it closes.
LINGER_SECONDS: Final = 2.0


def create_app(settings: Settings, *, serve_metrics: bool = True) -> web.Application:
    """Build the exporter application; its state store opens and closes with the app.

    With ``serve_metrics=False`` the app serves only the webhook; pair it with
    ``create_metrics_app`` on another port.
    """
    app = web.Application(
        client_max_size=settings.limits.max_body_bytes,
        middlewares=[middleware],
    )
    auth = settings.auth
    issuer = endpoint = None
    if auth.oauth_client_id is not None:
        issuer = TokenIssuer(auth.oauth_client_id, auth.oauth_client_secret,
                             auth.oauth_token_ttl, auth.oauth_signing_key)
        owner = (ResourceOwner(auth.oauth_username, auth.oauth_password)
                 if auth.oauth_username is not None and auth.oauth_password is not None else None)
        endpoint = TokenEndpoint(issuer, AssertionVerifier(
            auth.oauth_client_id, TOKEN_PATH, auth.oauth_client_secret,
            auth.oauth_client_public_key), owner, auth.oauth_refresh_token_ttl)
        app.router.add_post(TOKEN_PATH, token)
    config = ConfigHolder(settings.events.config_file)
    config.load_initial()  # raises ConfigError: an invalid file at start-up is fatal
    registry = CollectorRegistry(auto_describe=False)
    rt = app[RUNTIME] = Runtime(
        settings=settings,
        registry=registry,
        instruments=Instruments(registry, described(), oauth.OUTCOMES),
        auth=WebhookAuth(auth.auth_token, auth.auth_header,
                         auth.basic_auth_user, auth.basic_auth_password,
                         issuer.problem if issuer is not None else None),
        sources=SourcePolicy(auth.allow_cidrs, auth.trusted_proxies),
        config=config,
        token_endpoint=endpoint,
    )
    if settings.listen.web_config is not None:
        _add_web_config(app, rt, WebConfigFile(settings.listen.web_config))
    app.cleanup_ctx.append(_state_context)
    app.router.add_post(routes.WEBHOOK, webhook)
    app.router.add_post(routes.WEBHOOK_ACCOUNT, webhook)
    app.router.add_get(routes.OPENAPI, openapi)
    if settings.bench_noop:
        app.router.add_post(routes.NOOP, noop)
    if serve_metrics:
        _add_observability_routes(app)
    return app


def _add_web_config(app: web.Application, rt: Runtime, config_file: WebConfigFile) -> None:
    """The web config file, re-read when it changes; its users, response headers and reload
    status."""
    rt.web_config_file = config_file
    rt.registry.register(WebConfigCollector(config_file))
    users = rt.users = BasicAuthUsers()

    async def close_users(_: web.Application) -> None:
        users.close()

    app.on_cleanup.append(close_users)
    app.on_response_prepare.append(_configured_headers)


async def _configured_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``http_server_config.headers`` on every response, errors included, as exporter-toolkit."""
    config_file = request.app[RUNTIME].web_config_file
    if config_file is not None:
        response.headers.update(config_file.current().headers)


class ServerOptions(TypedDict):
    keepalive_timeout: float
    lingering_time: float
    max_headers: int
    max_line_size: int
    max_field_size: int


def server_options(settings: Settings) -> ServerOptions:
    """Keyword arguments for ``web.AppRunner`` that bound what one connection may hold.

    aiohttp's keep-alive timer also runs from the moment a connection opens until its first
    request's headers are complete, so it doubles as the header (slowloris) timeout.
    """
    return {
        "keepalive_timeout": settings.limits.idle_timeout,
        "lingering_time": LINGER_SECONDS,
        "max_headers": MAX_HEADERS,
        "max_line_size": MAX_HEADER_LINE_BYTES,
        "max_field_size": MAX_HEADER_LINE_BYTES,
    }


def create_metrics_app(source: web.Application) -> web.Application:
    """An app serving ``/metrics`` and health checks of ``source``, for ``--metrics-port``."""
    app = web.Application(middlewares=[middleware])
    app[RUNTIME] = source[RUNTIME]
    if source[RUNTIME].web_config_file is not None:
        app.on_response_prepare.append(_configured_headers)
    _add_observability_routes(app)
    return app


def _add_observability_routes(app: web.Application) -> None:
    app.router.add_get(routes.METRICS, metrics)
    app.router.add_get(routes.HEALTHZ, healthz)
    app.router.add_get(routes.READYZ, readyz)
    app.router.add_get(routes.STATUS_PAGE, status_page)
    app.router.add_get(routes.API_EXPORTS, api_exports)
    app.router.add_get(routes.API_EVENTS, api_events)
    app.router.add_delete(routes.API_EXPORTS_ACCOUNT, forget)
    app.router.add_delete(routes.API_EXPORTS_SERIES, forget)
    app.router.add_post(routes.RELOAD, reload_handler)
    app.router.add_get(routes.RUNBOOK, runbook)


async def _state_context(app: web.Application) -> AsyncIterator[None]:
    rt = app[RUNTIME]
    settings, state = rt.settings, rt.settings.state
    async with open_store(state.path, state.url, init=state.init,
                          skip_corrupt=state.skip_corrupt) as store:
        tracker = ExportTracker(store, settings.limits)
        await declare_exports(rt, tracker)
        rt.registry.register(TrackerCollector(tracker, rt.config))
        ProcessCollector(registry=rt.registry)
        rt.exposition = SeriesExposition(tracker)
        rt.tracker = tracker
        where = state.path if state.url is None else describe(state.url)
        log.info("state loaded from %s: %d series, %d in flight, %d remembered deliveries",
                 where, len(tracker.series), len(tracker.in_flight), len(tracker.deliveries))
        if settings.webhook_open:
            log.warning("no webhook credentials configured: anyone who can reach the port can "
                        "post events (set --auth-token, --basic-auth-user, --oauth-client-id "
                        "or basic_auth_users in --web.config.file)")
        await _expire(tracker)
        task = asyncio.create_task(_expire_periodically(tracker))
        landing = settings.landing
        checks = Dispatcher(tracker, lambda: rt.config.config.exports,
                            policy=CheckPolicy(settle=landing.settle,
                                               retry_for=landing.retry_for),
                            concurrency=landing.concurrency, zone=settings.events.timezone)
        checks.start()
        try:
            yield
        finally:
            rt.tracker = rt.exposition = None  # webhooks now get 503, not a closed store
            await checks.close()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _expire(tracker: ExportTracker) -> None:
    try:
        await tracker.expire()
    except StoreError:
        log.exception("could not store the expiry of in-flight exports; will retry")


async def _expire_periodically(tracker: ExportTracker) -> None:
    while True:
        await asyncio.sleep(EXPIRE_EVERY_SECONDS)
        await _expire(tracker)
