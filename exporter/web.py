"""The HTTP layer: application factory, routes, middlewares and the exporter's own metrics.

Handlers translate HTTP into calls on the domain (``ExportTracker``) and back; they hold no
export logic. Cross-cutting concerns are middlewares: error shaping and outcome counting
(outermost), the source address allow-list, the limit on webhook requests in progress,
authentication, and the body size limit. The credential checks themselves live in ``auth``,
``oauth``, ``webconfig`` and ``allowlist``. Slow clients are cut off by the body read timeout
here and by the server options (``server_options``) that bound headers and idle connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final, TypedDict

import orjson
from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder

from exporter import __version__, oauth
from exporter.allowlist import SourcePolicy
from exporter.auth import BASIC_CHALLENGE, WebhookAuth
from exporter.collector import SeriesExposition, TrackerCollector
from exporter.config import Settings
from exporter.declared import ConfigHolder
from exporter.events import EventLog, WebhookRecord
from exporter.oauth import TOKEN_PATH, TokenEndpoint, TokenIssuer
from exporter.openapi import openapi_document
from exporter.payload import PayloadError, StatusEvent, TestPing, parse_body
from exporter.state import ExportTracker, TrackerSettings
from exporter.status import compute
from exporter.statuspage import DEFAULT_REFRESH_SECONDS, render
from exporter.store import SQLiteStore, StoreError
from exporter.webconfig import BasicAuthUsers

log = logging.getLogger(__name__)

ACCOUNT_RE: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
DEFAULT_ACCOUNT: Final = "default"
OUTCOMES: Final = ("accepted", "duplicate", "test", "invalid", "unauthorized", "forbidden",
                   "too_large", "unavailable", "timeout", "overloaded", "aborted")
EXPIRE_EVERY_SECONDS: Final = 30.0
#: Header limits passed to aiohttp's server: CleverTap sends a handful of short headers.
MAX_HEADERS: Final = 64
MAX_HEADER_LINE_BYTES: Final = 8190
#: After answering a request whose body was not read (408, 413, 401), aiohttp keeps reading
#: and discarding the body so the client sees the answer; this bounds that, then it closes.
LINGER_SECONDS: Final = 2.0
#: Seconds an overloaded client is told to wait before retrying.
RETRY_AFTER_SECONDS: Final = 1
_STATUS_BODIES: Final = {o: orjson.dumps({"status": o}) for o in ("accepted", "duplicate")}

# `_created` samples double the series count and no rule or dashboard here uses them.
disable_created_metrics()  # type: ignore[no-untyped-call]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Instruments:
    """The exporter's own request metrics, in an application-owned registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "clevertap_export_webhook_requests",
            "Webhook requests by outcome: accepted, duplicate (redelivery), test (CleverTap's "
            "ping), invalid, unauthorized, forbidden (source outside --allow-cidr), too_large, "
            "unavailable (state store failed), timeout (body not received in time), "
            "overloaded (too many in progress), aborted (client disconnected mid-body).",
            ["outcome"],
            registry=registry,
        )
        #: Webhook requests being handled now; ``limit_middleware`` keeps it under the limit.
        self.active = 0
        Gauge(
            "clevertap_export_webhook_requests_in_progress",
            "Webhook requests being received or handled right now.",
            registry=registry,
        ).set_function(lambda: self.active)
        # Children resolved once: labels() per request showed in the webhook profile.
        self.request_outcomes = {outcome: self.requests.labels(outcome) for outcome in OUTCOMES}
        self.token_requests = Counter(
            "clevertap_export_oauth_token_requests",
            "OAuth token endpoint requests by outcome: granted, or the refusal's RFC 6749 "
            "error code (invalid_request, invalid_client, unsupported_grant_type), forbidden, "
            "too_large.",
            ["outcome"],
            registry=registry,
        )
        for outcome in oauth.OUTCOMES:
            self.token_requests.labels(outcome)
        self.latency = Histogram(
            "clevertap_export_webhook_request_duration_seconds",
            "Seconds from receiving a webhook to answering it, including the durable commit.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0),
            registry=registry,
        )
        Gauge(
            "clevertap_export_exporter_build_info",
            "Always 1; the exporter's version as a label.",
            ["version"],
            registry=registry,
        ).labels(__version__).set(1)


SETTINGS: Final = web.AppKey("settings", Settings)
TRACKER: Final = web.AppKey("tracker", ExportTracker)
REGISTRY: Final = web.AppKey("registry", CollectorRegistry)
INSTRUMENTS: Final = web.AppKey("instruments", Instruments)
EXPOSITION: Final = web.AppKey("exposition", SeriesExposition)
AUTH: Final = web.AppKey("auth", WebhookAuth)
USERS: Final = web.AppKey("basic_auth_users", BasicAuthUsers)
SOURCES: Final = web.AppKey("sources", SourcePolicy)
TOKEN_ENDPOINT: Final = web.AppKey("token_endpoint", TokenEndpoint)
SOURCE_APP: Final = web.AppKey("source_app", web.Application)
OUTCOME: Final = web.RequestKey("outcome", str)
EVENT: Final = web.RequestKey("event", StatusEvent)
CONFIG: Final = web.AppKey("config", ConfigHolder)
EVENTS: Final = web.AppKey("events", EventLog)


def create_app(settings: Settings, *, serve_metrics: bool = True) -> web.Application:
    """Build the exporter application; its state store opens and closes with the app.

    With ``serve_metrics=False`` the app serves only the webhook; pair it with
    ``create_metrics_app`` on another port.
    """
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[error_middleware, source_middleware, limit_middleware, auth_middleware,
                     body_limit_middleware],
    )
    app[SETTINGS] = settings
    issuer = None
    if settings.oauth_client_id is not None and settings.oauth_client_secret is not None:
        issuer = TokenIssuer(settings.oauth_client_id, settings.oauth_client_secret,
                             settings.oauth_token_ttl, settings.oauth_signing_key)
        app[TOKEN_ENDPOINT] = TokenEndpoint(issuer)
        app.router.add_post(TOKEN_PATH, token)
    app[AUTH] = WebhookAuth(settings.auth_token, settings.auth_header,
                            settings.basic_auth_user, settings.basic_auth_password,
                            issuer.verify if issuer is not None else None)
    app[SOURCES] = SourcePolicy(settings.allow_cidrs, settings.trusted_proxies)
    if settings.web_config is not None and settings.web_config.basic_auth_users:
        users = BasicAuthUsers(settings.web_config.basic_auth_users)
        app[USERS] = users

        async def close_users(_: web.Application) -> None:
            users.close()

        app.on_cleanup.append(close_users)
    registry = CollectorRegistry(auto_describe=False)
    app[REGISTRY] = registry
    app[INSTRUMENTS] = Instruments(registry)
    config = ConfigHolder(settings.config_file)
    config.load_initial()  # raises ConfigError: an invalid file at start-up is fatal
    app[CONFIG] = config
    app[EVENTS] = EventLog()
    app.cleanup_ctx.append(_state_context)
    app.router.add_post("/webhook", webhook)
    app.router.add_post("/webhook/{account}", webhook)
    app.router.add_get("/openapi.json", openapi)
    if settings.bench_noop:
        app.router.add_post("/-/noop", noop)
    app[SOURCE_APP] = app
    if serve_metrics:
        _add_observability_routes(app)
    return app


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
        "keepalive_timeout": settings.idle_timeout,
        "lingering_time": LINGER_SECONDS,
        "max_headers": MAX_HEADERS,
        "max_line_size": MAX_HEADER_LINE_BYTES,
        "max_field_size": MAX_HEADER_LINE_BYTES,
    }


def create_metrics_app(source: web.Application) -> web.Application:
    """An app serving ``/metrics`` and health checks of ``source``, for ``--metrics-port``."""
    app = web.Application(middlewares=[error_middleware, auth_middleware])
    app[SOURCE_APP] = source
    _add_observability_routes(app)
    return app


def _add_observability_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/", status_page)
    app.router.add_get("/api/v1/exports", api_exports)
    app.router.add_get("/api/v1/events", api_events)
    app.router.add_post("/-/reload", reload_handler)


async def _state_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = SQLiteStore(settings.state_path)
    tracker = ExportTracker(
        store,
        TrackerSettings(
            max_label_values=settings.max_label_values,
            in_flight_timeout=settings.in_flight_timeout,
            retention=settings.retention,
            max_deliveries=settings.max_remembered_deliveries,
            max_runs=settings.max_runs,
            max_series=settings.max_series,
        ),
    )
    app[TRACKER] = tracker
    await _declare(app)
    registry = app[REGISTRY]
    registry.register(TrackerCollector(tracker, app[CONFIG]))
    app[EXPOSITION] = SeriesExposition(tracker)
    ProcessCollector(registry=registry)
    log.info("state loaded from %s: %d series, %d in flight, %d remembered deliveries",
             settings.state_path, len(tracker.series), len(tracker.in_flight),
             len(tracker.deliveries))
    if settings.webhook_open:
        log.warning("no webhook credentials configured: anyone who can reach the port can "
                    "post events (set --auth-token, --basic-auth-user, --oauth-client-id or "
                    "basic_auth_users in --web.config.file)")
    await _expire(tracker)
    task = asyncio.create_task(_expire_periodically(tracker))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        store.close()


async def _declare(app: web.Application) -> None:
    config = app[CONFIG].config
    await app[TRACKER].declare(config.exports.keys(), config.label_values())


async def reload_config(app: web.Application) -> tuple[bool, str]:
    """Re-read ``--config.file`` (SIGHUP, ``POST /-/reload``); keeps the old one on error."""
    holder = app[CONFIG]
    ok, message = await asyncio.to_thread(holder.reload)
    if ok and TRACKER in app:
        try:
            await _declare(app)
        except StoreError as exc:
            log.error("could not store the declared exports: %s", exc)
    return ok, message


async def _expire(tracker: ExportTracker) -> None:
    try:
        await tracker.expire()
    except StoreError:
        log.exception("could not store the expiry of in-flight exports; will retry")


async def _expire_periodically(tracker: ExportTracker) -> None:
    while True:
        await asyncio.sleep(EXPIRE_EVERY_SECONDS)
        await _expire(tracker)


def _json_error(status: int, outcome: str, message: str, **extra: object) -> web.Response:
    return web.json_response({"status": outcome, "error": message, **extra}, status=status)


def _outcome_of(status: int) -> str | None:
    if status in (400, 422):
        return "invalid"
    return {401: "unauthorized", 403: "forbidden", 408: "timeout", 413: "too_large",
            503: "unavailable"}.get(status)


def _clevertap_facing(path: str) -> bool:
    """The endpoints CleverTap calls: the webhook and the OAuth token endpoint."""
    return path.startswith("/webhook") or path == TOKEN_PATH


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Shape every error as JSON, never leak a 500 for client input, count webhook outcomes."""
    started = time.perf_counter()
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status == 413:
            limit = request.app[SOURCE_APP][SETTINGS].max_body_bytes
            response = _json_error(413, "too_large",
                                   f"request body exceeds the limit of {limit} bytes")
        elif exc.status < 400:
            raise
        else:
            response = _json_error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
            response.headers.update({k: v for k, v in exc.headers.items()
                                     if k in ("Allow", "WWW-Authenticate")})
    except Exception:
        log.exception("unexpected error handling %s %s", request.method, request.path)
        response = _json_error(500, "error", "internal error; see the exporter's log")
    instruments = request.app[SOURCE_APP][INSTRUMENTS]
    if request.path.startswith("/webhook"):
        outcome = request.get(OUTCOME) or _outcome_of(response.status)
        if outcome is not None:
            child = instruments.request_outcomes.get(outcome)
            (child or instruments.requests.labels(outcome)).inc()
            instruments.latency.observe(time.perf_counter() - started)
        _record(request, response, outcome or "error")
    elif request.path == TOKEN_PATH:
        outcome = request.get(OUTCOME) or {403: "forbidden", 413: "too_large"}.get(
            response.status)
        if outcome is not None:
            instruments.token_requests.labels(outcome).inc()
    return response


def _record(request: web.Request, response: web.StreamResponse, outcome: str) -> None:
    """Add the webhook to the log of the last ones shown on the status page."""
    event = request.get(EVENT)
    message = None
    if response.status >= 400 and isinstance(response, web.Response) and response.body:
        with contextlib.suppress(orjson.JSONDecodeError, TypeError, AttributeError):
            message = str(orjson.loads(response.body).get("error"))  # type: ignore[arg-type]
    if event is not None:
        record = WebhookRecord(
            received=event.received, account=event.account, outcome=outcome,
            http_status=response.status, export_id=event.export_id, partner=event.partner,
            export_type=event.export_type, frequency=event.frequency, status=event.status,
            event_time=event.event_time,
            message=f"'Date and Time' {event.time_problem}" if event.time_problem else None,
        )
    else:
        record = WebhookRecord(
            received=time.time(), account=request.match_info.get("account", DEFAULT_ACCOUNT),
            outcome=outcome, http_status=response.status, message=message,
        )
    request.app[SOURCE_APP][EVENTS].add(record)


@web.middleware
async def source_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse CleverTap-facing requests whose client is outside ``--allow-cidr`` (403)."""
    policy = request.app[SOURCES]
    if policy.restricts and _clevertap_facing(request.path):
        client = policy.client(request.remote, request.headers.getall("X-Forwarded-For", []))
        if not policy.admits(client):
            log.info("refused %s from %s (peer %s): outside --allow-cidr", request.path,
                     client, request.remote)
            return _json_error(403, "forbidden", "requests from this address are not allowed")
    return await handler(request)


@web.middleware
async def limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse webhook requests beyond ``--max-concurrent-requests`` rather than queue them.

    Each request in progress holds a body buffer and a pending commit; a bounded number keeps
    memory bounded and answers the excess at once (503 with Retry-After), which CleverTap
    retries. ``/metrics`` and the health checks are not counted, so they stay reachable.
    """
    if not request.path.startswith("/webhook"):
        return await handler(request)
    instruments = request.app[INSTRUMENTS]
    if instruments.active >= request.app[SETTINGS].max_concurrent_requests:
        request[OUTCOME] = "overloaded"
        response = _json_error(503, "overloaded",
                               "too many webhook requests in progress; retry later")
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    instruments.active += 1
    try:
        return await handler(request)
    finally:
        instruments.active -= 1


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Webhook credentials on the webhook; the web config's ``basic_auth_users`` everywhere.

    ``basic_auth_users`` follow exporter-toolkit: with any configured, every endpoint (metrics,
    health checks, unknown paths) needs one of those users. Two endpoints differ because an
    HTTP request has one Authorization header: the webhook admits its own credentials (token,
    Basic, OAuth bearer) as well as those users, and the token endpoint authenticates its
    client itself, with the client id and secret in that header (RFC 6749 section 2.3.1).
    """
    source = request.app[SOURCE_APP]
    users = source.get(USERS)
    if request.path.startswith("/webhook"):
        auth = source[AUTH]
        problem = auth.check(request.headers)
        if users is not None and (problem is not None or not auth.enabled):
            if await users.admits(request.headers):
                problem = None
            else:
                problem = ((problem + " or") if problem else "missing or invalid credentials: "
                           "send") + " HTTP Basic authorization of a web config user"
        if problem is not None:
            log.info("refused webhook from %s: %s", request.remote, problem)
            response = _json_error(401, "unauthorized", problem)
            response.headers["WWW-Authenticate"] = (
                auth.challenge if auth.enabled else BASIC_CHALLENGE)
            return response
    elif users is not None and not (request.path == TOKEN_PATH and TOKEN_ENDPOINT in source):
        if not await users.admits(request.headers):
            response = _json_error(401, "unauthorized", "HTTP Basic authorization of a web "
                                   "config user required")
            response.headers["WWW-Authenticate"] = BASIC_CHALLENGE
            return response
    return await handler(request)


@web.middleware
async def body_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a declared oversize body before reading it (chunked bodies hit client_max_size)."""
    limit = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    return await handler(request)


async def webhook(request: web.Request) -> web.Response:
    """Receive one CleverTap export status event."""
    account = request.match_info.get("account", DEFAULT_ACCOUNT)
    if not ACCOUNT_RE.fullmatch(account):
        return _json_error(400, "invalid",
                           "account in the URL must match [A-Za-z0-9_.-]{1,64}")
    settings = request.app[SETTINGS]
    body = await _read_body(request, settings.read_timeout)
    if isinstance(body, web.Response):
        return body
    result = parse_body(body, account, time.time(), settings.timezone)
    if isinstance(result, PayloadError):
        log.info("rejected webhook for account %s: %s", account, result.message)
        extra = {"fields": result.fields} if result.fields else {}
        return _json_error(result.http_status, "invalid", result.message, **extra)
    if isinstance(result, TestPing):
        request[OUTCOME] = "test"
        return web.json_response({"status": "test", "message": "test webhook acknowledged"})
    return await _ingest(request, result)


async def _read_body(request: web.Request, timeout: float) -> bytes | web.Response:
    """The whole body, or the answer when the client is too slow or goes away.

    aiohttp has no body read timeout of its own, so a client trickling bytes would hold the
    request (and a slot of ``--max-concurrent-requests``) for as long as it likes.
    """
    try:
        async with asyncio.timeout(timeout):
            return await request.read()
    except TimeoutError:
        log.info("webhook body from %s not received within %g s; closing the connection",
                 request.remote, timeout)
        response = _json_error(408, "timeout", f"request body not received within {timeout:g} s")
        response.force_close()  # the server then lingers at most LINGER_SECONDS and closes
        return response
    except ConnectionError:
        log.info("webhook client %s disconnected before sending the whole body", request.remote)
        request[OUTCOME] = "aborted"
        return _json_error(400, "aborted", "connection lost while reading the body")


async def _ingest(request: web.Request, event: StatusEvent) -> web.Response:
    request[EVENT] = event
    try:
        outcome = await request.app[TRACKER].ingest(event)
    except StoreError as exc:
        log.error("could not store event for account %s: %s", event.account, exc)
        return _json_error(503, "unavailable", "the event could not be stored; retry later")
    if event.time_problem is not None:
        log.warning("account %s export %s: 'Date and Time' %s, used the receipt time",
                    event.account, event.export_id, event.time_problem)
    request[OUTCOME] = outcome
    return _status_response(outcome)


def _status_response(outcome: str) -> web.Response:
    # The success bodies never vary: encode them once, not per request.
    return web.Response(body=_STATUS_BODIES[outcome], content_type="application/json")


async def token(request: web.Request) -> web.Response:
    """OAuth 2.0 client-credentials token endpoint (see ``exporter.oauth``)."""
    response, request[OUTCOME] = await request.app[TOKEN_ENDPOINT].respond(request)
    return response


async def noop(request: web.Request) -> web.Response:
    """Answer like an accepted webhook without reading, parsing or storing: the stack's ceiling."""
    return _status_response("accepted")


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition; OpenMetrics when the scraper asks for it."""
    source = request.app[SOURCE_APP]
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    openmetrics = content_type.startswith("application/openmetrics-text")
    # The cached per-series text first; the small registry ends OpenMetrics with "# EOF".
    body = source[EXPOSITION].render(openmetrics) + encoder(source[REGISTRY])
    response = web.Response(body=body, headers={"Content-Type": content_type})
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        response.enable_compression(web.ContentCoding.gzip)
    return response


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3 description of the routes, for clients and API fuzzers."""
    return web.json_response(openapi_document(request.app[SETTINGS]))


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and serving."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """The state store is usable: the writer runs and the database answers."""
    source = request.app[SOURCE_APP]
    tracker = source.get(TRACKER)
    if tracker is None or not tracker.store.healthy:
        return _json_error(503, "unavailable", "state store is not ready")
    if not await asyncio.to_thread(tracker.store.check):
        return _json_error(503, "unavailable", "state database cannot be read")
    return web.json_response({"status": "ready"})


async def status_page(request: web.Request) -> web.Response:
    """The human view: every export's state and the last webhooks. ``?refresh=0`` stops the
    page from reloading itself."""
    source = request.app[SOURCE_APP]
    try:
        refresh = int(request.query.get("refresh", DEFAULT_REFRESH_SECONDS))
    except ValueError:
        refresh = DEFAULT_REFRESH_SECONDS
    refresh = max(0, min(refresh, 3600))
    tracker = source.get(TRACKER)
    holder = source[CONFIG]
    now = time.time()
    statuses = compute(tracker, holder.config, now) if tracker is not None else []
    note = None
    if not holder.last_reload_successful:
        note = f"The last configuration reload failed; the previous one is in force: " \
               f"{holder.last_error}"
    body = render(statuses=statuses, events=source[EVENTS].newest_first(), now=now,
                  zone=source[SETTINGS].timezone, version=__version__, refresh=refresh,
                  config_note=note)
    return web.Response(text=body, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


async def api_exports(request: web.Request) -> web.Response:
    """Every known or declared export with its state, as on the status page."""
    source = request.app[SOURCE_APP]
    tracker = source.get(TRACKER)
    if tracker is None:
        return _json_error(503, "unavailable", "state store is not ready")
    holder = source[CONFIG]
    zone = source[SETTINGS].timezone
    now = time.time()
    statuses = compute(tracker, holder.config, now)
    return _json({
        "generated_at": now,
        "timezone": str(zone),
        "config": {
            "file": str(holder.path) if holder.path else None,
            "last_reload_successful": holder.last_reload_successful,
            "last_reload_success_timestamp": holder.last_success,
            "last_error": holder.last_error,
        },
        "exports": [s.to_json(zone, now) for s in statuses],
    })


async def api_events(request: web.Request) -> web.Response:
    """The last webhooks received (at most 100), newest first, with their outcome."""
    source = request.app[SOURCE_APP]
    zone = source[SETTINGS].timezone
    return _json({"events": [e.to_json(zone) for e in source[EVENTS].newest_first()]})


async def reload_handler(request: web.Request) -> web.Response:
    """Reload ``--config.file``; 500 with the reason (old configuration kept) when invalid."""
    ok, message = await reload_config(request.app[SOURCE_APP])
    if not ok:
        return _json_error(500, "error", message)
    return web.json_response({"status": "success", "message": message})


def _json(doc: dict[str, object]) -> web.Response:
    return web.Response(
        body=orjson.dumps(doc),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )
