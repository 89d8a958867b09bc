"""The middleware: the cross-cutting concerns of every request, in one.

``middleware`` admits the request (``admission``), shapes every error as JSON
(``responses``), counts webhook and token endpoint outcomes (``outcomes``) and records each
webhook in the event log (``requestlog``).
"""

from __future__ import annotations

import logging
import time

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from exporter.security.oauth import TOKEN_PATH
from exporter.web.admission import Handler, admitted, refusal
from exporter.web.appkeys import OUTCOME, RUNTIME, Runtime
from exporter.web.handlers import webhook as webhook_route
from exporter.web.outcomes import UNCOUNTED
from exporter.web.requestlog import record_webhook
from exporter.web.responses import (
    http_error,
    json_error,
    token_outcome_of,
    undecodable,
    webhook_outcome_of,
)
from exporter.web.routes import near_miss, webhook_path

log = logging.getLogger(__name__)


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Shape every error as JSON, never leak a 500 for client input, admit the request,
    count webhook outcomes.

    One middleware, because every middleware is one more coroutine (and one more frame to
    resume on each wake-up) on every request (bench/PROFILE.md).
    """
    started = time.perf_counter()
    rt = request.app[RUNTIME]
    # ``handler`` is the route's (the router matched the path exactly): one identity test.
    # A webhook path with no route for its method (405) is a webhook too.
    webhook = handler is webhook_route or (
        request.match_info.http_exception is not None
        and webhook_path(request.rel_url.path_safe) is not None)
    response: web.StreamResponse
    try:
        refused = refusal(request, rt, webhook)
        if refused is not None:
            response = refused
        else:
            if webhook:
                rt.instruments.active += 1
            try:
                response = await admitted(request, handler, rt, webhook)
            finally:
                if webhook:
                    rt.instruments.active -= 1
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        meant = _not_found(request) if exc.status == 404 else None
        response = meant or http_error(exc, rt.settings.limits.max_body_bytes)
    except RequestPayloadError:
        response = undecodable(request)
    except Exception:
        log.exception("unexpected error handling %s %s", request.method, request.path)
        response = json_error(500, "error", "internal error; see the exporter's log")
    if webhook:
        _count_webhook(request, rt, response, started)
    elif request.path == TOKEN_PATH:
        _count_token(request, rt, response)
    return response


def _not_found(request: web.Request) -> web.Response | None:
    """A 404 that names the route a near-miss (``POST /webhook/``, ``/Metrics``) meant."""
    path = request.rel_url.path
    resources = {r.canonical: r for r in request.app.router.resources()}
    found = near_miss(path, resources)
    if found is None:
        return None
    route, meant = found
    methods = sorted({r.method for r in resources[route]} - {"HEAD"})
    method = request.method if request.method in methods else " or ".join(methods)
    return json_error(404, "not_found", f"no route {request.method} {path[:200]}: did you mean "
                      f"{method} {meant[:200]}?", path=meant)


def _count_webhook(request: web.Request, rt: Runtime, response: web.StreamResponse,
                   started: float) -> None:
    outcome = request.get(OUTCOME) or webhook_outcome_of(response.status)
    if outcome is not None:
        rt.instruments.count_webhook(outcome, time.perf_counter() - started)
    record_webhook(request, rt, response, outcome or UNCOUNTED)


def _count_token(request: web.Request, rt: Runtime, response: web.StreamResponse) -> None:
    outcome = request.get(OUTCOME) or token_outcome_of(response.status)
    if outcome is not None:
        rt.instruments.token_requests.labels(outcome).inc()
