"""The ``tls_server_config`` of the web configuration file, built into an ``ssl.SSLContext``.

Names follow Go's ``crypto/tls`` as exporter-toolkit reads them; each is mapped to OpenSSL's
equivalent. Two settings need OpenSSL calls that Python's ``ssl`` module does not expose (see
``exporter.security.openssl``): a list of several ``curve_preferences``, and the client auth
types that ask for a certificate without verifying it. Where those calls are unavailable the
setting is refused by name rather than approximated. That module (and ctypes with it) is
imported only when one of those settings is used.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

VERSIONS: Final = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
                   "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
# Go's tls.CipherSuites() (the suites exporter-toolkit accepts) and their OpenSSL names. TLS 1.3
# suites are accepted but, as in Go, not configurable: they map to None.
CIPHERS: Final[Mapping[str, str | None]] = {
    "TLS_AES_128_GCM_SHA256": None,
    "TLS_AES_256_GCM_SHA384": None,
    "TLS_CHACHA20_POLY1305_SHA256": None,
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
}
# Go's net/http refuses HTTP/2 over TLS 1.2 without one of these (RFC 7540 section 9.2.2).
HTTP2_CIPHERS: Final = frozenset({"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                                  "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"})
CURVES: Final = {"CurveP256": "P-256", "CurveP384": "P-384", "CurveP521": "P-521",
                 "X25519": "X25519"}
# Go's tls.ClientAuthType names: (ask for a certificate, require one, verify it).
CLIENT_AUTH: Final = {
    "": (False, False, False),
    "NoClientCert": (False, False, False),
    "RequestClientCert": (True, False, False),
    "RequireAnyClientCert": (True, True, False),
    "RequireClientCert": (True, True, False),  # exporter-toolkit's older name
    "VerifyClientCertIfGiven": (True, False, True),
    "RequireAndVerifyClientCert": (True, True, True),
}
_ENABLING: Final = ("cert", "key", "client_ca", "cert_file", "key_file", "client_ca_file",
                    "client_auth_type")


class TLSConfigError(ValueError):
    """A ``tls_server_config`` that cannot be used; the message names the setting."""


@dataclass(frozen=True)
class TLSSettings:
    """The names in ``tls_server_config`` checked, before any file is read."""

    raw: Mapping[str, Any]
    base: Path
    min_version: ssl.TLSVersion
    max_version: ssl.TLSVersion
    ciphers: tuple[str, ...]
    curves: tuple[str, ...]
    prefer_server: bool
    client_auth: str
    allowed_sans: frozenset[str] | None

    @property
    def enabled(self) -> bool:
        """As exporter-toolkit: any certificate, key, client CA or client auth type turns TLS on."""
        return any(self.raw.get(key) not in (None, "") for key in _ENABLING)

    def file(self, key: str) -> Path | None:
        value = self.raw.get(key)
        if value in (None, ""):
            return None
        return self.base / str(value)  # relative names are relative to the web config file

    @property
    def files(self) -> tuple[Path, ...]:
        """The files the context is made of, watched for changes."""
        return tuple(p for p in map(self.file, ("cert_file", "key_file", "client_ca_file")) if p)


def parse_tls(tls: Mapping[str, Any], base: Path) -> TLSSettings:
    """Check names as Go's strict unmarshal does: an unknown version, cipher or curve fails."""
    ciphers = _names(tls, "cipher_suites", CIPHERS, "unknown cipher")
    curves = _names(tls, "curve_preferences", CURVES, "unknown curve")
    prefer = tls.get("prefer_server_cipher_suites", True)
    if not isinstance(prefer, bool):
        raise TLSConfigError("tls_server_config.prefer_server_cipher_suites must be true or false")
    client_auth = tls.get("client_auth_type") or ""
    if not isinstance(client_auth, str):
        raise TLSConfigError("tls_server_config.client_auth_type must be a string")
    sans = tls.get("client_allowed_sans")
    if sans is not None and (not isinstance(sans, list)
                             or not all(isinstance(s, str) for s in sans)):
        raise TLSConfigError("tls_server_config.client_allowed_sans must be a list of strings")
    for key in ("cert", "key", "client_ca", "cert_file", "key_file", "client_ca_file"):
        if tls.get(key) is not None and not isinstance(tls[key], str):
            raise TLSConfigError(f"tls_server_config.{key} must be a string")
    return TLSSettings(raw=tls, base=base, min_version=_version(tls, "min_version", "TLS12"),
                       max_version=_version(tls, "max_version", "TLS13"), ciphers=ciphers,
                       curves=curves, prefer_server=prefer, client_auth=client_auth,
                       allowed_sans=frozenset(sans) if sans is not None else None)


def _version(tls: Mapping[str, Any], key: str, default: str) -> ssl.TLSVersion:
    name = tls.get(key, default)
    if name not in VERSIONS:
        raise TLSConfigError(f"tls_server_config.{key}: unknown TLS version: {name} (use one "
                             f"of {', '.join(VERSIONS)})")
    # OpenSSL 3 negotiates TLS 1.0 and 1.1 only at security level 0, which would also admit
    # keys and signatures of any strength: refuse rather than accept a version never spoken.
    if VERSIONS[name] < ssl.TLSVersion.TLSv1_2 and ssl.OPENSSL_VERSION_INFO[0] >= 3:
        raise TLSConfigError(f"tls_server_config.{key}: {name} cannot be honoured: "
                             f"{ssl.OPENSSL_VERSION} does not negotiate TLS 1.0 or 1.1 at its "
                             "security level; use TLS12 or TLS13")
    return VERSIONS[name]


def _names(tls: Mapping[str, Any], key: str, known: Mapping[str, object],
           problem: str) -> tuple[str, ...]:
    values = tls.get(key) or []
    if not isinstance(values, list):
        raise TLSConfigError(f"tls_server_config.{key} must be a list")
    for value in values:
        if value not in known:
            raise TLSConfigError(f"tls_server_config.{key}: {problem}: {value}")
    return tuple(values)


def build_context(settings: TLSSettings, *, http2: bool) -> ssl.SSLContext:
    """The server context, in exporter-toolkit's order of checks so each file fails as there."""
    for name in ("cert", "key"):  # both named before either is read, as Go checks
        if not settings.raw.get(name) and settings.file(f"{name}_file") is None:
            raise TLSConfigError(f"tls_server_config: missing one of {name} or {name}_file")
    cert, key = _pem(settings, "cert"), _pem(settings, "key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _load_key_pair(context, cert, key)
    client_ca = _pem(settings, "client_ca", required=False)
    ask, require, verify = _client_auth(settings, has_ca=client_ca is not None)
    context.minimum_version = settings.min_version
    context.maximum_version = settings.max_version
    if settings.min_version > settings.max_version:
        raise TLSConfigError("tls_server_config: min_version is above max_version")
    _set_ciphers(context, settings, http2=http2)
    _set_curves(context, settings.curves)
    if verify:
        if client_ca is not None:
            _load_client_ca(context, client_ca)
        else:  # Go verifies against the system's roots when no client CA is given
            context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        context.verify_mode = ssl.CERT_REQUIRED if require else ssl.CERT_OPTIONAL
    elif ask:
        _accept_unverified(context, settings.client_auth, require=require)
    return context


def _pem(settings: TLSSettings, name: str, *, required: bool = True) -> tuple[str, bytes] | None:
    """(where it came from, PEM bytes) of ``name`` inline or of ``name_file``."""
    inline, path = settings.raw.get(name) or "", settings.file(f"{name}_file")
    if inline and path is not None:
        raise TLSConfigError(f"tls_server_config: set {name} or {name}_file, not both")
    if path is not None:
        try:
            return f"{name}_file {path}", path.read_bytes()
        except OSError as exc:
            raise TLSConfigError(f"tls_server_config.{name}_file: cannot read {path}: "
                                 f"{exc.strerror or exc}") from exc
    if inline:
        return f"inline {name}", str(inline).encode()
    if required:
        raise TLSConfigError(f"tls_server_config: missing one of {name} or {name}_file")
    return None


def _load_key_pair(context: ssl.SSLContext, cert: tuple[str, bytes] | None,
                   key: tuple[str, bytes] | None) -> None:
    assert cert is not None and key is not None  # _pem raised otherwise
    try:
        with _private_file(cert[1]) as cert_path, _private_file(key[1]) as key_path:
            context.load_cert_chain(cert_path, key_path)
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(f"tls_server_config: cannot load {cert[0]} with {key[0]}: "
                             f"{exc}") from exc


@contextlib.contextmanager
def _private_file(data: bytes) -> Iterator[str]:
    """A path with ``data`` for ``load_cert_chain``, which reads only files.

    On Linux an anonymous memory file, so an inline key never touches a disk; elsewhere a file
    in a private temporary directory, removed at once.
    """
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("web-config-pem", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "pem"
        path.write_bytes(data)
        path.chmod(0o600)
        yield str(path)


def _client_auth(settings: TLSSettings, *, has_ca: bool) -> tuple[bool, bool, bool]:
    if settings.client_auth not in CLIENT_AUTH:
        raise TLSConfigError(f"tls_server_config.client_auth_type: invalid ClientAuth: "
                             f"{settings.client_auth} (use one of "
                             f"{', '.join(k for k in CLIENT_AUTH if k)})")
    ask, require, verify = CLIENT_AUTH[settings.client_auth]
    if has_ca and not ask:
        raise TLSConfigError("tls_server_config: client CA's have been configured without a "
                             "Client Auth Policy: set client_auth_type, e.g. to "
                             "RequireAndVerifyClientCert")
    if settings.allowed_sans is not None and not require:
        raise TLSConfigError("tls_server_config.client_allowed_sans requires client_auth_type "
                             "to be one of RequireAnyClientCert or RequireAndVerifyClientCert")
    return ask, require, verify


def _load_client_ca(context: ssl.SSLContext, client_ca: tuple[str, bytes]) -> None:
    try:
        context.load_verify_locations(cadata=client_ca[1].decode("ascii", "replace"))
    except (ssl.SSLError, ValueError) as exc:
        raise TLSConfigError(f"tls_server_config: {client_ca[0]} holds no usable PEM "
                             f"certificate: {exc}") from exc


def _set_ciphers(context: ssl.SSLContext, settings: TLSSettings, *, http2: bool) -> None:
    if settings.prefer_server:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    if not settings.ciphers:
        return
    if (http2 and settings.min_version < ssl.TLSVersion.TLSv1_3
            and not HTTP2_CIPHERS.intersection(settings.ciphers)):
        raise TLSConfigError(
            "http_server_config.http2: TLSConfig.CipherSuites is missing an HTTP/2-required "
            "AES_128_GCM_SHA256 cipher (need at least one of "
            f"{' or '.join(sorted(HTTP2_CIPHERS))} in tls_server_config.cipher_suites), or set "
            "http2: false")
    names = [n for n in (CIPHERS[c] for c in settings.ciphers) if n is not None]
    if not names:
        raise TLSConfigError("tls_server_config.cipher_suites lists only TLS 1.3 suites, which "
                             "are not configurable: add TLS 1.2 suites or set min_version: "
                             "TLS13")
    try:
        context.set_ciphers(":".join(names))
    except ssl.SSLError as exc:
        raise TLSConfigError(f"tls_server_config.cipher_suites: this OpenSSL "
                             f"({ssl.OPENSSL_VERSION}) supports none of them: {exc}") from exc


def _set_curves(context: ssl.SSLContext, curves: tuple[str, ...]) -> None:
    if not curves:
        return
    from exporter.security import openssl

    groups = [CURVES[c] for c in curves]
    if openssl.set_groups(context, groups):
        return
    if len(groups) == 1:  # Python's ssl can set exactly one curve by itself
        context.set_ecdh_curve({"P-256": "prime256v1", "P-384": "secp384r1",
                                "P-521": "secp521r1"}.get(groups[0], groups[0]))
        return
    raise TLSConfigError("tls_server_config.curve_preferences: this Python cannot set more "
                         "than one curve (OpenSSL's groups list is not reachable); list one")


def _accept_unverified(context: ssl.SSLContext, name: str, *, require: bool) -> None:
    from exporter.security import openssl

    if not openssl.accept_any_client_certificate(context, require=require):
        raise TLSConfigError(f"tls_server_config.client_auth_type {name}: this Python cannot "
                             "accept a client certificate without verifying it; use "
                             "RequireAndVerifyClientCert with client_ca_file")
