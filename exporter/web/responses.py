"""The exporter's JSON answers to what it refuses, and the outcome an answer stands for.

Every refusal is ``{"status": <outcome>, "error": <what is wrong>}`` with a precise 4xx (or a
503 to retry), never a 500 for client input.
"""

from __future__ import annotations

import logging
from typing import Final

from aiohttp import web

from exporter.security.oauth import TOKEN_PATH
from exporter.web.appkeys import OUTCOME
from exporter.web.outcomes import Outcome

log = logging.getLogger(__name__)

#: Seconds an overloaded (or rate limited) client is told to wait before retrying.
RETRY_AFTER_SECONDS: Final = 1

#: The outcome of a webhook answered with a status, when the code answering did not name one.
_BY_STATUS: Final = {400: Outcome.INVALID, 422: Outcome.INVALID, 401: Outcome.UNAUTHORIZED,
                     403: Outcome.FORBIDDEN, 408: Outcome.TIMEOUT, 413: Outcome.TOO_LARGE,
                     503: Outcome.UNAVAILABLE}
#: The same for the token endpoint, whose other outcomes are its RFC 6749 error codes.
_TOKEN_BY_STATUS: Final = {403: Outcome.FORBIDDEN, 413: Outcome.TOO_LARGE}

webhook_outcome_of: Final = _BY_STATUS.get
token_outcome_of: Final = _TOKEN_BY_STATUS.get


def json_error(status: int, outcome: str, message: str, **extra: object) -> web.Response:
    return web.json_response({"status": outcome, "error": message, **extra}, status=status)


def retry_later(status: int, outcome: str, message: str, seconds: int) -> web.Response:
    """A refusal the client should retry after ``seconds`` (``Retry-After``)."""
    response = json_error(status, outcome, message)
    response.headers["Retry-After"] = str(seconds)
    return response


def http_error(exc: web.HTTPException, max_body_bytes: int) -> web.Response:
    """An aiohttp HTTP error (404, 405, 413 of a chunked body...) as JSON, with its headers
    that matter to the client."""
    if exc.status == 413:
        return json_error(413, Outcome.TOO_LARGE,
                          f"request body exceeds the limit of {max_body_bytes} bytes")
    response = json_error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
    response.headers.update({k: v for k, v in exc.headers.items()
                             if k in ("Allow", "WWW-Authenticate")})
    return response


def undecodable(request: web.Request) -> web.Response:
    """The 400 of a body that fails to decompress (aiohttp reports it when the body is read)."""
    coding = request.headers.get("Content-Encoding", "").strip() or "identity"
    message = f"request body cannot be decoded as Content-Encoding {coding[:32]!r}"
    log.info("refused %s %s from %s: %s", request.method, request.path, request.remote, message)
    if request.path == TOKEN_PATH:
        request[OUTCOME] = "invalid_request"
        response = web.json_response({"error": "invalid_request", "error_description": message},
                                     status=400, headers={"Cache-Control": "no-store"})
    else:
        response = json_error(400, Outcome.INVALID, message)
    # The rest of the body cannot be read past the error, so the connection cannot be reused:
    # say so ("Connection: close") rather than let the client's next request find it closed.
    response.force_close()
    return response
