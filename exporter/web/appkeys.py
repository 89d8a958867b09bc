"""Typed keys of the application and request state shared by the HTTP modules."""

from __future__ import annotations

from typing import Final

from aiohttp import web
from prometheus_client import CollectorRegistry

from exporter.domain.declared import ConfigHolder
from exporter.domain.payload import StatusEvent
from exporter.domain.tracker import ExportTracker
from exporter.metrics.collector import SeriesExposition
from exporter.metrics.instruments import Instruments
from exporter.security.allowlist import SourcePolicy
from exporter.security.auth import WebhookAuth
from exporter.security.oauth import TokenEndpoint
from exporter.security.users import BasicAuthUsers
from exporter.security.webconfig import WebConfigFile
from exporter.web.events import EventLog
from exporter.web.settings import Settings

SETTINGS: Final = web.AppKey("settings", Settings)
TRACKER: Final = web.AppKey("tracker", ExportTracker)
REGISTRY: Final = web.AppKey("registry", CollectorRegistry)
INSTRUMENTS: Final = web.AppKey("instruments", Instruments)
EXPOSITION: Final = web.AppKey("exposition", SeriesExposition)
AUTH: Final = web.AppKey("auth", WebhookAuth)
USERS: Final = web.AppKey("basic_auth_users", BasicAuthUsers)
WEB_CONFIG: Final = web.AppKey("web_config", WebConfigFile)
SOURCES: Final = web.AppKey("sources", SourcePolicy)
TOKEN_ENDPOINT: Final = web.AppKey("token_endpoint", TokenEndpoint)
SOURCE_APP: Final = web.AppKey("source_app", web.Application)
OUTCOME: Final = web.RequestKey("outcome", str)
EVENT: Final = web.RequestKey("event", StatusEvent)
CONFIG: Final = web.AppKey("config", ConfigHolder)
EVENTS: Final = web.AppKey("events", EventLog)
