"""The Prometheus exporter-toolkit web configuration file (``--web.config.file``).

Operators already write one of these for node_exporter and friends; reading the same format lets
them reuse it. Every key of exporter-toolkit's format is read (``docs/security.md`` lists them
and the few differences); anything else is refused at start-up rather than silently ignored,
because an ignored security setting is worse than a failed start. As Go's strict YAML unmarshal
does, a key given twice is refused too.

As exporter-toolkit does, the file (and the certificate, key and CA files it names) is re-read
when it changes: ``WebConfigFile.current`` compares their modification stamps on each TLS
handshake and each request, so a renewed certificate needs no restart. A changed file that does
not load is logged and the last good configuration stays in force; ``last_reload_successful``
and ``last_success`` say so, as ``--config.file``'s do.
"""

from __future__ import annotations

import logging
import math
import re
import ssl
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from exporter.security.tls import TLSConfigError, TLSSettings, build_context, parse_tls

log = logging.getLogger(__name__)

_SECTIONS: Final = {
    "tls_server_config": frozenset({
        "cert", "key", "client_ca", "cert_file", "key_file", "client_auth_type",
        "client_ca_file", "cipher_suites", "curve_preferences", "min_version", "max_version",
        "prefer_server_cipher_suites", "client_allowed_sans"}),
    "http_server_config": frozenset({"http2", "headers"}),
    "rate_limit": frozenset({"interval", "burst"}),
    "basic_auth_users": None,  # user names are the keys
}
# exporter-toolkit's only configurable response headers, with their allowed values if enumerated.
HEADERS: Final[Mapping[str, tuple[str, ...]]] = {
    "Strict-Transport-Security": (), "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"), "X-XSS-Protection": (),
    "Content-Security-Policy": ()}
#: Far beyond any real web config (a few users and TLS paths); larger is refused unread.
MAX_FILE_BYTES: Final = 1024 * 1024
_BCRYPT_HASH: Final = re.compile(r"\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}")
_GO_DURATION_PART: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_GO_UNITS: Final = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0,
                    "m": 60.0, "h": 3600.0}


class WebConfigError(ValueError):
    """The web configuration file cannot be used; the message says which key and why."""


@dataclass(frozen=True)
class RateLimit:
    """``rate_limit``: a token bucket refilled one request per ``interval``, ``burst`` deep."""

    interval: float
    burst: int


@dataclass(frozen=True)
class WebConfig:
    ssl_context: ssl.SSLContext | None
    basic_auth_users: Mapping[str, str]
    headers: Mapping[str, str] = field(default_factory=dict)
    rate_limit: RateLimit | None = None
    client_allowed_sans: frozenset[str] | None = None
    http2: bool = True
    path: Path | None = None
    files: tuple[Path, ...] = ()  # what the configuration was read from, watched for changes


def load_web_config(path: Path) -> WebConfig:
    """Read and validate the file, building the TLS context so a bad key fails at start-up."""
    doc = _read(path)
    unknown = sorted(str(k) for k in doc if k not in _SECTIONS)
    if unknown:
        raise WebConfigError(f"unsupported key(s) {', '.join(unknown)}; the web config file "
                             f"has {', '.join(_SECTIONS)}")
    sections = {name: _section(doc, name, keys) for name, keys in _SECTIONS.items()}
    users = _users(sections["basic_auth_users"])
    http = sections["http_server_config"]
    http2 = http.get("http2", True)
    if not isinstance(http2, bool):
        raise WebConfigError("http_server_config.http2 must be true or false")
    headers = _headers(http.get("headers"))
    rate_limit = _rate_limit(sections["rate_limit"])
    try:
        tls = parse_tls(sections["tls_server_config"], path.parent)
        context = _context(tls, http2=http2)
    except TLSConfigError as exc:
        raise WebConfigError(str(exc)) from exc
    return WebConfig(ssl_context=context, basic_auth_users=users, headers=headers,
                     rate_limit=rate_limit, client_allowed_sans=tls.allowed_sans, http2=http2,
                     path=path, files=(path, *tls.files))


def _read(path: Path) -> dict[Any, Any]:
    try:
        # Looked at before it is opened: it is read on the event loop, where a FIFO would
        # block every request and a huge file stall them.
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise WebConfigError(f"{path} is not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            raise WebConfigError(f"{path} is {st.st_size} bytes; a web config file is at most "
                                 f"{MAX_FILE_BYTES}")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise WebConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise WebConfigError(f"{path} is not valid YAML: {exc}") from exc
    # Here, not at the top: PyYAML is loaded only when there is a web config file to read.
    from exporter.security import webconfig_yaml

    try:
        raw = webconfig_yaml.load(text)
    except webconfig_yaml.YAMLProblem as exc:
        raise WebConfigError(f"{path} is not valid YAML: {exc}") from exc
    return _mapping(raw or {}, "the file")


def _section(doc: Mapping[Any, Any], name: str, keys: frozenset[str] | None) -> dict[Any, Any]:
    section = _mapping(doc.get(name) or {}, name)
    if keys is not None:
        extra = sorted(f"{name}.{k}" for k in section if k not in keys)
        if extra:
            raise WebConfigError(f"unsupported key(s) {', '.join(extra)}; {name} has "
                                 f"{', '.join(sorted(keys))}")
    return section


def _mapping(value: object, where: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise WebConfigError(f"{where} must be a mapping")
    return value


def _users(users: Mapping[Any, Any]) -> dict[str, str]:
    for user, hashed in users.items():
        if not isinstance(user, str) or not isinstance(hashed, str) or ":" in user:
            raise WebConfigError(f"basic_auth_users: entry {user!r} must map a user name "
                                 "(without ':') to a bcrypt hash")
        if not _BCRYPT_HASH.fullmatch(hashed):
            raise WebConfigError(f"basic_auth_users: the hash of {user!r} is not a bcrypt "
                                 "hash ($2y$10$... with a cost of 4 to 31)")
    return dict(users)


def _headers(headers: object) -> dict[str, str]:
    """exporter-toolkit's header rules: five names only, enumerated values checked."""
    found = _mapping(headers or {}, "http_server_config.headers")
    out = {}
    for name, value in found.items():
        if name not in HEADERS:
            raise WebConfigError(f"http_server_config.headers: HTTP header {name!r} can not be "
                                 f"configured (only {', '.join(HEADERS)})")
        if not isinstance(value, str | int | float):
            raise WebConfigError(f"http_server_config.headers.{name} must be a string")
        # Go's YAML gives a scalar's text to a string field: "X-XSS-Protection: 1" is "1".
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if HEADERS[name] and text not in HEADERS[name]:
            raise WebConfigError(f"http_server_config.headers: invalid value for {name}. "
                                 f"Expected one of: {list(HEADERS[name])}, but got: {text!r}")
        if any(ord(c) < 32 or ord(c) == 127 for c in text):
            raise WebConfigError(f"http_server_config.headers.{name} has a control character")
        if text:  # blank means unset
            out[name] = text
    return out


def _rate_limit(section: Mapping[str, Any]) -> RateLimit | None:
    interval = go_duration(section.get("interval", 0), "rate_limit.interval")
    burst = section.get("burst", 0)
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 0:
        raise WebConfigError("rate_limit.burst must be a whole number, 0 or more")
    if interval < 0:
        raise WebConfigError("rate_limit.interval must not be negative (0 turns it off)")
    return RateLimit(interval, burst) if interval > 0 else None


def go_duration(value: object, where: str) -> float:
    """Seconds in a Go ``time.Duration`` as YAML gives it: ``"1m30s"``, or integer nanoseconds."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value * 1e-9
    if isinstance(value, str):
        text = value.strip()
        sign = -1.0 if text.startswith("-") else 1.0
        body = text.lstrip("+-")
        parts = _GO_DURATION_PART.findall(body)
        if body == "0":
            return 0.0
        if parts and "".join(n + u for n, u in parts) == body:
            return sign * sum(float(n) * _GO_UNITS[u] for n, u in parts)
    raise WebConfigError(f"{where}: {value!r} is not a duration such as 1s, 500ms or 1m30s")


def _context(tls: TLSSettings, *, http2: bool) -> ssl.SSLContext | None:
    if tls.enabled:
        return build_context(tls, http2=http2)
    if tls.raw:
        raise WebConfigError("tls_server_config needs cert_file and key_file (or cert and key)")
    return None


class RateLimiter:
    """Go's ``rate.Limiter.Allow``: starts full, refills continuously, never above ``burst``."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._tokens = float(limit.burst)
        self._last = clock()

    def allow(self) -> bool:
        now = self._clock()
        self._tokens = min(float(self.limit.burst),
                           self._tokens + (now - self._last) / self.limit.interval)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    @property
    def retry_after(self) -> int:
        """Whole seconds until a token is due (at least 1)."""
        return max(1, math.ceil((1 - self._tokens) * self.limit.interval))


_Stamp = tuple[tuple[str, int, int, int] | None, ...]


class WebConfigFile:
    """The web config as last loaded from its file, re-read when that or a file it names changes.

    Each TLS handshake and each request asks for ``current()``, which compares the files'
    (inode, size, modification time) with those of the last load: a few ``stat`` calls. When
    they changed the file is loaded again; if that fails, the error is logged once and the last
    good configuration is kept, so a half-written renewal does not take the exporter down.
    Whether the listeners speak TLS at all is decided at start-up: turning TLS on or off needs a
    restart, as in exporter-toolkit.
    """

    def __init__(self, config: WebConfig) -> None:
        assert config.path is not None
        self.path = config.path
        self._config = config
        self._stamp = _stamp(config.files)
        self._failed: _Stamp | None = None
        self._lock = threading.Lock()
        #: Whether the last load of a changed file was taken, and when (Unix seconds) one was.
        self.last_reload_successful = True
        self.last_success = time.time()
        self.limiter = RateLimiter(config.rate_limit) if config.rate_limit else None

    def current(self) -> WebConfig:
        stamp = _stamp(self._config.files)
        if stamp != self._stamp and stamp != self._failed:
            with self._lock:  # handshakes may run on other threads
                self._reload(stamp)
        return self._config

    def _reload(self, stamp: _Stamp) -> None:
        loaded = self._refusal()
        if isinstance(loaded, str):
            self._failed, self.last_reload_successful = stamp, False
            log.error("--web.config.file %s changed %s; keeping the previous configuration",
                      self.path, loaded)
            return
        if loaded.rate_limit != self._config.rate_limit:
            self.limiter = RateLimiter(loaded.rate_limit) if loaded.rate_limit else None
        self._config, self._stamp, self._failed = loaded, _stamp(loaded.files), None
        self.last_reload_successful, self.last_success = True, time.time()
        log.info("--web.config.file %s reloaded", self.path)

    def _refusal(self) -> WebConfig | str:
        """The changed file's configuration, or why it is not taken."""
        try:
            config = load_web_config(self.path)
        except WebConfigError as exc:
            return f"but cannot be used: {exc}"
        if (config.ssl_context is None) != (self._config.ssl_context is None):
            return "whether TLS is on, which needs a restart"
        if self._config.basic_auth_users and not config.basic_auth_users:
            # A file being rewritten in place (truncated first) reads for a moment as one
            # without users: taking it would serve every endpoint without credentials.
            return ("to one without basic_auth_users: turning authentication off needs a "
                    "restart")
        return config

    def server_context(self) -> ssl.SSLContext | None:
        """The context for the listeners: each connection gets the current file's context."""
        if self._config.ssl_context is None:
            return None
        context = _PerConnectionContext(ssl.PROTOCOL_TLS_SERVER)
        context.source = self
        return context


def _stamp(files: tuple[Path, ...]) -> _Stamp:
    stamps: list[tuple[str, int, int, int] | None] = []
    for path in files:
        try:
            st = path.stat()
        except OSError:
            stamps.append(None)
        else:
            stamps.append((str(path), st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(stamps)


class _PerConnectionContext(ssl.SSLContext):
    """Hands each new connection the context of the current file.

    asyncio and uvloop call ``wrap_bio`` once per accepted connection, so delegating it gives
    every handshake the current versions, ciphers, curves, client auth and certificate, as Go's
    ``GetConfigForClient`` does in exporter-toolkit (an SNI callback could swap only the
    certificate and trust store of a connection, not its versions or verify mode).
    """

    source: WebConfigFile

    def wrap_bio(self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO,
                 server_side: bool = False, server_hostname: str | bytes | None = None,
                 session: ssl.SSLSession | None = None) -> ssl.SSLObject:
        context = self.source.current().ssl_context
        assert context is not None  # TLS cannot be turned off without a restart
        return context.wrap_bio(incoming, outgoing, server_side, server_hostname, session)
