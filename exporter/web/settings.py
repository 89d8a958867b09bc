"""What the application needs to run, as ``cli.settings`` parses it from flags and environment."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from exporter.domain.payload import DEFAULT_WINDOW, TimeWindow
from exporter.security.allowlist import IPNetwork
from exporter.security.webconfig import WebConfig


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    metrics_port: int | None
    state_path: Path
    timezone: ZoneInfo
    auth_token: str | None
    auth_header: str | None
    basic_auth_user: str | None
    basic_auth_password: str | None
    oauth_client_id: str | None
    oauth_client_secret: str | None
    oauth_signing_key: str | None
    oauth_token_ttl: int
    web_config: WebConfig | None
    allow_cidrs: tuple[IPNetwork, ...]
    trusted_proxies: tuple[IPNetwork, ...]
    in_flight_timeout: float
    retention: float
    max_label_values: int
    max_series: int
    max_remembered_deliveries: int
    max_runs: int
    max_body_bytes: int
    read_timeout: float
    idle_timeout: float
    max_concurrent_requests: int
    log_level: str
    log_format: str
    access_log: bool
    bench_noop: bool
    config_file: Path | None = None
    state_init: bool = False
    state_skip_corrupt: bool = False
    #: Event times accepted (``--event-time-max-ahead``, ``--event-time-min``).
    event_time_window: TimeWindow = DEFAULT_WINDOW
    #: PostgreSQL state shared by replicas, instead of the SQLite file at ``state_path``.
    state_url: str | None = None

    @property
    def webhook_open(self) -> bool:
        """True when no webhook credentials are configured."""
        return (self.auth_token is None and self.basic_auth_user is None
                and self.oauth_client_id is None
                and not (self.web_config and self.web_config.basic_auth_users))
