"""The connection handler: aiohttp's, answering the requests it refuses itself in the
exporter's JSON error shape.

aiohttp answers a request it cannot parse (a malformed request line or header, a body coding
it cannot decode) before any middleware runs, in plain text, and for ``br`` or ``zstd`` with
"Please install `Brotli`", advice meant for the server's developer. ``Runner`` serves an
application with a handler whose answers are ``{"status": ..., "error": ...}`` as every other
refusal (``responses.json_error``), with a message for the client.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Final

from aiohttp import web
from aiohttp.http_exceptions import ContentEncodingError, HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from exporter.web.outcomes import Outcome
from exporter.web.responses import json_error

#: The content codings aiohttp decodes here (Brotli and Zstandard need packages not installed).
DECODED: Final = ("gzip", "deflate")
# aiohttp's messages: "Can not decode content-encoding: brotli (br). Please install ..." for a
# coding it lacks a decoder for, "Can not decode content-encoding: gzip" for a corrupt body.
_MISSING_DECODER: Final = re.compile(r"\((\w+)\)\. Please install")
_CORRUPT: Final = re.compile(r"content-encoding: (\S+)$")
_MAX_DETAIL: Final = 200


def refusal(status: int, exc: BaseException | None) -> web.Response:
    """The JSON answer to a request aiohttp refused with ``status`` because of ``exc``."""
    if isinstance(exc, ContentEncodingError):
        text = str(exc.message)
        if missing := _MISSING_DECODER.search(text):
            response = json_error(
                415, Outcome.INVALID, f"Content-Encoding {missing.group(1)!r} is not supported: "
                f"send the body uncompressed or as {' or '.join(DECODED)}")
            response.headers["Accept-Encoding"] = ", ".join(DECODED)  # RFC 7694
            return response
        coding = corrupt.group(1) if (corrupt := _CORRUPT.search(text)) else text
        return json_error(400, Outcome.INVALID,
                          f"request body cannot be decoded as Content-Encoding {coding[:32]!r}")
    if isinstance(exc, HttpProcessingError) and status == 400:
        detail = " ".join(str(exc.message).split())[:_MAX_DETAIL]
        return json_error(400, Outcome.INVALID, f"malformed HTTP request: {detail}")
    phrase = HTTPStatus(status).phrase
    return json_error(status, phrase.lower().replace(" ", "_"), phrase)


class _Handler(RequestHandler):
    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        # aiohttp's own logs it (through ``requestlog.ProtocolLogger``) and checks that no
        # answer has been started; only its body is replaced.
        super().handle_error(request, status, exc, message)
        response = refusal(status, exc)
        response.force_close()
        return response


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return _Handler(self, loop=self._loop, **self._kwargs)


class Runner(web.AppRunner):
    """``web.AppRunner`` whose connections answer refused requests in JSON."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The application's own server, built by its startup; only its connections' class
        # changes.
        server.__class__ = _Server
        return server
