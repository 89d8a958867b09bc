"""The exporter's routes: each path named once, for the application, the middleware, the
OpenAPI document and the tools.

The token endpoint's path is ``exporter.security.oauth.TOKEN_PATH``, beside the endpoint.
Standard library only: the tools import it without aiohttp.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Final

WEBHOOK: Final = "/webhook"
WEBHOOK_ACCOUNT: Final = "/webhook/{account}"
OPENAPI: Final = "/openapi.json"
#: Only with ``--bench-noop``.
NOOP: Final = "/-/noop"
# The observability routes, on ``--metrics-port`` when it is given.
METRICS: Final = "/metrics"
HEALTHZ: Final = "/healthz"
READYZ: Final = "/readyz"
STATUS_PAGE: Final = "/"
API_EXPORTS: Final = "/api/v1/exports"
#: DELETE forgets an account's series, or one series (its label values as on /metrics).
API_EXPORTS_ACCOUNT: Final = "/api/v1/exports/{account}"
API_EXPORTS_SERIES: Final = "/api/v1/exports/{account}/{partner}/{export_type}/{frequency}"
API_EVENTS: Final = "/api/v1/events"
RELOAD: Final = "/-/reload"
#: docs/runbook.md, where each alert's ``runbook_url`` points by default.
RUNBOOK: Final = "/runbook"

#: Whether a path, as the router matches it (``request.rel_url.path_safe``), is one of the
#: webhook's: for a request the router found no route for (the middleware knows a routed
#: webhook by its handler). ``{account}`` is aiohttp's segment pattern; exact, so that
#: ``/webhooks`` is not a webhook.
webhook_path: Final = re.compile(re.escape(WEBHOOK) + r"(?:/[^{}/]+)?").fullmatch

#: How alike a path segment must be to a route's to count as a misspelling of it.
_ALIKE: Final = 0.8


def near_miss(path: str, routes: Iterable[str]) -> tuple[str, str] | None:
    """The route of ``routes`` (aiohttp's canonical forms, ``{name}`` for a segment) that
    ``path``, which matches none, was probably meant for, and the path meant: the same without a
    trailing or doubled slash, in other case, or with a segment misspelled (``/webhooks``);
    None when none is close."""
    segments = [s for s in path.split("/") if s]
    best: tuple[float, str, str] | None = None
    for route in routes:
        parts = [s for s in route.split("/") if s]
        if len(parts) != len(segments):
            continue
        filled, score = [], 0.0
        for part, given in zip(parts, segments, strict=True):
            alike = 1.0 if part.startswith("{") else difflib.SequenceMatcher(
                None, part, given.lower()).ratio()
            if alike < _ALIKE:
                break
            filled.append(given if part.startswith("{") else part)
            score += alike
        else:
            candidate = "/" + "/".join(filled)
            if candidate != path and (best is None or score > best[0]):
                best = (score, route, candidate)
    return None if best is None else best[1:]
