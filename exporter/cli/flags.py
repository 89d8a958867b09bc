"""Command-line flags, each mirrored by an environment variable, parsed into ``Settings``.

Precedence: flag, then ``EXPORTER_*`` variable, then default. Secrets may also come from a file
named by ``EXPORTER_*_FILE`` (Docker and Kubernetes secrets), read once at start-up. Repeatable
flags (``--allow-cidr``, ``--trusted-proxy``) take a comma-separated list in their variable.
The web configuration file is read and checked here, so a bad one stops the start with its reason.

``FLAGS`` is the one table: each row names the ``record.field`` of ``Settings`` it fills, and
``parse_settings`` builds the records from the rows, so a new flag is its row and its field.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, is_dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, get_type_hints
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from exporter.domain.durations import parse_duration
from exporter.security.allowlist import IPNetwork, parse_network
from exporter.security.assertion import load_public_key
from exporter.security.auth import is_placeholder
from exporter.security.webconfig import WebConfig, load_web_config
from exporter.web.settings import Settings

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
#: Not a string, so argparse keeps this very object when no flag or variable sets the path:
#: that is how an explicit --state-path is told from the default.
_DEFAULT_STATE_PATH: Final = Path("./data/state.db")
#: The records of ``Settings`` by field name (``listen``: ``ListenSettings``...).
RECORDS: Final[dict[str, type[Any]]] = {
    name: kind for name, kind in get_type_hints(Settings).items()
    if isinstance(kind, type) and is_dataclass(kind)}


def duration(text: str) -> float:
    """``parse_duration`` for argparse, which shows an ``ArgumentTypeError``'s own message."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _whole_seconds(text: str) -> int:
    return max(1, round(duration(text)))


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


def _web_config(path: Path | None) -> WebConfig | None:
    """The web config file read and checked now; ``WebConfigError`` (a ``ValueError``) says
    why it cannot be used."""
    return None if path is None else load_web_config(path)


@dataclass(frozen=True)
class Flag:
    """One flag and its environment variable: the one definition the parser, ``--help``,
    docs/configuration.md (generated) and the ``Settings`` field it fills are made from."""

    name: str
    env: str
    #: The ``Settings`` record and its field this flag fills: ``limits.max_runs``.
    fills: str
    help: str
    kind: Callable[[str], object] = str
    default: object = None
    #: ``store`` (a value), ``switch`` (off unless given), ``negatable`` (``--no-`` too), or
    #: ``append`` (repeatable, a tuple; the variable holds a comma-separated list).
    action: str = "store"
    #: How the default reads in ``--help`` when it is not a value (``from anywhere``).
    shown: str | None = None
    #: Unset, it is read from the file named by ``EXPORTER_*_FILE``.
    secret: bool = False
    #: Turns the parsed value into the field's, once at start-up; ``ValueError`` says why not.
    load: Callable[[Any], object] | None = None

    @property
    def dest(self) -> str:
        return self.name[2:].replace("-", "_").replace(".", "_")


#: Every flag, in the groups ``--help`` and the docs show them in. Each fills one field of one
#: ``Settings`` record; a group's flags fill its record, except that ``--in-flight-timeout`` and
#: ``--retention``, shown with the state they age out, are limits the tracker holds.
FLAGS: Final[dict[str, list[Flag]]] = {
    "listening": [
        Flag("--host", "EXPORTER_HOST", "listen.host", "address to listen on",
             default="0.0.0.0"),  # noqa: S104
        Flag("--port", "EXPORTER_PORT", "listen.port", "port of the webhook (and /metrics "
             "unless --metrics-port is set)", _port, 9877),
        Flag("--metrics-port", "EXPORTER_METRICS_PORT", "listen.metrics_port", "serve /metrics "
             "and health checks on this separate port only, so the webhook port can face the "
             "internet", _port),
        Flag("--web.config.file", "EXPORTER_WEB_CONFIG_FILE", "listen.web_config", "Prometheus "
             "exporter-toolkit web configuration file: tls_server_config (HTTPS) and "
             "basic_auth_users (bcrypt) for every endpoint; re-read when it changes", Path,
             load=_web_config),
    ],
    "webhook authentication and sources": [
        Flag("--auth-token", "EXPORTER_AUTH_TOKEN", "auth.auth_token", "require this token as "
             "'Authorization: Bearer <token>' or in --auth-header", secret=True),
        Flag("--auth-header", "EXPORTER_AUTH_HEADER", "auth.auth_header", "custom header that "
             "may carry the token, for CleverTap's Headers tab (e.g. X-Webhook-Token)", _header),
        Flag("--basic-auth-user", "EXPORTER_BASIC_AUTH_USER", "auth.basic_auth_user", "require "
             "HTTP Basic authorization with this user"),
        Flag("--basic-auth-password", "EXPORTER_BASIC_AUTH_PASSWORD", "auth.basic_auth_password",
             "password for --basic-auth-user", secret=True),
        Flag("--oauth-client-id", "EXPORTER_OAUTH_CLIENT_ID", "auth.oauth_client_id", "serve an "
             "OAuth 2.0 client-credentials token endpoint (POST /oauth/token) for this client "
             "id, and accept its access tokens as 'Authorization: Bearer' on the webhook"),
        Flag("--oauth-client-secret", "EXPORTER_OAUTH_CLIENT_SECRET", "auth.oauth_client_secret",
             "client secret for --oauth-client-id (HTTP Basic, form fields or an HS256 client "
             "assertion)", secret=True),
        Flag("--oauth-client-public-key", "EXPORTER_OAUTH_CLIENT_PUBLIC_KEY",
             "auth.oauth_client_public_key", "file holding the public key of the key pair "
             "CleverTap generated (PEM, or the bare Base64 it shows): accept client assertions "
             "signed RS256, RS384 or RS512 with its private key", Path, load=load_public_key),
        Flag("--oauth-username", "EXPORTER_OAUTH_USERNAME", "auth.oauth_username", "also "
             "serve the password grant, which issues refresh tokens, for this username"),
        Flag("--oauth-password", "EXPORTER_OAUTH_PASSWORD", "auth.oauth_password", "password "
             "for --oauth-username", secret=True),
        Flag("--oauth-token-ttl", "EXPORTER_OAUTH_TOKEN_TTL", "auth.oauth_token_ttl", "lifetime "
             "of the access tokens the token endpoint issues", _whole_seconds, "1h"),
        Flag("--oauth-refresh-token-ttl", "EXPORTER_OAUTH_REFRESH_TOKEN_TTL",
             "auth.oauth_refresh_token_ttl", "lifetime of the refresh tokens the password grant "
             "issues", _whole_seconds, "30d"),
        Flag("--oauth-signing-key", "EXPORTER_OAUTH_SIGNING_KEY", "auth.oauth_signing_key",
             "HMAC key signing the access tokens (default: derived from the client secret; "
             "needed without one); share it between replicas", secret=True),
        Flag("--allow-cidr", "EXPORTER_ALLOW_CIDR", "auth.allow_cidrs", "accept webhooks and "
             "token requests only from this network; repeatable", _network, action="append",
             shown="from anywhere"),
        Flag("--trusted-proxy", "EXPORTER_TRUSTED_PROXY", "auth.trusted_proxies", "believe "
             "X-Forwarded-For from peers in this network; repeatable", _network,
             action="append", shown="none"),
    ],
    "state": [
        Flag("--state-path", "EXPORTER_STATE_PATH", "state.path", "SQLite state file (the "
             "embedded default, for one process; locked while it runs)", Path,
             _DEFAULT_STATE_PATH),
        Flag("--state-url", "EXPORTER_STATE_URL", "state.url", "PostgreSQL state shared by "
             "replicas, postgresql://USER[:PASSWORD]@HOST:PORT/DB, instead of --state-path (the "
             "password-bearing form is best put in a file named by EXPORTER_STATE_URL_FILE)",
             secret=True),
        Flag("--state-init", "EXPORTER_STATE_INIT", "state.init", "create an empty state "
             "database (or recreate its missing tables) even where one existed; without it the "
             "exporter refuses, so a deleted state file is noticed", action="switch"),
        Flag("--state-skip-corrupt", "EXPORTER_STATE_SKIP_CORRUPT", "state.skip_corrupt",
             "delete state rows that cannot be read (each is logged by table and key) instead "
             "of refusing to start", action="switch"),
        Flag("--in-flight-timeout", "EXPORTER_IN_FLIGHT_TIMEOUT", "limits.in_flight_timeout",
             "give up an in-flight export whose start is older than this (counted as "
             "abandoned)", duration, "48h"),
        Flag("--retention", "EXPORTER_RETENTION", "limits.retention", "how long deliveries are "
             "remembered to recognise redeliveries, and finished runs are kept", duration, "7d"),
    ],
    "events": [
        Flag("--timezone", "EXPORTER_TIMEZONE", "events.timezone", "IANA time zone of "
             "CleverTap's 'Date and Time' when it carries no offset (your CleverTap account's "
             "zone)", timezone, "UTC"),
        Flag("--event-time-max-ahead", "EXPORTER_EVENT_TIME_MAX_AHEAD", "events.time_max_ahead",
             "refuse (422) an event whose 'Date and Time' is more than this after its receipt",
             duration, "1d"),
        Flag("--event-time-min", "EXPORTER_EVENT_TIME_MIN", "events.time_min", "refuse (422) an "
             "event whose 'Date and Time' is before this UTC date", _date, "2015-01-01"),
        Flag("--config.file", "EXPORTER_CONFIG_FILE", "events.config_file", "YAML file of "
             "declared exports and their thresholds; reloaded on SIGHUP and POST /-/reload "
             "(check it with 'clevertap-export-exporter check-config FILE')", Path),
    ],
    "limits": [
        Flag("--max-label-values", "EXPORTER_MAX_LABEL_VALUES", "limits.max_label_values",
             "distinct values admitted per label before new ones fold into 'other'",
             _positive_int, 32),
        Flag("--max-series", "EXPORTER_MAX_SERIES", "limits.max_series", "distinct (account, "
             "partner, export_type, frequency) series before new ones fold into an all-'other' "
             "series", _positive_int, 1000),
        Flag("--max-remembered-deliveries", "EXPORTER_MAX_REMEMBERED_DELIVERIES",
             "limits.max_remembered_deliveries", "deliveries remembered to recognise "
             "redeliveries; beyond it the oldest are forgotten before --retention",
             _positive_int, 100_000),
        Flag("--max-runs", "EXPORTER_MAX_RUNS", "limits.max_runs", "export runs (per account and "
             "Export Request Id) remembered; beyond it the least recently updated finished runs "
             "are forgotten, then the oldest in-flight ones are abandoned", _positive_int,
             50_000),
        Flag("--max-body-bytes", "EXPORTER_MAX_BODY_BYTES", "limits.max_body_bytes", "largest "
             "webhook body accepted, in bytes", _positive_int, 65536),
        Flag("--read-timeout", "EXPORTER_READ_TIMEOUT", "limits.read_timeout", "time a client "
             "has to send the whole request body (else 408)", duration, "10s"),
        Flag("--idle-timeout", "EXPORTER_IDLE_TIMEOUT", "limits.idle_timeout", "close a "
             "connection that has not sent complete request headers this long after connecting "
             "or after its previous response", duration, "30s"),
        Flag("--max-concurrent-requests", "EXPORTER_MAX_CONCURRENT_REQUESTS",
             "limits.max_concurrent_requests", "webhook requests handled at once; more are "
             "refused with 503 and Retry-After", _positive_int, 256),
    ],
    "landing checks": [
        Flag("--landing-settle", "EXPORTER_LANDING_SETTLE", "landing.settle", "after a "
             "Completed of an export with a destination, wait this long before listing its "
             "files (they may still be arriving)", duration, "1m"),
        Flag("--landing-retry-for", "EXPORTER_LANDING_RETRY_FOR", "landing.retry_for", "retry "
             "an empty or failed listing with backoff for this long before recording it",
             duration, "15m"),
        Flag("--landing-concurrency", "EXPORTER_LANDING_CONCURRENCY", "landing.concurrency",
             "landing checks listing at once (per replica)", _positive_int, 4),
    ],
    "logging": [
        Flag("--log-level", "EXPORTER_LOG_LEVEL", "logging.level", "DEBUG, INFO, WARNING or "
             "ERROR", str.upper, "INFO"),
        Flag("--log-format", "EXPORTER_LOG_FORMAT", "logging.format", "text or json",
             default="text"),
        Flag("--access-log", "EXPORTER_ACCESS_LOG", "logging.access_log", "log every HTTP "
             "request (query strings redacted)", action="negatable"),
    ],
}


SUBCOMMANDS_EPILOG: Final = """\
subcommands (each has --help with examples):
  send          post one payload (file or stdin) to a running exporter
  replay        post a JSON Lines file of payloads, rate-limited, and count the answers
  demo          simulate a compressed day of exports so the status page and alerts show data
  check-config  validate a --config.file and exit non-zero with the reason
  forget        forget an account's series, or one series, for good (needs credentials)

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
    # Serves POST /-/noop, which answers without parsing or storing: the stack's ceiling. Only
    # the benchmark harness (bench/servers.py) sets it, so --help and the docs leave it out.
    parser.add_argument("--bench-noop", action="store_true", help=argparse.SUPPRESS)
    return parser


def _add(group: argparse._ArgumentGroup, flag: Flag, env: Mapping[str, str]) -> None:
    if flag.action in ("switch", "negatable"):
        on = _truthy(env.get(flag.env, "false"))
        group.add_argument(flag.name, dest=flag.dest, default=on,
                           action="store_true" if flag.action == "switch"
                           else argparse.BooleanOptionalAction,
                           help=f"{flag.help} (env {flag.env}; default: off)")
    elif flag.action == "append":  # the variable's list is read in parse_settings
        group.add_argument(flag.name, dest=flag.dest, type=flag.kind, action="append",
                           metavar="CIDR", help=f"{flag.help} (env {flag.env}, "
                           f"comma-separated; default: {flag.shown})")
    else:
        raw = env.get(flag.env)
        # An empty path variable (``VAR=`` in a compose file) means unset, not the directory.
        unset = raw is None or (raw == "" and flag.kind is Path)
        group.add_argument(flag.name, dest=flag.dest, type=flag.kind,
                           default=flag.default if unset else raw,
                           help=f"{flag.help} (env {flag.env}; default: %(default)s)")


def secret_file_var(var: str) -> str:
    """The variable naming a file that holds the secret of ``var`` (``EXPORTER_AUTH_TOKEN`` ->
    ``EXPORTER_AUTH_TOKEN_FILE``)."""
    return f"{var}_FILE"


def secret_from_file(env: Mapping[str, str], var: str) -> str | None:
    """The secret in the file ``secret_file_var(var)`` names, or None; ``OSError`` says why
    the file could not be read."""
    path = env.get(secret_file_var(var))
    return Path(path).read_text().strip() if path else None


def all_flags() -> Iterator[Flag]:
    for flags in FLAGS.values():
        yield from flags


def parse_settings(argv: Sequence[str] | None = None,
                   env: Mapping[str, str] | None = None) -> Settings:
    """Parse flags and environment; exits with a usage error for invalid values."""
    env = dict(os.environ if env is None else env)
    parser = build_parser(env)
    args = parser.parse_args(argv)
    values: dict[str, dict[str, Any]] = {name: {} for name in RECORDS}
    for flag in all_flags():
        record, field = flag.fills.split(".")
        values[record][field] = _value(parser, env, flag, getattr(args, flag.dest))
    settings = Settings(**{name: kind(**values[name]) for name, kind in RECORDS.items()},
                        bench_noop=args.bench_noop)
    for broken, message in _conflicts(settings):
        if broken:  # one line: the whole usage would bury it
            parser.exit(2, f"{parser.prog}: error: {message}\n")
    return settings


def _value(parser: argparse.ArgumentParser, env: Mapping[str, str], flag: Flag,
           value: Any) -> Any:
    """The field's value from what argparse made of ``flag``."""
    if flag.action == "append":
        value = tuple(value or _listed(parser, env, flag))
    if flag.secret and value is None:
        try:
            value = secret_from_file(env, flag.env)
        except OSError as exc:
            parser.error(f"cannot read {secret_file_var(flag.env)}: {exc}")
    if flag.load is not None:
        try:
            value = flag.load(value)
        except ValueError as exc:
            parser.error(f"{flag.name} {value}: {exc}")
    return value


def port_problem(url: str) -> str | None:
    """What is wrong with the port of ``url`` (out of range, not a number), if anything."""
    try:
        _ = urlsplit(url).port  # urllib checks the port when it is read
    except ValueError as exc:
        return str(exc)
    return None


def _conflicts(s: Settings) -> list[tuple[bool, str]]:
    """Combinations of flags that cannot work, each with what to say."""
    auth, state = s.auth, s.state
    bad_port = port_problem(state.url) if state.url is not None else None
    return [
        (state.url is not None and state.path is not _DEFAULT_STATE_PATH,
         "--state-url and --state-path are mutually exclusive"),
        (state.url is not None and not state.url.startswith(("postgresql://", "postgres://")),
         "--state-url must be postgresql://USER[:PASSWORD]@HOST:PORT/DB"),
        (bad_port is not None, f"--state-url has an invalid port: {bad_port}"),
        ((auth.basic_auth_user is None) != (auth.basic_auth_password is None),
         "--basic-auth-user and --basic-auth-password go together"),
        (auth.auth_header is not None and auth.auth_token is None,
         "--auth-header needs --auth-token"),
        (s.logging.format not in ("text", "json"), "--log-format must be text or json"),
        (s.logging.level not in ("DEBUG", "INFO", "WARNING", "ERROR"),
         "--log-level must be DEBUG, INFO, WARNING or ERROR"),
        (s.listen.metrics_port is not None and s.listen.metrics_port == s.listen.port,
         "--metrics-port must differ from --port"),
        (auth.oauth_client_id is not None and auth.oauth_client_secret is None
         and auth.oauth_client_public_key is None,
         "--oauth-client-id needs --oauth-client-secret or --oauth-client-public-key"),
        (auth.oauth_client_id is None and any(
            value is not None for value in (auth.oauth_client_secret, auth.oauth_signing_key,
                                            auth.oauth_client_public_key, auth.oauth_username)),
         "--oauth-client-secret, --oauth-client-public-key, --oauth-signing-key and "
         "--oauth-username need --oauth-client-id"),
        (auth.oauth_client_id is not None and auth.oauth_client_secret is None
         and auth.oauth_signing_key is None,
         "without --oauth-client-secret, --oauth-signing-key signs the access tokens: set it"),
        ((auth.oauth_username is None) != (auth.oauth_password is None),
         "--oauth-username and --oauth-password go together"),
        *((is_placeholder(value := getattr(auth, f.fills.removeprefix("auth."))),
           f"{f.name} ({f.env}) is {value!r}, a placeholder from an example: set a secret of "
           "your own, e.g. from 'openssl rand -hex 32'")
          for f in all_flags() if f.secret and f.fills.startswith("auth.")),
    ]


def _listed(parser: argparse.ArgumentParser, env: Mapping[str, str], flag: Flag) -> list[object]:
    """The comma-separated values of a repeatable flag's variable."""
    values = []
    for item in env.get(flag.env, "").split(","):
        if item.strip():
            try:
                values.append(flag.kind(item))
            except argparse.ArgumentTypeError as exc:
                parser.error(f"{flag.env}: {exc}")
    return values


def _truthy(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")
