"""Request logging: the access log, the server's log of requests that are not HTTP, and the
event log's record of each webhook (the status page's last webhooks).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from typing import Any

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import ContentEncodingError, HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from exporter.domain.keys import DEFAULT_ACCOUNT
from exporter.metrics.instruments import Instruments
from exporter.web.appkeys import EVENT, Runtime
from exporter.web.events import WebhookRecord


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
            # aiohttp draining the rest of a body already refused (and counted) by the
            # middleware: nothing more to say.
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


def record_webhook(request: web.Request, rt: Runtime, response: web.StreamResponse,
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
