"""The Prometheus exporter-toolkit web configuration file (``--web.config.file``).

Operators already write one of these for node_exporter and friends; reading the same format lets
them reuse it. Supported keys (anything else is refused at start-up rather than silently ignored,
because an ignored security setting is worse than a failed start):

```yaml
tls_server_config:
  cert_file: server.crt          # with key_file: serve HTTPS
  key_file: server.key
  client_auth_type: NoClientCert # or VerifyClientCertIfGiven, RequireAndVerifyClientCert
  client_ca_file: clients-ca.crt # needed by the two verifying client_auth_type values
  min_version: TLS12             # TLS10..TLS13, default TLS12
  max_version: TLS13
basic_auth_users:
  alice: $2y$10$...              # bcrypt hashes, e.g. from `htpasswd -nBC 10 "" | tr -d ':\\n'`
```

Unlike exporter-toolkit the file is read once, at start-up: restart to pick up a renewed
certificate. As in exporter-toolkit, a bcrypt check is slow on purpose (about 70 ms at cost 10),
so its result is cached per user and password, and checks run one at a time off the event loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import secrets
import ssl
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import bcrypt
import yaml

from exporter.security.auth import decode_basic

_TLS_KEYS: Final = frozenset({"cert_file", "key_file", "client_auth_type", "client_ca_file",
                              "min_version", "max_version"})
_TOP_KEYS: Final = frozenset({"tls_server_config", "basic_auth_users"})
_VERSIONS: Final = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
                    "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
# Go's tls.ClientAuthType names. RequestClientCert and RequireAnyClientCert accept certificates
# without verifying them, which Python's ssl module cannot do (and which exporter-toolkit calls
# insecure), so they are refused with a pointer to the verifying equivalents.
_CLIENT_AUTH: Final = {"NoClientCert": ssl.CERT_NONE,
                       "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
                       "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}
_BCRYPT_HASH: Final = re.compile(r"\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}")
CACHE_SIZE: Final = 256
MAX_PASSWORD_BYTES: Final = 72


class WebConfigError(ValueError):
    """The web configuration file cannot be used; the message says which key and why."""


@dataclass(frozen=True)
class WebConfig:
    ssl_context: ssl.SSLContext | None
    basic_auth_users: Mapping[str, str]


def load_web_config(path: Path) -> WebConfig:
    """Read and validate the file, building the TLS context so a bad key fails at start-up."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise WebConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise WebConfigError(f"{path} is not valid YAML: {exc}") from exc
    doc = _mapping(raw or {}, "the file")
    _no_unknown(doc, _TOP_KEYS, "")
    tls = _mapping(doc.get("tls_server_config") or {}, "tls_server_config")
    _no_unknown(tls, _TLS_KEYS, "tls_server_config.")
    users = _mapping(doc.get("basic_auth_users") or {}, "basic_auth_users")
    for user, hashed in users.items():
        if not isinstance(user, str) or not isinstance(hashed, str) or ":" in user:
            raise WebConfigError(f"basic_auth_users: entry {user!r} must map a user name "
                                 "(without ':') to a bcrypt hash")
        if not _BCRYPT_HASH.fullmatch(hashed):
            raise WebConfigError(f"basic_auth_users: the hash of {user!r} is not a bcrypt "
                                 "hash ($2y$10$... with a cost of 4 to 31)")
    return WebConfig(ssl_context=_ssl_context(tls, path.parent) if tls else None,
                     basic_auth_users=dict(users))


def _ssl_context(tls: Mapping[str, Any], base: Path) -> ssl.SSLContext | None:
    def file(key: str) -> Path | None:
        value = tls.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise WebConfigError(f"tls_server_config.{key} must be a file name")
        return base / value  # relative names are relative to the web config file

    cert, key, client_ca = file("cert_file"), file("key_file"), file("client_ca_file")
    if cert is None and key is None:
        if len(tls):
            raise WebConfigError("tls_server_config needs cert_file and key_file")
        return None
    if cert is None or key is None:
        raise WebConfigError("tls_server_config needs both cert_file and key_file, got only "
                             + ("cert_file" if cert is not None else "key_file"))
    auth_type = tls.get("client_auth_type", "NoClientCert")
    if auth_type not in _CLIENT_AUTH:
        raise WebConfigError(f"tls_server_config.client_auth_type {auth_type!r} is not "
                             f"supported; use one of {', '.join(_CLIENT_AUTH)}")
    if _CLIENT_AUTH[auth_type] != ssl.CERT_NONE and client_ca is None:
        raise WebConfigError(f"client_auth_type {auth_type} needs client_ca_file")
    if _CLIENT_AUTH[auth_type] == ssl.CERT_NONE and client_ca is not None:
        raise WebConfigError("client_ca_file is set but client_auth_type is NoClientCert: "
                             "set client_auth_type to RequireAndVerifyClientCert")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _version(tls, "min_version", "TLS12")
    context.maximum_version = _version(tls, "max_version", "TLS13")
    if context.minimum_version > context.maximum_version:
        raise WebConfigError("tls_server_config.min_version is above max_version")
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise WebConfigError(f"cannot load cert_file {cert} with key_file {key}: {exc}") from exc
    if client_ca is not None:
        try:
            context.load_verify_locations(cafile=client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise WebConfigError(f"cannot load client_ca_file {client_ca}: {exc}") from exc
    context.verify_mode = _CLIENT_AUTH[auth_type]
    return context


def _version(tls: Mapping[str, Any], key: str, default: str) -> ssl.TLSVersion:
    name = tls.get(key, default)
    if name not in _VERSIONS:
        raise WebConfigError(f"tls_server_config.{key} {name!r} is not one of "
                             f"{', '.join(_VERSIONS)}")
    return _VERSIONS[name]


def _mapping(value: object, where: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise WebConfigError(f"{where} must be a mapping")
    return value


def _no_unknown(doc: Mapping[Any, Any], known: frozenset[str], prefix: str) -> None:
    unknown = sorted(prefix + str(k) for k in doc if k not in known)
    if unknown:
        supported = sorted(prefix + k for k in known)
        raise WebConfigError(f"unsupported key(s) {', '.join(unknown)}; this exporter "
                             f"supports {', '.join(supported)}")


class BasicAuthUsers:
    """The ``basic_auth_users`` of the web config: bcrypt-verified, with verdicts cached.

    The cache key is an HMAC of user and password under a per-process random key, so the
    cache never holds a password or a fast hash of one that outlives the process. Wrong
    passwords are cached too (bounded), so retrying one does not cost a bcrypt each time.
    An unknown user is checked against a dummy hash of the same cost, so timing does not tell
    which user names exist.
    """

    def __init__(self, hashes: Mapping[str, str]) -> None:
        self._hashes = {user: hashed.encode() for user, hashed in hashes.items()}
        cost = max(int(h.split(b"$")[2]) for h in self._hashes.values())
        self._dummy = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds=cost))
        self._cache_key = secrets.token_bytes(32)
        self._verdicts: OrderedDict[bytes, bool] = OrderedDict()
        # One worker: bcrypt is CPU-bound on purpose; a burst of guesses must neither run many
        # at once nor occupy the default executor that the rest of the exporter relies on.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bcrypt")

    async def admits(self, headers: Mapping[str, str]) -> bool:
        """True when ``headers`` carry HTTP Basic credentials of a configured user."""
        scheme, _, value = headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        credentials = decode_basic(value.strip())
        if credentials is None:
            return False
        user, password = credentials
        key = hmac.new(self._cache_key, json.dumps([user, password]).encode(),
                       hashlib.sha256).digest()
        verdict = self._verdicts.get(key)
        if verdict is None:
            loop = asyncio.get_running_loop()
            verdict = await loop.run_in_executor(self._executor, self._verify, user, password)
            self._verdicts[key] = verdict
            if len(self._verdicts) > CACHE_SIZE:
                self._verdicts.popitem(last=False)
        return verdict

    def _verify(self, user: str, password: str) -> bool:
        hashed = self._hashes.get(user)
        secret = password.encode("utf-8", "surrogateescape")
        # bcrypt reads at most 72 bytes; refuse longer rather than accept a truncated match.
        if len(secret) > MAX_PASSWORD_BYTES:
            return False
        ok = bcrypt.checkpw(secret, hashed or self._dummy)
        return ok and hashed is not None

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
