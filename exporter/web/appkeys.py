"""The application's typed state: one ``Runtime`` per exporter, and the per-request keys.

The webhook app and the ``--metrics-port`` app share one ``Runtime``, so every handler and
middleware reads the same objects whichever port served the request.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web
from prometheus_client import CollectorRegistry

from exporter.domain.declared import ConfigHolder
from exporter.domain.payload import StatusEvent
from exporter.domain.tracker import ExportTracker
from exporter.metrics.exposition import SeriesExposition
from exporter.metrics.instruments import Instruments
from exporter.security.allowlist import SourcePolicy
from exporter.security.auth import WebhookAuth
from exporter.security.oauth import TokenEndpoint
from exporter.security.users import BasicAuthUsers
from exporter.security.webconfig import WebConfigFile
from exporter.web.events import EventLog
from exporter.web.settings import Settings


@dataclass
class Reloads:
    """``--config.file`` reloads (``exporter.web.reload``): one at a time, and the last result,
    which the requests that waited for it share."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    started: int = 0
    result: tuple[bool, str] = (True, "")


@dataclass
class Runtime:
    """What the handlers and middlewares of one exporter share."""

    settings: Settings
    registry: CollectorRegistry
    instruments: Instruments
    auth: WebhookAuth
    sources: SourcePolicy
    config: ConfigHolder
    events: EventLog = field(default_factory=EventLog)
    #: Present when ``--oauth-client-id`` serves the token endpoint.
    token_endpoint: TokenEndpoint | None = None
    #: Present with ``--web.config.file``: the file (re-read when it changes) and its users.
    web_config_file: WebConfigFile | None = None
    users: BasicAuthUsers | None = None
    reload: Reloads = field(default_factory=Reloads)
    #: Present once the state store is open (the application's cleanup context).
    tracker: ExportTracker | None = None
    exposition: SeriesExposition | None = None


RUNTIME: Final = web.AppKey("runtime", Runtime)
OUTCOME: Final = web.RequestKey("outcome", str)
EVENT: Final = web.RequestKey("event", StatusEvent)
