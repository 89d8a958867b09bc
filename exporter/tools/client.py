"""The HTTP client behind the subcommands, and the connection flags they share.

The subcommands talk to a running exporter over HTTP with the same credentials the server is
configured with (the same flags and ``EXPORTER_*`` variables, ``*_FILE`` included), so a
shell that runs the server can also feed it.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import re
import ssl
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Final, TypeAlias

from exporter.cli.flags import duration, secret_file_var, secret_from_file
from exporter.web.outcomes import STORED, Outcome
from exporter.web.routes import WEBHOOK

PROG: Final = "clevertap-export-exporter"
DEFAULT_URL: Final = "http://127.0.0.1:9877"
#: argparse's sub-parser collection, as the subcommand modules receive it.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
RAW: Final = argparse.RawDescriptionHelpFormatter
#: ``--url`` may be the exporter's base URL or the webhook URL configured in CleverTap.
_WEBHOOK_URL = re.compile(rf"(?P<base>.*?){re.escape(WEBHOOK)}(?:/(?P<account>[^/]+))?/*")


class ClientError(Exception):
    """The exporter could not be reached or answered something unusable."""


@dataclass
class Answer:
    status: int
    body: str

    @property
    def outcome(self) -> str:
        """``accepted``, ``duplicate``, ``test``, or ``rejected`` (4xx) / ``failed`` (5xx)."""
        if 200 <= self.status < 300:
            try:
                doc = json.loads(self.body)
            except ValueError:
                return Outcome.ACCEPTED.value
            value = doc.get("status") if isinstance(doc, dict) else None
            return value if value in STORED else Outcome.ACCEPTED.value
        return "rejected" if 400 <= self.status < 500 else "failed"


class WebhookClient:
    """Posts bodies to ``/webhook[/{account}]`` over one kept-alive connection."""

    def __init__(self, url: str, headers: Mapping[str, str], timeout: float = 10.0,
                 tls: ssl.SSLContext | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ClientError(f"--url must be an http:// or https:// URL, got {url!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        try:
            self.port = parts.port
        except ValueError as exc:  # out of range, or not a number
            raise ClientError(f"--url has an invalid port: {exc}") from None
        self.base = parts.path.rstrip("/")
        #: The account of a ``--url`` ending in ``/webhook/ACCOUNT``: the default of ``post``.
        self.account: str | None = None
        m = _WEBHOOK_URL.fullmatch(parts.path)
        if m:
            self.base = m["base"]
            self.account = urllib.parse.unquote(m["account"]) if m["account"] else None
        self.headers = {"Content-Type": "application/json", **headers}
        self.timeout = timeout
        self.tls = tls
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            if self.scheme == "https":
                self._conn = http.client.HTTPSConnection(self.host, self.port,
                                                         timeout=self.timeout, context=self.tls)
            else:
                self._conn = http.client.HTTPConnection(self.host, self.port,
                                                        timeout=self.timeout)
        return self._conn

    def url(self, account: str | None = None) -> str:
        """The webhook URL a post for ``account`` goes to."""
        return self.origin + self._path(account)

    def _path(self, account: str | None) -> str:
        return self.base + self._route(account)

    def _route(self, account: str | None) -> str:
        account = account or self.account
        return WEBHOOK + (f"/{urllib.parse.quote(account)}" if account else "")

    def post(self, body: bytes, account: str | None = None) -> Answer:
        return self.request("POST", self._route(account), body)

    def request(self, method: str, route: str, body: bytes | None = None) -> Answer:
        """``method`` on ``route``, a path under the exporter's base URL."""
        path = self.base + route
        verb = "post to" if method == "POST" else method.lower()
        for attempt in (1, 2):  # a kept-alive connection may have been closed by the server
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=self.headers)
                resp = conn.getresponse()
                return Answer(resp.status, resp.read().decode("utf-8", "replace"))
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if attempt == 2:
                    raise ClientError(f"cannot {verb} {self.origin}{path}: {exc}") from exc
        raise AssertionError("unreachable")

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.host}{':' + str(self.port) if self.port else ''}"

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _secret(env: Mapping[str, str], var: str) -> str | None:
    if env.get(var):
        return env[var]
    try:
        return secret_from_file(env, var)
    except OSError as exc:
        raise ClientError(f"cannot read {secret_file_var(var)}: {exc}") from exc


def add_connection_flags(p: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    g = p.add_argument_group("connection (same flags and variables as the server)")
    g.add_argument("--url", default=env.get("EXPORTER_URL", DEFAULT_URL),
                   help="the running exporter: its base URL, or the webhook URL configured in "
                   "CleverTap (.../webhook or .../webhook/ACCOUNT) (env EXPORTER_URL; "
                   "default: %(default)s)")
    g.add_argument("--account", default=None,
                   help="post to /webhook/ACCOUNT instead of /webhook (account 'default'); "
                   "overrides an account in --url")
    g.add_argument("--cacert", type=Path, default=env.get("EXPORTER_CACERT") or None,
                   help="PEM file of the CA that signed an https:// exporter's certificate "
                   "(env EXPORTER_CACERT; default: the system's CAs)")
    g.add_argument("--insecure", action="store_true",
                   help="do not verify an https:// exporter's certificate (testing only)")
    g.add_argument("--auth-token", default=None,
                   help="send 'Authorization: Bearer TOKEN' (env EXPORTER_AUTH_TOKEN or "
                   "EXPORTER_AUTH_TOKEN_FILE)")
    g.add_argument("--auth-header", default=env.get("EXPORTER_AUTH_HEADER"),
                   help="send the token in this header instead (env EXPORTER_AUTH_HEADER)")
    g.add_argument("--basic-auth-user", default=env.get("EXPORTER_BASIC_AUTH_USER"),
                   help="HTTP Basic user (env EXPORTER_BASIC_AUTH_USER)")
    g.add_argument("--basic-auth-password", default=None,
                   help="HTTP Basic password (env EXPORTER_BASIC_AUTH_PASSWORD or "
                   "EXPORTER_BASIC_AUTH_PASSWORD_FILE)")
    g.add_argument("--timeout", type=duration, default="10s",
                   help="seconds to wait for each answer (default: %(default)s)")


def connect(args: argparse.Namespace, env: Mapping[str, str]) -> WebhookClient:
    token = args.auth_token or _secret(env, "EXPORTER_AUTH_TOKEN")
    password = args.basic_auth_password or _secret(env, "EXPORTER_BASIC_AUTH_PASSWORD")
    headers: dict[str, str] = {}
    if token:
        if args.auth_header:
            headers[args.auth_header] = token
        else:
            headers["Authorization"] = f"Bearer {token}"
    elif args.basic_auth_user and password is not None:
        pair = f"{args.basic_auth_user}:{password}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    return WebhookClient(args.url, headers, args.timeout, _tls(args))


def _tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not args.url.startswith("https:"):
        return None
    try:
        context = ssl.create_default_context(
            cafile=None if args.cacert is None else str(args.cacert))
    except (OSError, ssl.SSLError) as exc:
        raise ClientError(f"cannot use --cacert {args.cacert}: {exc}") from exc
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def clevertap_time(ts: float, zone: tzinfo) -> str:
    """CleverTap's documented ``DD/MM/YYYY h:mm:ss AM/PM``, in the account's zone."""
    dt = datetime.fromtimestamp(ts, zone)
    hour = dt.hour % 12 or 12
    return f"{dt:%d/%m/%Y} {hour}:{dt:%M:%S} {'AM' if dt.hour < 12 else 'PM'}"
