"""The exporter's routes: each path named once, for the application, the middleware, the
OpenAPI document and the tools.

The token endpoint's path is ``exporter.security.oauth.TOKEN_PATH``, beside the endpoint.
Standard library only: the tools import it without aiohttp.
"""

from __future__ import annotations

import re
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

#: Whether a path, as the router matches it (``request.rel_url.path_safe``), is one of the
#: webhook's: for a request the router found no route for (the middleware knows a routed
#: webhook by its handler). ``{account}`` is aiohttp's segment pattern; exact, so that
#: ``/webhooks`` is not a webhook.
webhook_path: Final = re.compile(re.escape(WEBHOOK) + r"(?:/[^{}/]+)?").fullmatch
