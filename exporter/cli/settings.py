"""Command-line flags, each mirrored by an environment variable, parsed into ``Settings``.

Precedence: flag, then ``EXPORTER_*`` variable, then default. Secrets may also come from a file
named by ``EXPORTER_*_FILE`` (Docker and Kubernetes secrets), read once at start-up. Repeatable
flags (``--allow-cidr``, ``--trusted-proxy``) take a comma-separated list in their variable.
The web configuration file is read and checked here, so a bad one stops the start with its reason.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from exporter.domain.durations import parse_duration
from exporter.domain.payload import TimeWindow
from exporter.security.allowlist import IPNetwork, parse_network
from exporter.security.webconfig import WebConfig, WebConfigError, load_web_config
from exporter.web.settings import Settings

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_SECRETS: Final = ("auth_token", "basic_auth_password", "oauth_client_secret",
                   "oauth_signing_key", "state_url")
#: Not a string, so argparse keeps this very object when no flag or variable sets the path:
#: that is how an explicit --state-path is told from the default.
_DEFAULT_STATE_PATH: Final = Path("./data/state.db")


def duration(text: str) -> float:
    """``parse_duration`` for argparse, which shows an ``ArgumentTypeError``'s own message."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def timezone(text: str) -> ZoneInfo:
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"unknown IANA time zone {text!r}") from exc


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {text} out of range")
    return port


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def _date(text: str) -> float:
    """A UTC date (``YYYY-MM-DD``) or date-time as Unix seconds."""
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date such as 2015-01-01") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def _network(text: str) -> IPNetwork:
    try:
        return parse_network(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"invalid CIDR {text!r}: {exc}") from exc


def _header(text: str) -> str:
    if not _HEADER_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"invalid HTTP header name {text!r}")
    return text


@dataclass(frozen=True)
class Flag:
    """One flag and its environment variable: the one definition the parser, ``--help`` and
    docs/configuration.md (generated) are made from."""

    name: str
    env: str
    help: str
    kind: Callable[[str], object] = str
    default: object = None
    #: ``store`` (a value), ``switch`` (off unless given), ``negatable`` (``--no-`` too), or
    #: ``append`` (repeatable; the variable holds a comma-separated list).
    action: str = "store"
    #: How the default reads in ``--help`` when it is not a value (``from anywhere``).
    shown: str | None = None


#: Every flag, in the groups ``--help`` and the docs show them in.
FLAGS: Final[dict[str, list[Flag]]] = {
    "listening": [
        Flag("--host", "EXPORTER_HOST", "address to listen on", default="0.0.0.0"),  # noqa: S104
        Flag("--port", "EXPORTER_PORT", "port of the webhook (and /metrics unless "
             "--metrics-port is set)", _port, 9877),
        Flag("--metrics-port", "EXPORTER_METRICS_PORT", "serve /metrics and health checks on "
             "this separate port only, so the webhook port can face the internet", _port),
        Flag("--web.config.file", "EXPORTER_WEB_CONFIG_FILE", "Prometheus exporter-toolkit web "
             "configuration file: tls_server_config (HTTPS) and basic_auth_users (bcrypt) for "
             "every endpoint; re-read when it changes", Path),
    ],
    "webhook authentication and sources": [
        Flag("--auth-token", "EXPORTER_AUTH_TOKEN", "require this token as "
             "'Authorization: Bearer <token>' or in --auth-header"),
        Flag("--auth-header", "EXPORTER_AUTH_HEADER", "custom header that may carry the token, "
             "for CleverTap's Headers tab (e.g. X-Webhook-Token)", _header),
        Flag("--basic-auth-user", "EXPORTER_BASIC_AUTH_USER", "require HTTP Basic "
             "authorization with this user"),
        Flag("--basic-auth-password", "EXPORTER_BASIC_AUTH_PASSWORD", "password for "
             "--basic-auth-user"),
        Flag("--oauth-client-id", "EXPORTER_OAUTH_CLIENT_ID", "serve an OAuth 2.0 "
             "client-credentials token endpoint (POST /oauth/token) for this client id, and "
             "accept its access tokens as 'Authorization: Bearer' on the webhook"),
        Flag("--oauth-client-secret", "EXPORTER_OAUTH_CLIENT_SECRET", "client secret for "
             "--oauth-client-id"),
        Flag("--oauth-token-ttl", "EXPORTER_OAUTH_TOKEN_TTL", "lifetime of the access tokens "
             "the token endpoint issues", duration, "1h"),
        Flag("--oauth-signing-key", "EXPORTER_OAUTH_SIGNING_KEY", "HMAC key signing the access "
             "tokens (default: derived from the client secret); share it between replicas"),
        Flag("--allow-cidr", "EXPORTER_ALLOW_CIDR", "accept webhooks and token requests only "
             "from this network; repeatable", _network, action="append",
             shown="from anywhere"),
        Flag("--trusted-proxy", "EXPORTER_TRUSTED_PROXY", "believe X-Forwarded-For from peers "
             "in this network; repeatable", _network, action="append", shown="none"),
    ],
    "state": [
        Flag("--state-path", "EXPORTER_STATE_PATH", "SQLite state file (the embedded default, "
             "for one process; locked while it runs)", Path, _DEFAULT_STATE_PATH),
        Flag("--state-url", "EXPORTER_STATE_URL", "PostgreSQL state shared by replicas, "
             "postgresql://USER[:PASSWORD]@HOST:PORT/DB, instead of --state-path (the "
             "password-bearing form is best put in a file named by EXPORTER_STATE_URL_FILE)"),
        Flag("--state-init", "EXPORTER_STATE_INIT", "create an empty state database (or "
             "recreate its missing tables) even where one existed; without it the exporter "
             "refuses, so a deleted state file is noticed", action="switch"),
        Flag("--state-skip-corrupt", "EXPORTER_STATE_SKIP_CORRUPT", "delete state rows that "
             "cannot be read (each is logged by table and key) instead of refusing to start",
             action="switch"),
        Flag("--in-flight-timeout", "EXPORTER_IN_FLIGHT_TIMEOUT", "give up an in-flight export "
             "whose start is older than this (counted as abandoned)", duration, "48h"),
        Flag("--retention", "EXPORTER_RETENTION", "how long deliveries are remembered to "
             "recognise redeliveries, and finished runs are kept", duration, "7d"),
    ],
    "events": [
        Flag("--timezone", "EXPORTER_TIMEZONE", "IANA time zone of CleverTap's 'Date and Time' "
             "when it carries no offset (your CleverTap account's zone)", timezone, "UTC"),
        Flag("--event-time-max-ahead", "EXPORTER_EVENT_TIME_MAX_AHEAD", "refuse (422) an event "
             "whose 'Date and Time' is more than this after its receipt", duration, "1d"),
        Flag("--event-time-min", "EXPORTER_EVENT_TIME_MIN", "refuse (422) an event whose "
             "'Date and Time' is before this UTC date", _date, "2015-01-01"),
        Flag("--config.file", "EXPORTER_CONFIG_FILE", "YAML file of declared exports and their "
             "thresholds; reloaded on SIGHUP and POST /-/reload (check it with "
             "'clevertap-export-exporter check-config FILE')", Path),
    ],
    "limits": [
        Flag("--max-label-values", "EXPORTER_MAX_LABEL_VALUES", "distinct values admitted per "
             "label before new ones fold into 'other'", _positive_int, 32),
        Flag("--max-series", "EXPORTER_MAX_SERIES", "distinct (account, partner, export_type, "
             "frequency) series before new ones fold into an all-'other' series",
             _positive_int, 1000),
        Flag("--max-remembered-deliveries", "EXPORTER_MAX_REMEMBERED_DELIVERIES", "deliveries "
             "remembered to recognise redeliveries; beyond it the oldest are forgotten before "
             "--retention", _positive_int, 100_000),
        Flag("--max-runs", "EXPORTER_MAX_RUNS", "export runs (per account and Export Request "
             "Id) remembered; beyond it the least recently updated finished runs are "
             "forgotten, then the oldest in-flight ones are abandoned", _positive_int, 50_000),
        Flag("--max-body-bytes", "EXPORTER_MAX_BODY_BYTES", "largest webhook body accepted, in "
             "bytes", _positive_int, 65536),
        Flag("--read-timeout", "EXPORTER_READ_TIMEOUT", "time a client has to send the whole "
             "request body (else 408)", duration, "10s"),
        Flag("--idle-timeout", "EXPORTER_IDLE_TIMEOUT", "close a connection that has not sent "
             "complete request headers this long after connecting or after its previous "
             "response", duration, "30s"),
        Flag("--max-concurrent-requests", "EXPORTER_MAX_CONCURRENT_REQUESTS", "webhook requests "
             "handled at once; more are refused with 503 and Retry-After", _positive_int, 256),
    ],
    "logging": [
        Flag("--log-level", "EXPORTER_LOG_LEVEL", "DEBUG, INFO, WARNING or ERROR", str.upper,
             "INFO"),
        Flag("--log-format", "EXPORTER_LOG_FORMAT", "text or json", default="text"),
        Flag("--access-log", "EXPORTER_ACCESS_LOG", "log every HTTP request (query strings "
             "redacted)", action="negatable"),
    ],
}


SUBCOMMANDS_EPILOG: Final = """\
subcommands (each has --help with examples):
  send          post one payload (file or stdin) to a running exporter
  replay        post a JSON Lines file of payloads, rate-limited, and count the answers
  demo          simulate a compressed day of exports so the status page and alerts show data
  check-config  validate a --config.file and exit non-zero with the reason

Without a subcommand the exporter serves, e.g.:
  clevertap-export-exporter --port 9877 --config.file exports.yml
"""


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clevertap-export-exporter",
        description="Receive CleverTap Export Status Alerts webhooks and expose Prometheus "
        "metrics. Every flag can also be set with the environment variable shown.",
        epilog=SUBCOMMANDS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for title, flags in FLAGS.items():
        group = parser.add_argument_group(title)
        for flag in flags:
            _add(group, flag, env)
    parser.add_argument("--bench-noop", action="store_true",
                        help="serve POST /-/noop, which answers without parsing or storing: "
                        "the stack's ceiling, for benchmarks only")
    return parser


def _add(group: argparse._ArgumentGroup, flag: Flag, env: Mapping[str, str]) -> None:
    dest = flag.name[2:].replace("-", "_").replace(".", "_")
    if flag.action in ("switch", "negatable"):
        on = _truthy(env.get(flag.env, "false"))
        group.add_argument(flag.name, dest=dest, default=on,
                           action="store_true" if flag.action == "switch"
                           else argparse.BooleanOptionalAction,
                           help=f"{flag.help} (env {flag.env}; default: off)")
    elif flag.action == "append":  # the variable's list is read in parse_settings
        group.add_argument(flag.name, dest=dest, type=flag.kind, action="append",
                           metavar="CIDR", help=f"{flag.help} (env {flag.env}, "
                           f"comma-separated; default: {flag.shown})")
    else:
        raw = env.get(flag.env)
        # An empty path variable (``VAR=`` in a compose file) means unset, not the directory.
        unset = raw is None or (raw == "" and flag.kind is Path)
        group.add_argument(flag.name, dest=dest, type=flag.kind,
                           default=flag.default if unset else raw,
                           help=f"{flag.help} (env {flag.env}; default: %(default)s)")


def secret_file_var(name: str) -> str:
    """The variable naming a file that holds the secret ``name`` (``EXPORTER_AUTH_TOKEN_FILE``)."""
    return f"EXPORTER_{name.upper()}_FILE"


def secret_from_file(env: Mapping[str, str], name: str) -> str | None:
    """The secret in the file ``secret_file_var(name)`` names, or None; ``OSError`` says why
    the file could not be read."""
    path = env.get(secret_file_var(name))
    return Path(path).read_text().strip() if path else None


def parse_settings(argv: Sequence[str] | None = None,
                   env: Mapping[str, str] | None = None) -> Settings:
    """Parse flags and environment; exits with a usage error for invalid values."""
    env = dict(os.environ if env is None else env)
    parser = build_parser(env)
    args = parser.parse_args(argv)
    for name in _SECRETS:
        if getattr(args, name) is None:
            try:
                setattr(args, name, secret_from_file(env, name))
            except OSError as exc:
                parser.error(f"cannot read {secret_file_var(name)}: {exc}")
    _check_state_url(parser, args)
    for broken, message in _conflicts(args):
        if broken:
            parser.error(message)
    web_config = _web_config(parser, args.web_config_file)
    allow = args.allow_cidr or _networks(parser, env, "EXPORTER_ALLOW_CIDR")
    trusted = args.trusted_proxy or _networks(parser, env, "EXPORTER_TRUSTED_PROXY")
    return Settings(
        host=args.host,
        port=args.port,
        metrics_port=args.metrics_port,
        state_path=Path(args.state_path),
        timezone=args.timezone,
        auth_token=args.auth_token,
        auth_header=args.auth_header,
        basic_auth_user=args.basic_auth_user,
        basic_auth_password=args.basic_auth_password,
        oauth_client_id=args.oauth_client_id,
        oauth_client_secret=args.oauth_client_secret,
        oauth_signing_key=args.oauth_signing_key,
        oauth_token_ttl=max(1, round(args.oauth_token_ttl)),
        web_config=web_config,
        allow_cidrs=tuple(allow),
        trusted_proxies=tuple(trusted),
        in_flight_timeout=args.in_flight_timeout,
        retention=args.retention,
        max_label_values=args.max_label_values,
        max_series=args.max_series,
        max_remembered_deliveries=args.max_remembered_deliveries,
        max_runs=args.max_runs,
        max_body_bytes=args.max_body_bytes,
        read_timeout=args.read_timeout,
        idle_timeout=args.idle_timeout,
        max_concurrent_requests=args.max_concurrent_requests,
        log_level=args.log_level,
        log_format=args.log_format,
        access_log=args.access_log,
        bench_noop=args.bench_noop,
        state_init=args.state_init,
        state_skip_corrupt=args.state_skip_corrupt,
        event_time_window=TimeWindow(args.event_time_max_ahead, args.event_time_min),
        config_file=Path(args.config_file) if args.config_file else None,
        state_url=args.state_url,
    )


def _conflicts(args: argparse.Namespace) -> list[tuple[bool, str]]:
    """Combinations of flags that cannot work, each with what to say."""
    return [
        ((args.basic_auth_user is None) != (args.basic_auth_password is None),
         "--basic-auth-user and --basic-auth-password go together"),
        (args.auth_header is not None and args.auth_token is None,
         "--auth-header needs --auth-token"),
        (args.log_format not in ("text", "json"), "--log-format must be text or json"),
        (args.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"),
         "--log-level must be DEBUG, INFO, WARNING or ERROR"),
        (args.metrics_port is not None and args.metrics_port == args.port,
         "--metrics-port must differ from --port"),
        ((args.oauth_client_id is None) != (args.oauth_client_secret is None),
         "--oauth-client-id and --oauth-client-secret go together"),
        (args.oauth_signing_key is not None and args.oauth_client_id is None,
         "--oauth-signing-key needs --oauth-client-id"),
    ]


def _web_config(parser: argparse.ArgumentParser, path: Path | None) -> WebConfig | None:
    """The web config file read and checked now, so a bad one stops the start with its reason."""
    if path is None:
        return None
    try:
        return load_web_config(Path(path))
    except WebConfigError as exc:
        parser.error(f"--web.config.file {path}: {exc}")


def _check_state_url(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.state_url is None:
        return
    if args.state_path is not _DEFAULT_STATE_PATH:
        parser.error("--state-url and --state-path are mutually exclusive")
    if not args.state_url.startswith(("postgresql://", "postgres://")):
        parser.error("--state-url must be postgresql://USER[:PASSWORD]@HOST:PORT/DB")


def _networks(parser: argparse.ArgumentParser, env: Mapping[str, str],
              var: str) -> list[IPNetwork]:
    networks = []
    for item in env.get(var, "").split(","):
        if item.strip():
            try:
                networks.append(_network(item))
            except argparse.ArgumentTypeError as exc:
                parser.error(f"{var}: {exc}")
    return networks


def _truthy(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")
