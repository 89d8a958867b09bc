"""Route handlers: translate HTTP into calls on the domain (``ExportTracker``) and back.

They hold no export logic. Slow senders are cut off by the body read timeout here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

import orjson
from aiohttp import web
from prometheus_client.exposition import choose_encoder

from exporter import __version__
from exporter.domain.keys import ACCOUNT_PATTERN, ACCOUNT_RE, DEFAULT_ACCOUNT
from exporter.domain.payload import (
    PayloadError,
    StatusEvent,
    TestPing,
    parse_body,
)
from exporter.domain.status import clock_problems, compute
from exporter.domain.tracker import DeclaredError
from exporter.metrics.exposition import NO_SERIES
from exporter.store import Refused, StoreError
from exporter.web import routes
from exporter.web.appkeys import EVENT, OUTCOME, RUNTIME, Runtime
from exporter.web.outcomes import Outcome
from exporter.web.reload import reload_config
from exporter.web.responses import json_error

log = logging.getLogger(__name__)

_STATUS_BODIES: Final = {o.value: orjson.dumps({"status": o})
                         for o in (Outcome.ACCEPTED, Outcome.DUPLICATE)}


async def webhook(request: web.Request) -> web.Response:
    """Receive one CleverTap export status event."""
    account = request.match_info.get("account", DEFAULT_ACCOUNT)
    if not ACCOUNT_RE.fullmatch(account):
        return json_error(400, Outcome.INVALID,
                          f"account in the URL must match {ACCOUNT_PATTERN}")
    rt = request.app[RUNTIME]
    settings = rt.settings
    # A body that came whole with the headers, as CleverTap's small ones do, needs no timer.
    body = (await request.read() if request.content.is_eof()
            else await _read_body(request, settings.limits.read_timeout))
    if isinstance(body, web.Response):
        return body
    result = parse_body(body, account, time.time(), settings.events.timezone,
                        settings.events.window)
    if isinstance(result, PayloadError):
        if result.time_refused is not None:
            rt.instruments.time_refused.labels(result.time_refused).inc()
        log.info("rejected webhook for account %s: %s", account, result.message)
        extra = {"fields": result.fields} if result.fields else {}
        return json_error(result.http_status, Outcome.INVALID, result.message, **extra)
    if isinstance(result, TestPing):
        request[OUTCOME] = Outcome.TEST
        return web.json_response({"status": Outcome.TEST, "message": "test webhook acknowledged"})
    # Stored here rather than in a helper coroutine: each one is another frame on every
    # wake-up of the request (bench/PROFILE.md).
    event = result
    request[EVENT] = event
    tracker = rt.tracker
    if tracker is None:
        return json_error(503, Outcome.UNAVAILABLE, "state store is not ready")
    try:
        outcome = await tracker.ingest(event)
    except Refused as exc:  # this event alone: a retry is refused again
        log.warning("account %s export %s: %s", event.account, event.export_id, exc)
        return json_error(422, Outcome.INVALID, f"the event cannot be stored: {exc}")
    except StoreError as exc:
        log.error("could not store event for account %s: %s", event.account, exc)
        return json_error(503, Outcome.UNAVAILABLE, "the event could not be stored; retry later")
    request[OUTCOME] = outcome
    _note(rt, event, outcome)
    return _status_response(outcome)


def _note(rt: Runtime, event: StatusEvent, outcome: str) -> None:
    """Log and count what is odd about a stored event."""
    if event.time_problem is not None:
        log.warning("account %s export %s: 'Date and Time' %s, used the receipt time",
                    event.account, event.export_id, event.time_problem)
    unknown = event.unknown_labels
    if unknown and outcome == Outcome.ACCEPTED:
        counts = rt.instruments.unknown_values
        for label in unknown:
            counts[label] += 1
        log.info("account %s export %s: accepted with unknown %s", event.account,
                 event.export_id, ", ".join(f"{lb} {getattr(event, lb)!r}" for lb in unknown))


async def _read_body(request: web.Request, timeout: float) -> bytes | web.Response:
    """The whole body of one still arriving, or the answer when the client is too slow or
    goes away.

    aiohttp has no body read timeout of its own, so a client trickling bytes would hold the
    request (and a slot of ``--max-concurrent-requests``) for as long as it likes.
    """
    try:
        async with asyncio.timeout(timeout):
            return await request.read()
    except TimeoutError:
        log.info("webhook body from %s not received within %g s; closing the connection",
                 request.remote, timeout)
        response = json_error(408, Outcome.TIMEOUT,
                              f"request body not received within {timeout:g} s")
        response.force_close()  # the server then lingers at most LINGER_SECONDS and closes
        return response
    except ConnectionError:
        log.info("webhook client %s disconnected before sending the whole body", request.remote)
        request[OUTCOME] = Outcome.ABORTED
        return json_error(400, Outcome.ABORTED, "connection lost while reading the body")


def _status_response(outcome: str) -> web.Response:
    # The success bodies never vary: encode them once, not per request.
    return web.Response(body=_STATUS_BODIES[outcome], content_type="application/json")


async def token(request: web.Request) -> web.Response:
    """OAuth 2.0 client-credentials token endpoint (see ``exporter.security.oauth``)."""
    endpoint = request.app[RUNTIME].token_endpoint
    assert endpoint is not None  # the route exists only with the endpoint
    response, request[OUTCOME] = await endpoint.respond(request)
    return response


async def noop(request: web.Request) -> web.Response:
    """Answer like an accepted webhook without reading, parsing or storing: the stack's ceiling."""
    return _status_response(Outcome.ACCEPTED)


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition; OpenMetrics when the scraper asks for it, gzip when it accepts it."""
    rt = request.app[RUNTIME]
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    openmetrics = content_type.startswith("application/openmetrics-text")
    # The cached per-series part first; the small registry ends OpenMetrics with "# EOF".
    series = rt.exposition.snapshot(openmetrics) if rt.exposition is not None else NO_SERIES
    tail = encoder(rt.registry)
    headers = {"Content-Type": content_type, "Vary": "Accept-Encoding"}
    if "gzip" not in request.headers.get("Accept-Encoding", ""):
        return web.Response(body=series.text(tail), headers=headers)
    # Compressed from cached fragments here, not by aiohttp: only what changed is deflated.
    headers["Content-Encoding"] = "gzip"
    return web.Response(body=series.gzip(tail), headers=headers)


async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3 description of the routes, for clients and API fuzzers."""
    from exporter.web.openapi import openapi_document  # loaded when first asked for

    return web.json_response(openapi_document(request.app[RUNTIME].settings))


async def healthz(request: web.Request) -> web.Response:
    """The process is alive and serving."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """A webhook would be stored now: the store is healthy and a write probe commits (a read
    alone succeeds on a full disk, and on a state file deleted while open)."""
    rt = request.app[RUNTIME]
    tracker = rt.tracker
    if tracker is None or not tracker.store.healthy:
        return json_error(503, Outcome.UNAVAILABLE, "state store is not ready")
    if not await asyncio.to_thread(tracker.store.check):
        return json_error(503, Outcome.UNAVAILABLE, "state database cannot be written")
    return web.json_response({"status": "ready"})


async def status_page(request: web.Request) -> web.Response:
    """The human view: every export's state and the last webhooks. ``?refresh=0`` stops the
    page from reloading itself."""
    from exporter.web.statuspage import DEFAULT_REFRESH_SECONDS, render  # loaded when first asked

    rt = request.app[RUNTIME]
    try:
        refresh = int(request.query.get("refresh", DEFAULT_REFRESH_SECONDS))
    except ValueError:
        refresh = DEFAULT_REFRESH_SECONDS
    refresh = max(0, min(refresh, 3600))
    tracker = rt.tracker
    holder = rt.config
    now = time.time()
    statuses = compute(tracker, holder.config, now) if tracker is not None else []
    note = None
    if not holder.last_reload_successful:
        note = f"The last configuration reload failed; the previous one is in force: " \
               f"{holder.last_error}"
    clock = clock_problems(tracker.delivery_delay) if tracker is not None else []
    body = render(statuses=statuses, events=rt.events.newest_first(), now=now,
                  zone=rt.settings.events.timezone, version=__version__, refresh=refresh,
                  config_note=note, clock=clock)
    return web.Response(text=body, content_type="text/html", charset="utf-8",
                        headers={"Cache-Control": "no-store"})


async def api_exports(request: web.Request) -> web.Response:
    """Every known or declared export with its state, as on the status page."""
    rt = request.app[RUNTIME]
    tracker = rt.tracker
    if tracker is None:
        return json_error(503, Outcome.UNAVAILABLE, "state store is not ready")
    holder = rt.config
    zone = rt.settings.events.timezone
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
    rt = request.app[RUNTIME]
    zone = rt.settings.events.timezone
    return _json({"events": [e.to_json(zone) for e in rt.events.newest_first()]})


async def reload_handler(request: web.Request) -> web.Response:
    """Reload ``--config.file``; 500 with the reason (old configuration kept) when invalid."""
    ok, message = await reload_config(request.app[RUNTIME])
    if not ok:
        return json_error(500, "error", message)
    return web.json_response({"status": "success", "message": message})


async def forget(request: web.Request) -> web.Response:
    """Forget an account's series, or one series, for good (durably, on every replica)."""
    rt = request.app[RUNTIME]
    refused = _admin_refusal(request, rt)
    if refused is not None:
        return refused
    info = request.match_info
    account = info["account"]
    if not ACCOUNT_RE.fullmatch(account):
        return json_error(400, Outcome.INVALID, f"account must match {ACCOUNT_PATTERN}")
    series = ((account, info["partner"], info["export_type"], info["frequency"])
              if "partner" in info else None)
    tracker = rt.tracker
    if tracker is None:
        return json_error(503, Outcome.UNAVAILABLE, "state store is not ready")
    try:
        forgotten = await tracker.forget(account, series)
    except DeclaredError as exc:
        return json_error(409, "declared", str(exc))
    except StoreError as exc:
        log.error("could not store forgetting account %s: %s", account, exc)
        return json_error(503, Outcome.UNAVAILABLE, "could not be stored; retry later")
    if not forgotten:
        what = "/".join(series) if series is not None else f"account {account}"
        return json_error(404, "not_found", f"no series of {what} is known: GET "
                          f"{routes.API_EXPORTS} lists them, with their label values")
    keys = ("account", "partner", "export_type", "frequency")
    return _json({"status": "forgotten",
                  "series": [dict(zip(keys, key, strict=True)) for key in forgotten]})


def _admin_refusal(request: web.Request, rt: Runtime) -> web.Response | None:
    """Why a request may not change the state by hand: it needs the webhook's credentials or
    a web config user (the middleware admitted it as one, when any is configured); with
    neither configured, nobody may."""
    config = rt.web_config_file
    if config is not None and config.current().basic_auth_users:
        return None
    if not rt.auth.enabled:
        return json_error(403, Outcome.FORBIDDEN, "changing the state by hand needs "
                          "credentials: start the exporter with --auth-token, "
                          "--basic-auth-user or --oauth-client-id (or basic_auth_users in "
                          "--web.config.file), and send the same")
    problem = rt.auth.check(request.headers)
    if problem is None:
        return None
    response = json_error(401, Outcome.UNAUTHORIZED, problem)
    response.headers["WWW-Authenticate"] = rt.auth.challenge
    return response


def _json(doc: dict[str, object]) -> web.Response:
    return web.Response(
        body=orjson.dumps(doc),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )
