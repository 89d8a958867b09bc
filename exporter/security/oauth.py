"""OAuth 2.0 client credentials (RFC 6749 section 4.4) for CleverTap's "OAuth 2.0" webhook mode.

The exporter is its own authorization server: CleverTap posts its client id and secret (or a
``client_secret_jwt`` assertion signed with the secret) to ``POST /oauth/token`` and gets a
short-lived bearer token, which it then sends with each webhook.

Access tokens are HS256 JSON Web Tokens (RFC 7519) so that they are stateless: the expiry, the
client id and an HMAC-SHA256 signature are all in the token. Nothing is stored, a restart does
not invalidate live tokens, and several replicas sharing the signing key accept each other's
tokens. The signing key is ``--oauth-signing-key`` when given, else derived from the client
secret, so rotating the secret also revokes every token issued with the old one.

Refusals are logged by reason only: neither a secret nor a token is ever written to the log.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote_plus

from aiohttp import web
from multidict import MultiDict

from exporter.security.auth import BASIC_CHALLENGE, EXPIRED, INVALID, decode_basic, same_secret

log = logging.getLogger(__name__)

_Form = MultiDict[str]  # the request's parameters, from a form or a JSON object
FORM_TYPE: Final = "application/x-www-form-urlencoded"
JSON_TYPE: Final = "application/json"

TOKEN_PATH: Final = "/oauth/token"  # noqa: S105 (a URL path, not a password)
GRANT_TYPE: Final = "client_credentials"
ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ISSUER: Final = "clevertap-export-exporter"
# Tokens are minted for this audience only, so a token from another HS256 issuer that happens to
# share the key is still refused.
AUDIENCE: Final = "clevertap-export-exporter/webhook"
# Tolerated clock difference for "iat" between replicas.
LEEWAY_SECONDS: Final = 60
_HEADER: Final = {"alg": "HS256", "typ": "JWT"}
_KEY_CONTEXT: Final = b"clevertap-export-exporter oauth access token signing key v1"
# RFC 6749 section 5.2 error codes this endpoint returns, and the metric outcomes besides them.
OUTCOMES: Final = ("granted", "invalid_request", "invalid_client", "unsupported_grant_type",
                   "forbidden", "too_large", "rate_limited")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenIssuer:
    """Mints and verifies the exporter's signed access tokens for one OAuth client."""

    def __init__(self, client_id: str, client_secret: str, ttl_seconds: int,
                 signing_key: str | None = None) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.ttl_seconds = ttl_seconds
        if signing_key is not None:
            self._key = signing_key.encode()
        else:
            self._key = hmac.new(client_secret.encode(), _KEY_CONTEXT, hashlib.sha256).digest()

    def client_matches(self, client_id: str, client_secret: str) -> bool:
        """Constant-time check of a client's credentials; both compared whatever the first gives."""
        ok_id = same_secret(client_id, self.client_id)
        ok_secret = same_secret(client_secret, self._client_secret)
        return ok_id and ok_secret

    def issue(self, now: float | None = None) -> str:
        """A new access token valid for ``ttl_seconds`` from ``now``."""
        issued = int(time.time() if now is None else now)
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": self.client_id, "iat": issued,
                  "exp": issued + self.ttl_seconds, "jti": secrets.token_urlsafe(12)}
        signing_input = (_b64url(json.dumps(_HEADER, separators=(",", ":")).encode()) + "."
                         + _b64url(json.dumps(claims, separators=(",", ":")).encode()))
        return signing_input + "." + _b64url(self._sign(signing_input))

    def verify(self, token: str, now: float | None = None) -> bool:
        """True for a token this issuer minted (same key and client) that has not expired."""
        return self.problem(token, now) is None

    def problem(self, token: str, now: float | None = None) -> str | None:
        """None for a valid token; ``EXPIRED`` for one of ours past its expiry; else ``INVALID``."""
        decoded = _decode_hs256(token, self._key)
        if decoded is None or decoded[0] != _HEADER:
            return INVALID
        claims = decoded[1]
        current = time.time() if now is None else now
        iat = claims.get("iat")
        if not (claims.get("iss") == ISSUER and claims.get("aud") == AUDIENCE
                and claims.get("sub") == self.client_id
                and isinstance(iat, int) and iat <= current + LEEWAY_SECONDS):
            return INVALID
        return None if _unexpired(claims, current) else EXPIRED

    def assertion_matches(self, assertion: str, now: float | None = None) -> bool:
        """Client authentication by ``client_secret_jwt`` (RFC 7523 section 2.2, OpenID Connect).

        The client signs a short JWT with its secret as the HS256 key: ``iss`` and ``sub`` are
        its client id, ``aud`` names the token endpoint, ``exp`` is in the future. The endpoint
        URL as the client sees it depends on proxies, so any audience ending in the token path
        is accepted.
        """
        decoded = _decode_hs256(assertion, self._client_secret.encode())
        if decoded is None or decoded[0].get("alg") != "HS256":
            return False
        claims = decoded[1]
        audiences = claims.get("aud")
        if isinstance(audiences, str):
            audiences = [audiences]
        return (
            claims.get("iss") == self.client_id
            and claims.get("sub") == self.client_id
            and isinstance(audiences, list)
            and any(isinstance(a, str) and a.rstrip("/").endswith(TOKEN_PATH) for a in audiences)
            and _unexpired(claims, time.time() if now is None else now)
        )

    def _sign(self, signing_input: str) -> bytes:
        return _hs256(self._key, signing_input)


def _hs256(key: bytes, signing_input: str) -> bytes:
    return hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()


def _decode_hs256(token: str, key: bytes) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Header and claims of a compact JWS signed with HMAC-SHA256 under ``key``, else None."""
    parts = token.split(".")
    if len(parts) != 3 or not token.isascii():
        return None
    header_b64, claims_b64, signature_b64 = parts
    try:
        signature = _b64url_decode(signature_b64)
    except (binascii.Error, ValueError):
        return None
    # Check the signature before parsing anything the sender chose.
    if not hmac.compare_digest(signature, _hs256(key, f"{header_b64}.{claims_b64}")):
        return None
    try:
        header = json.loads(_b64url_decode(header_b64))
        claims = json.loads(_b64url_decode(claims_b64))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return header, claims


def _unexpired(claims: Mapping[str, Any], now: float) -> bool:
    exp = claims.get("exp")
    return isinstance(exp, int) and not isinstance(exp, bool) and now < exp


class TokenRequestError(Exception):
    """A refused token request: the RFC 6749 error code, its HTTP status and a description."""

    def __init__(self, code: str, status: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.status = status
        self.description = description


def client_credentials(headers: Mapping[str, str],
                       form: _Form) -> tuple[str, str]:
    """The client id and secret from the Basic header or the form, per RFC 6749 section 2.3.1.

    A client must use exactly one method. In the header, id and secret are form-urlencoded
    before Base64 (section 2.3.1); many clients skip that step, so callers try both forms.
    """
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    in_form = "client_id" in form or "client_secret" in form
    if scheme.lower() == "basic":
        if in_form:
            raise TokenRequestError("invalid_request", 400,
                                    "use one client authentication method, not two")
        decoded = decode_basic(value.strip())
        if decoded is None:
            raise TokenRequestError("invalid_client", 401, "malformed Basic authorization")
        return decoded
    if not in_form:
        raise TokenRequestError("invalid_client", 401, "client authentication required: HTTP "
                                "Basic or client_id and client_secret form fields")
    return _single(form, "client_id"), _single(form, "client_secret")


def _single(form: _Form, name: str) -> str:
    values = form.getall(name, [])
    if len(values) != 1 or not isinstance(values[0], str):
        raise TokenRequestError("invalid_request", 400, f"send '{name}' exactly once")
    return values[0]


class TokenEndpoint:
    """``POST /oauth/token``: client credentials in, a bearer token out (RFC 6749 4.4, 5.1, 5.2)."""

    def __init__(self, issuer: TokenIssuer) -> None:
        self.issuer = issuer

    async def respond(self, request: web.Request) -> tuple[web.Response, str]:
        """The token response, and the outcome to count: granted or the RFC 6749 error code."""
        try:
            token = await self._grant(request)
        except TokenRequestError as exc:
            log.info("refused token request from %s: %s (%s)", request.remote, exc.code,
                     exc.description)
            response = web.json_response(
                {"error": exc.code, "error_description": exc.description}, status=exc.status,
                headers=_NO_STORE)
            if exc.status == 401:
                response.headers["WWW-Authenticate"] = BASIC_CHALLENGE
            return response, exc.code
        return web.json_response({"access_token": token, "token_type": "Bearer",
                                  "expires_in": self.issuer.ttl_seconds},
                                 headers=_NO_STORE), "granted"

    async def _grant(self, request: web.Request) -> str:
        form = await parameters(request)
        grant_types = form.getall("grant_type", [])
        if len(grant_types) != 1:
            raise TokenRequestError("invalid_request", 400, "send 'grant_type' exactly once")
        if "client_assertion_type" in form or "client_assertion" in form:
            self._check_assertion(request.headers, form)
        else:
            client_id, client_secret = client_credentials(request.headers, form)
            if not (self.issuer.client_matches(client_id, client_secret)
                    or self.issuer.client_matches(unquote_plus(client_id),
                                                  unquote_plus(client_secret))):
                raise TokenRequestError("invalid_client", 401, "unknown client or wrong secret")
        if grant_types[0] != GRANT_TYPE:
            raise TokenRequestError("unsupported_grant_type", 400,
                                    f"only grant_type={GRANT_TYPE} is supported")
        return self.issuer.issue()

    def _check_assertion(self, headers: Mapping[str, str], form: _Form) -> None:
        if "Authorization" in headers or "client_secret" in form:
            raise TokenRequestError("invalid_request", 400,
                                    "use one client authentication method, not two")
        if _single(form, "client_assertion_type") != ASSERTION_TYPE:
            raise TokenRequestError("invalid_request", 400,
                                    f"client_assertion_type must be {ASSERTION_TYPE}")
        if not self.issuer.assertion_matches(_single(form, "client_assertion")):
            raise TokenRequestError("invalid_client", 401, "client assertion not valid: sign "
                                    "it with the client secret (HS256), iss and sub the client "
                                    "id, aud the token URL, exp in the future")


class _Pairs(list[tuple[str, Any]]):
    """A JSON object's members in order, duplicates kept, so a repeated one can be refused."""


async def parameters(request: web.Request) -> _Form:
    """The token request's parameters, from a form (RFC 6749) or a JSON object.

    RFC 6749 asks for a form; CleverTap does not document which it sends, and several OAuth
    clients send JSON, so both are read, with the same rules: each value a string, and a
    parameter given twice is refused.
    """
    if request.content_type == FORM_TYPE:
        try:
            form = await request.post()
        except (ValueError, LookupError) as exc:  # undecodable bytes, unknown charset
            raise TokenRequestError("invalid_request", 400, "the form cannot be decoded") from exc
        return MultiDict((k, v) for k, v in form.items() if isinstance(v, str))
    if request.content_type == JSON_TYPE:
        try:
            pairs = json.loads(await request.read(), object_pairs_hook=_Pairs)
        except (ValueError, UnicodeDecodeError) as exc:
            raise TokenRequestError("invalid_request", 400,
                                    "the body is not valid JSON") from exc
        if not isinstance(pairs, _Pairs):
            raise TokenRequestError("invalid_request", 400, "send a JSON object")
        for name, value in pairs:
            if not isinstance(value, str):
                raise TokenRequestError("invalid_request", 400, f"'{name}' must be a string")
        return MultiDict(pairs)
    raise TokenRequestError("invalid_request", 400, f"send the parameters as {FORM_TYPE} "
                            f"or {JSON_TYPE}")


# RFC 6749 section 5.1: token responses must not be cached.
_NO_STORE: Final = {"Cache-Control": "no-store", "Pragma": "no-cache"}
