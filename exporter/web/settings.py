"""What the application needs to run: one frozen record per flag group, as ``cli.flags`` builds
them from its flag table (each flag names the ``record.field`` it fills)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from exporter.domain.limits import Limits
from exporter.domain.payload import TimeWindow
from exporter.security.allowlist import IPNetwork
from exporter.security.webconfig import WebConfig

if TYPE_CHECKING:  # loaded with the key, not with every start (see security.assertion)
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey


@dataclass(frozen=True, slots=True)
class ListenSettings:
    host: str
    port: int
    metrics_port: int | None
    #: ``--web.config.file`` as read and checked at start-up; ``Runtime.web_config_file``
    #: re-reads it while serving.
    web_config: WebConfig | None


@dataclass(frozen=True, slots=True)
class AuthSettings:
    auth_token: str | None
    auth_header: str | None
    basic_auth_user: str | None
    basic_auth_password: str | None
    oauth_client_id: str | None
    oauth_client_secret: str | None
    #: Whole seconds, at least 1.
    oauth_token_ttl: int
    oauth_signing_key: str | None
    #: CleverTap's key for RS256/RS384/RS512 client assertions, read and checked at start-up.
    oauth_client_public_key: RSAPublicKey | None
    #: The password grant's resource owner; with it, refresh tokens too.
    oauth_username: str | None
    oauth_password: str | None
    #: Whole seconds, at least 1.
    oauth_refresh_token_ttl: int
    allow_cidrs: tuple[IPNetwork, ...]
    trusted_proxies: tuple[IPNetwork, ...]


@dataclass(frozen=True, slots=True)
class StateSettings:
    #: The SQLite file, unless ``url`` names PostgreSQL state shared by replicas.
    path: Path
    url: str | None
    init: bool
    skip_corrupt: bool


@dataclass(frozen=True, slots=True)
class EventSettings:
    timezone: ZoneInfo
    #: Seconds an event's time may be after its receipt, and the earliest (Unix seconds).
    time_max_ahead: float
    time_min: float
    config_file: Path | None

    @property
    def window(self) -> TimeWindow:
        """Event times accepted (``--event-time-max-ahead``, ``--event-time-min``)."""
        return TimeWindow(self.time_max_ahead, self.time_min)


@dataclass(frozen=True, slots=True)
class LandingSettings:
    """How the landing checks of declared destinations run (docs/landing.md)."""

    #: Seconds after a Completed before the first listing, and for which failed or empty
    #: listings are retried.
    settle: float
    retry_for: float
    #: Checks listing at once.
    concurrency: int


@dataclass(frozen=True, slots=True)
class LogSettings:
    level: str
    format: str
    access_log: bool


@dataclass(frozen=True, slots=True)
class Settings:
    listen: ListenSettings
    auth: AuthSettings
    state: StateSettings
    events: EventSettings
    limits: Limits
    logging: LogSettings
    landing: LandingSettings
    #: Serve ``POST /-/noop``: the hidden ``--bench-noop`` the benchmark harness sets, not a
    #: flag of the table (so not in ``--help`` or docs/configuration.md).
    bench_noop: bool = False

    @property
    def webhook_open(self) -> bool:
        """True when no webhook credentials are configured."""
        web_config = self.listen.web_config
        return (self.auth.auth_token is None and self.auth.basic_auth_user is None
                and self.auth.oauth_client_id is None
                and not (web_config and web_config.basic_auth_users))
