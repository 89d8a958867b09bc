"""Admission: whether a request reaches its route, each check only when configured.

In order: the web config's rate limit and client certificate SANs, the source address
allow-list, the limit on webhook requests in progress (``refusal``), then authentication and
the declared body size (``admitted``). The credential checks themselves live in
``exporter.security``: ``auth``, ``oauth``, ``users``, ``webconfig`` and ``allowlist``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from exporter.security.auth import BASIC_CHALLENGE
from exporter.security.oauth import TOKEN_PATH
from exporter.security.users import PasswordChecksBusy
from exporter.web.appkeys import OUTCOME, Runtime
from exporter.web.outcomes import Outcome
from exporter.web.responses import RETRY_AFTER_SECONDS, json_error, retry_later

if TYPE_CHECKING:
    from exporter.security.allowlist import SourcePolicy
    from exporter.security.webconfig import WebConfigFile

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def refusal(request: web.Request, rt: Runtime, webhook: bool) -> web.Response | None:
    """The checks before authentication, each only when configured: the web config's rate
    limit and client SANs, the source allow-list, the webhook concurrency limit."""
    refused = None
    if rt.web_config_file is not None:
        refused = _web_config_refusal(request, rt.web_config_file)
    if refused is None and rt.sources.restricts and (webhook or request.path == TOKEN_PATH):
        refused = _source_refusal(request, rt.sources)
    if (refused is None and webhook
            and rt.instruments.active >= rt.settings.limits.max_concurrent_requests):
        refused = _overloaded(request)
    return refused


def admitted(request: web.Request, handler: Handler, rt: Runtime,
             webhook: bool) -> Awaitable[web.StreamResponse]:
    """The route's response once authentication (when configured) and the declared body size
    admit the request. Not a coroutine: without authentication it is the route's own
    awaitable, so no frame of its own is resumed on each wake-up."""
    if rt.auth.enabled or rt.web_config_file is not None:
        return _authenticated(request, handler, rt, webhook)
    _check_size(request, rt)
    return handler(request)


async def _authenticated(request: web.Request, handler: Handler, rt: Runtime,
                         webhook: bool) -> web.StreamResponse:
    refused = await _auth_refusal(request, rt, webhook)
    if refused is not None:
        return refused
    _check_size(request, rt)
    return await handler(request)


def _check_size(request: web.Request, rt: Runtime) -> None:
    # A declared oversize body is refused before it is read; chunked ones hit client_max_size.
    limit = rt.settings.limits.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)


def _source_refusal(request: web.Request, policy: SourcePolicy) -> web.Response | None:
    """The 403 of a CleverTap-facing request (the webhook and the OAuth token endpoint) whose
    client is outside ``--allow-cidr``."""
    client = policy.client(request.remote, request.headers.getall("X-Forwarded-For", []))
    if policy.admits(client):
        return None
    log.info("refused %s from %s (peer %s): outside --allow-cidr", request.path,
             client, request.remote)
    return json_error(403, Outcome.FORBIDDEN, "requests from this address are not allowed")


def _overloaded(request: web.Request) -> web.Response:
    """Webhook requests beyond ``--max-concurrent-requests`` are refused rather than queued.

    Each request in progress holds a body buffer and a pending commit; a bounded number keeps
    memory bounded and answers the excess at once (503 with Retry-After), which CleverTap
    retries. ``/metrics`` and the health checks are not counted, so they stay reachable.
    """
    request[OUTCOME] = Outcome.OVERLOADED
    return retry_later(503, Outcome.OVERLOADED,
                       "too many webhook requests in progress; retry later", RETRY_AFTER_SECONDS)


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
        request[OUTCOME] = Outcome.RATE_LIMITED
        return retry_later(429, Outcome.RATE_LIMITED,
                           "too many requests: see rate_limit in --web.config.file",
                           limiter.retry_after)
    if config.client_allowed_sans is not None and not _san_allowed(
            request, config.client_allowed_sans):
        log.info("refused %s from %s: client certificate has none of client_allowed_sans",
                 request.path, request.remote)
        response = json_error(403, Outcome.FORBIDDEN, "the client certificate has none of the "
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


async def _auth_refusal(request: web.Request, rt: Runtime,
                        webhook: bool) -> web.Response | None:
    """Webhook credentials on the webhook; the web config's ``basic_auth_users`` everywhere.

    ``basic_auth_users`` follow exporter-toolkit: with any configured, every endpoint (metrics,
    health checks, unknown paths) needs one of those users. Two endpoints differ because an
    HTTP request has one Authorization header: the webhook admits its own credentials (token,
    Basic, OAuth bearer) as well as those users, and the token endpoint authenticates its
    client itself, with the client id and secret in that header (RFC 6749 section 2.3.1).
    """
    try:
        return await _credentials_refusal(request, rt, webhook)
    except PasswordChecksBusy:
        log.info("refused %s from %s: too many password checks in progress", request.path,
                 request.remote)
        return retry_later(503, Outcome.UNAVAILABLE,
                           "too many password checks in progress; retry later",
                           RETRY_AFTER_SECONDS)


async def _credentials_refusal(request: web.Request, rt: Runtime,
                               webhook: bool) -> web.Response | None:
    users = rt.users
    hashes = rt.web_config_file.current().basic_auth_users if rt.web_config_file is not None else {}
    if not hashes:
        users = None
    if webhook:
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
            response = json_error(401, Outcome.UNAUTHORIZED, problem)
            response.headers["WWW-Authenticate"] = (
                auth.challenge if auth.enabled else BASIC_CHALLENGE)
            return response
    elif users is not None and not (request.path == TOKEN_PATH and rt.token_endpoint is not None):
        if not await users.admits(request.headers, hashes):
            response = json_error(401, Outcome.UNAUTHORIZED, "HTTP Basic authorization of a "
                                  "web config user required")
            response.headers["WWW-Authenticate"] = BASIC_CHALLENGE
            return response
    return None
