"""Middlewares: the cross-cutting concerns of every request.

One, ``middleware``: error shaping and outcome counting around admission (the web config's
rate limit and client certificate SANs, the source address allow-list, the limit on webhook
requests in progress, authentication, and the body size limit, in that order). The credential
checks themselves live in ``auth``, ``oauth``, ``webconfig`` and ``allowlist``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import ContentEncodingError, HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from exporter.domain.keys import DEFAULT_ACCOUNT
from exporter.metrics.instruments import Instruments
from exporter.security.auth import BASIC_CHALLENGE
from exporter.security.oauth import TOKEN_PATH
from exporter.security.users import PasswordChecksBusy
from exporter.web.appkeys import EVENT, OUTCOME, RUNTIME, Runtime
from exporter.web.events import WebhookRecord

if TYPE_CHECKING:
    from exporter.security.allowlist import SourcePolicy
    from exporter.security.webconfig import WebConfigFile

log = logging.getLogger(__name__)

#: Seconds an overloaded client is told to wait before retrying.
RETRY_AFTER_SECONDS: Final = 1

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def json_error(status: int, outcome: str, message: str, **extra: object) -> web.Response:
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
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Shape every error as JSON, never leak a 500 for client input, admit the request
    (``_refusal``, ``_authorized``), count webhook outcomes.

    One middleware, because every middleware is one more coroutine (and one more frame to
    resume on each wake-up) on every request (bench/PROFILE.md).
    """
    started = time.perf_counter()
    rt = request.app[RUNTIME]
    path = request.path
    webhook = path.startswith("/webhook")
    response: web.StreamResponse
    try:
        refusal = _refusal(request, rt, webhook)
        if refusal is not None:
            response = refusal
        else:
            if webhook:
                rt.instruments.active += 1
            try:
                response = await _authorized(request, handler, rt)
            finally:
                if webhook:
                    rt.instruments.active -= 1
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = _http_error(exc, rt)
    except RequestPayloadError:
        response = _undecodable(request)
    except Exception:
        log.exception("unexpected error handling %s %s", request.method, path)
        response = json_error(500, "error", "internal error; see the exporter's log")
    if webhook:
        _count_webhook(request, rt, response, started)
    elif path == TOKEN_PATH:
        _count_token(request, rt, response)
    return response


def _http_error(exc: web.HTTPException, rt: Runtime) -> web.Response:
    if exc.status == 413:
        limit = rt.settings.limits.max_body_bytes
        return json_error(413, "too_large", f"request body exceeds the limit of {limit} bytes")
    response = json_error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
    response.headers.update({k: v for k, v in exc.headers.items()
                             if k in ("Allow", "WWW-Authenticate")})
    return response


def _count_webhook(request: web.Request, rt: Runtime, response: web.StreamResponse,
                   started: float) -> None:
    outcome = request.get(OUTCOME) or _outcome_of(response.status)
    if outcome is not None:
        rt.instruments.count_webhook(outcome, time.perf_counter() - started)
    _record(request, rt, response, outcome or "error")


def _count_token(request: web.Request, rt: Runtime, response: web.StreamResponse) -> None:
    outcome = request.get(OUTCOME) or {403: "forbidden", 413: "too_large"}.get(response.status)
    if outcome is not None:
        rt.instruments.token_requests.labels(outcome).inc()


def _undecodable(request: web.Request) -> web.Response:
    """The 400 of a body that fails to decompress (aiohttp reports it when the body is read)."""
    coding = request.headers.get("Content-Encoding", "").strip() or "identity"
    message = f"request body cannot be decoded as Content-Encoding {coding[:32]!r}"
    log.info("refused %s %s from %s: %s", request.method, request.path, request.remote, message)
    if request.path == TOKEN_PATH:
        request[OUTCOME] = "invalid_request"
        response = web.json_response({"error": "invalid_request", "error_description": message},
                                     status=400, headers={"Cache-Control": "no-store"})
    else:
        response = json_error(400, "invalid", message)
    # The rest of the body cannot be read past the error, so the connection cannot be reused:
    # say so ("Connection: close") rather than let the client's next request find it closed.
    response.force_close()
    return response


class ProtocolLogger(logging.Logger):
    """aiohttp's server logger, with a request that is not HTTP (or whose body cannot be
    decompressed while parsing) logged as one line and counted, not as a traceback.

    aiohttp answers those requests itself (400) before any middleware runs, so this is the
    only place that sees them. Every other exception keeps its traceback.
    """

    def __init__(self, instruments: Instruments) -> None:
        super().__init__("aiohttp.server")
        self.parent = logging.getLogger("aiohttp.server")
        self.instruments = instruments

    def exception(self, msg: object, *args: object, exc_info: Any = True,
                  **kwargs: Any) -> None:
        if not self._refusal(logging.INFO, args, exc_info):
            super().exception(msg, *args, exc_info=exc_info, **kwargs)

    def debug(self, msg: object, *args: object, **kwargs: Any) -> None:
        # aiohttp logs a bad method on a connection's first request at debug, as noise.
        if not self._refusal(logging.DEBUG, args, kwargs.get("exc_info")):
            super().debug(msg, *args, **kwargs)

    def _refusal(self, level: int, args: tuple[object, ...], exc_info: Any) -> bool:
        exc = exc_info if isinstance(exc_info, BaseException) else (
            sys.exc_info()[1] if exc_info is True else None)
        if isinstance(exc, RequestPayloadError):
            # aiohttp draining the rest of a body already refused (and counted) by
            # ``middleware``: nothing more to say.
            self.log(logging.DEBUG, "closed the connection of an undecodable body")
            return True
        if not isinstance(exc, HttpProcessingError):
            return False
        reason = "content_encoding" if isinstance(exc, ContentEncodingError) else "malformed"
        self.instruments.malformed_requests.labels(reason).inc()
        detail = " ".join(str(exc.message).split())[:200]
        self.log(level, "refused a malformed request from %s (%s): %s",
                 args[0] if args else "unknown", reason, detail)
        return True


class RedactedAccessLogger(AbstractAccessLogger):
    """The access log of ``--access-log``, without query strings: a client may put a token
    there, and the log must not keep it."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        target = request.path + ("?[redacted]" if request.query_string else "")
        version = request.version
        self.logger.info('%s "%s %s HTTP/%d.%d" %d %d %.6fs "%s"', request.remote,
                         request.method, target, version.major, version.minor, response.status,
                         response.body_length, time, request.headers.get("User-Agent", "-"))


def _record(request: web.Request, rt: Runtime, response: web.StreamResponse,
            outcome: str) -> None:
    """Add the webhook to the log of the last ones shown on the status page."""
    event = request.get(EVENT)
    message = None
    if response.status >= 400 and isinstance(response, web.Response) and response.body:
        with contextlib.suppress(orjson.JSONDecodeError, TypeError, AttributeError):
            message = str(orjson.loads(response.body).get("error"))  # type: ignore[arg-type]
    if event is not None:
        # Positional, in field order: keyword arguments cost twice as much, once per webhook.
        record = WebhookRecord(
            event.received, event.account, outcome, response.status, event.export_id,
            event.partner, event.export_type, event.frequency, event.status, event.event_time,
            f"'Date and Time' {event.time_problem}" if event.time_problem else None,
        )
    else:
        record = WebhookRecord(
            received=time.time(), account=request.match_info.get("account", DEFAULT_ACCOUNT),
            outcome=outcome, http_status=response.status, message=message,
        )
    rt.events.add(record)


def _refusal(request: web.Request, rt: Runtime, webhook: bool) -> web.Response | None:
    """The checks before authentication, each only when configured: the web config's rate
    limit and client SANs, the source allow-list, the webhook concurrency limit."""
    refusal = None
    if rt.web_config_file is not None:
        refusal = _web_config_refusal(request, rt.web_config_file)
    if refusal is None and rt.sources.restricts:
        refusal = _source_refusal(request, rt.sources)
    if (refusal is None and webhook
            and rt.instruments.active >= rt.settings.limits.max_concurrent_requests):
        refusal = _overloaded(request)
    return refusal


def _authorized(request: web.Request, handler: Handler,
                rt: Runtime) -> Awaitable[web.StreamResponse]:
    """The route's response once authentication (when configured) and the declared body size
    admit the request. Not a coroutine: without authentication it is the route's own
    awaitable, so no frame of its own is resumed on each wake-up."""
    if rt.auth.enabled or rt.web_config_file is not None:
        return _authenticated(request, handler, rt)
    _check_size(request, rt)
    return handler(request)


async def _authenticated(request: web.Request, handler: Handler,
                         rt: Runtime) -> web.StreamResponse:
    refusal = await _auth_refusal(request)
    if refusal is not None:
        return refusal
    _check_size(request, rt)
    return await handler(request)


def _check_size(request: web.Request, rt: Runtime) -> None:
    # A declared oversize body is refused before it is read; chunked ones hit client_max_size.
    limit = rt.settings.limits.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)


def _source_refusal(request: web.Request, policy: SourcePolicy) -> web.Response | None:
    """The 403 of a CleverTap-facing request whose client is outside ``--allow-cidr``."""
    if not _clevertap_facing(request.path):
        return None
    client = policy.client(request.remote, request.headers.getall("X-Forwarded-For", []))
    if policy.admits(client):
        return None
    log.info("refused %s from %s (peer %s): outside --allow-cidr", request.path,
             client, request.remote)
    return json_error(403, "forbidden", "requests from this address are not allowed")


def _overloaded(request: web.Request) -> web.Response:
    """Webhook requests beyond ``--max-concurrent-requests`` are refused rather than queued.

    Each request in progress holds a body buffer and a pending commit; a bounded number keeps
    memory bounded and answers the excess at once (503 with Retry-After), which CleverTap
    retries. ``/metrics`` and the health checks are not counted, so they stay reachable.
    """
    request[OUTCOME] = "overloaded"
    response = json_error(503, "overloaded", "too many webhook requests in progress; retry later")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _web_config_refusal(request: web.Request, holder: WebConfigFile) -> web.Response | None:
    """The web config's ``rate_limit`` and ``client_allowed_sans``, on every endpoint.

    As in exporter-toolkit the rate limit comes before authentication and counts every request.
    Python's ssl cannot check a client certificate's SANs during the handshake, so a connection
    whose certificate has none of ``client_allowed_sans`` gets a 403 and is closed before any
    request on it is served.
    """
    config = holder.current()
    limiter = holder.limiter
    if limiter is not None and not limiter.allow():
        request[OUTCOME] = "rate_limited"
        response = json_error(429, "rate_limited", "too many requests: see rate_limit in "
                              "--web.config.file")
        response.headers["Retry-After"] = str(limiter.retry_after)
        return response
    if config.client_allowed_sans is not None and not _san_allowed(
            request, config.client_allowed_sans):
        log.info("refused %s from %s: client certificate has none of client_allowed_sans",
                 request.path, request.remote)
        response = json_error(403, "forbidden", "the client certificate has none of the "
                              "web config's client_allowed_sans")
        response.force_close()
        return response
    return None


def _san_allowed(request: web.Request, allowed: frozenset[str]) -> bool:
    """Go's check: any DNS, e-mail, IP or URI SAN of the client certificate is in ``allowed``."""
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    for kind, value in (cert or {}).get("subjectAltName", ()):
        if kind == "IP Address":
            with contextlib.suppress(ValueError):
                value = str(ipaddress.ip_address(value.strip()))
        if kind in ("DNS", "email", "IP Address", "URI") and value in allowed:
            return True
    return False


async def _auth_refusal(request: web.Request) -> web.Response | None:
    """Webhook credentials on the webhook; the web config's ``basic_auth_users`` everywhere.

    ``basic_auth_users`` follow exporter-toolkit: with any configured, every endpoint (metrics,
    health checks, unknown paths) needs one of those users. Two endpoints differ because an
    HTTP request has one Authorization header: the webhook admits its own credentials (token,
    Basic, OAuth bearer) as well as those users, and the token endpoint authenticates its
    client itself, with the client id and secret in that header (RFC 6749 section 2.3.1).
    """
    try:
        return await _credentials_refusal(request)
    except PasswordChecksBusy:
        log.info("refused %s from %s: too many password checks in progress", request.path,
                 request.remote)
        response = json_error(503, "unavailable", "too many password checks in progress; "
                              "retry later")
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


async def _credentials_refusal(request: web.Request) -> web.Response | None:
    rt = request.app[RUNTIME]
    users = rt.users
    hashes = (rt.web_config_file.current().basic_auth_users if rt.web_config_file is not None
              else {})
    if not hashes:
        users = None
    if request.path.startswith("/webhook"):
        auth = rt.auth
        problem = auth.check(request.headers)
        if users is not None and (problem is not None or not auth.enabled):
            if await users.admits(request.headers, hashes):
                problem = None
            else:
                problem = ((problem + " or") if problem else "missing or invalid credentials: "
                           "send") + " HTTP Basic authorization of a web config user"
        if problem is not None:
            log.info("refused webhook from %s: %s", request.remote, problem)
            response = json_error(401, "unauthorized", problem)
            response.headers["WWW-Authenticate"] = (
                auth.challenge if auth.enabled else BASIC_CHALLENGE)
            return response
    elif users is not None and not (request.path == TOKEN_PATH and rt.token_endpoint is not None):
        if not await users.admits(request.headers, hashes):
            response = json_error(401, "unauthorized", "HTTP Basic authorization of a web "
                                   "config user required")
            response.headers["WWW-Authenticate"] = BASIC_CHALLENGE
            return response
    return None
