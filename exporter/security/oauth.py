"""OAuth 2.0 token endpoint (RFC 6749) for CleverTap's "OAuth 2.0" webhook mode.

The exporter is its own authorization server: CleverTap posts to ``POST /oauth/token`` and gets a
short-lived bearer token, which it then sends with each webhook. Three grants:

- ``client_credentials`` (RFC 6749 section 4.4): the client authenticates and gets an access token;
- ``password`` (section 4.3): the client authenticates and sends the configured username and
  password; it gets an access token and a refresh token;
- ``refresh_token`` (section 6): the client authenticates and trades a refresh token for a new
  access token and refresh token.

The client authenticates with its id and secret (HTTP Basic or the form, section 2.3.1), or with a
JWT assertion (``exporter.security.assertion``: HS256 under the secret, or RS256/RS384/RS512 under
CleverTap's key pair) in the form (RFC 7523) or as ``Authorization: Bearer``.

Access and refresh tokens are HS256 JSON Web Tokens (RFC 7519), signed and checked with PyJWT, so
they are stateless: nothing is stored, a restart does not invalidate live tokens, and replicas
sharing the signing key accept each other's tokens. The signing key is ``--oauth-signing-key``
when given, else derived from the client secret, so rotating the secret also revokes every token
issued with the old one. Refresh tokens are signed with a key derived from that key and the
resource owner's password, so changing the password revokes them too.

Refusals are logged by reason only: neither a secret nor a token is ever written to the log.
PyJWT is imported when the first token is made or checked (see ``exporter.security.assertion``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import unquote_plus

from aiohttp import web
from multidict import MultiDict

from exporter.security.assertion import (
    ASSERTION_TYPE,
    SIGNATURE_ONLY,
    AssertionRefused,
    AssertionVerifier,
)
from exporter.security.auth import BASIC_CHALLENGE, EXPIRED, INVALID, decode_basic, same_secret

log = logging.getLogger(__name__)

_Form = MultiDict[str]  # the request's parameters, from a form or a JSON object
FORM_TYPE: Final = "application/x-www-form-urlencoded"
JSON_TYPE: Final = "application/json"

TOKEN_PATH: Final = "/oauth/token"  # noqa: S105 (a URL path, not a password)
CLIENT_CREDENTIALS: Final = "client_credentials"
PASSWORD: Final = "password"  # noqa: S105 (a grant type's name)
REFRESH_TOKEN: Final = "refresh_token"  # noqa: S105 (a grant type's name)
ISSUER: Final = "clevertap-export-exporter"
# Tokens are minted for these audiences only, so a token from another HS256 issuer that happens
# to share the key is still refused, and a refresh token is never an access token.
AUDIENCE: Final = "clevertap-export-exporter/webhook"
REFRESH_AUDIENCE: Final = "clevertap-export-exporter/oauth/refresh"
# Tolerated clock difference for "iat" between replicas.
LEEWAY_SECONDS: Final = 60
_HEADER: Final = {"alg": "HS256", "typ": "JWT"}
_KEY_CONTEXT: Final = b"clevertap-export-exporter oauth access token signing key v1"
_REFRESH_CONTEXT: Final = b"clevertap-export-exporter oauth refresh token signing key v1\0"
# RFC 6749 section 5.2 error codes this endpoint returns, and the metric outcomes besides them.
OUTCOMES: Final = ("granted", "invalid_request", "invalid_client", "invalid_grant",
                   "unsupported_grant_type", "forbidden", "too_large", "rate_limited")


@dataclass(frozen=True)
class ResourceOwner:
    """The username and password the password grant takes (``--oauth-username``)."""

    username: str
    password: str = field(repr=False)

    def matches(self, username: str, password: str) -> bool:
        """Constant-time check; both compared whatever the first gives."""
        ok_user = same_secret(username, self.username)
        ok_password = same_secret(password, self.password)
        return ok_user and ok_password


class TokenIssuer:
    """Mints and verifies the exporter's signed access and refresh tokens for one OAuth client."""

    def __init__(self, client_id: str, client_secret: str | None, ttl_seconds: int,
                 signing_key: str | None = None) -> None:
        self.client_id = client_id
        self._client_secret = client_secret
        self.ttl_seconds = ttl_seconds
        if signing_key is not None:
            self._key = signing_key.encode()
        elif client_secret is not None:
            self._key = hmac.new(client_secret.encode(), _KEY_CONTEXT, hashlib.sha256).digest()
        else:
            raise ValueError("without a client secret, tokens need a signing key")

    def client_matches(self, client_id: str, client_secret: str) -> bool:
        """Constant-time check of a client's credentials; both compared whatever the first gives."""
        ok_id = same_secret(client_id, self.client_id)
        ok_secret = same_secret(client_secret, self._client_secret or "")
        return ok_id and ok_secret and self._client_secret is not None

    def issue(self, now: float | None = None) -> str:
        """A new access token valid for ``ttl_seconds`` from ``now``."""
        return _mint(self._key, AUDIENCE, self.client_id, self.ttl_seconds, now)

    def verify(self, token: str, now: float | None = None) -> bool:
        """True for a token this issuer minted (same key and client) that has not expired."""
        return self.problem(token, now) is None

    def problem(self, token: str, now: float | None = None) -> str | None:
        """None for a valid token; ``EXPIRED`` for one of ours past its expiry; else ``INVALID``."""
        return _problem(token, self._key, AUDIENCE, self.client_id, now)

    def issue_refresh(self, owner: ResourceOwner, ttl_seconds: int,
                      now: float | None = None) -> str:
        """A new refresh token for ``owner``, valid for ``ttl_seconds`` from ``now``."""
        return _mint(self._refresh_key(owner), REFRESH_AUDIENCE, owner.username, ttl_seconds,
                     now, client_id=self.client_id)

    def refresh_problem(self, token: str, owner: ResourceOwner,
                        now: float | None = None) -> str | None:
        """As ``problem``, for a refresh token minted for ``owner`` and this client."""
        return _problem(token, self._refresh_key(owner), REFRESH_AUDIENCE, owner.username, now,
                        client_id=self.client_id)

    def _refresh_key(self, owner: ResourceOwner) -> bytes:
        return hmac.new(self._key, _REFRESH_CONTEXT + owner.password.encode(),
                        hashlib.sha256).digest()


def _mint(key: bytes, audience: str, subject: str, ttl_seconds: int, now: float | None,
          **extra: str) -> str:
    import jwt

    issued = int(time.time() if now is None else now)
    claims = {"iss": ISSUER, "aud": audience, "sub": subject, "iat": issued,
              "exp": issued + ttl_seconds, "jti": secrets.token_urlsafe(12), **extra}
    return jwt.encode(claims, key, algorithm="HS256", headers={"typ": "JWT"})


def _problem(token: str, key: bytes, audience: str, subject: str, now: float | None,
             **extra: str) -> str | None:
    """None for a valid token; ``EXPIRED`` for one of ours past its expiry; else ``INVALID``."""
    import jwt

    try:
        decoded = jwt.api_jwt.decode_complete(token, key, algorithms=["HS256"],
                                              options=SIGNATURE_ONLY)
    except (jwt.PyJWTError, ValueError):
        return INVALID
    claims = decoded["payload"]
    current = time.time() if now is None else now
    iat = claims.get("iat")
    if not (decoded["header"] == _HEADER and claims.get("iss") == ISSUER
            and claims.get("aud") == audience and claims.get("sub") == subject
            and all(claims.get(name) == value for name, value in extra.items())
            and isinstance(iat, int) and iat <= current + LEEWAY_SECONDS):
        return INVALID
    exp = claims.get("exp")
    unexpired = isinstance(exp, int) and not isinstance(exp, bool) and current < exp
    return None if unexpired else EXPIRED


class TokenRequestError(Exception):
    """A refused token request: the RFC 6749 error code, its HTTP status and a description."""

    def __init__(self, code: str, status: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.status = status
        self.description = description


def _two_methods() -> TokenRequestError:
    return TokenRequestError("invalid_request", 400,
                             "use one client authentication method, not two")


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
            raise _two_methods()
        decoded = decode_basic(value.strip())
        if decoded is None:
            raise TokenRequestError("invalid_client", 401, "malformed Basic authorization")
        return decoded
    if not in_form:
        raise TokenRequestError("invalid_client", 401, "client authentication required: HTTP "
                                "Basic, client_id and client_secret form fields, or a client "
                                "assertion")
    return _single(form, "client_id"), _single(form, "client_secret")


def _single(form: _Form, name: str) -> str:
    values = form.getall(name, [])
    if len(values) != 1 or not isinstance(values[0], str):
        raise TokenRequestError("invalid_request", 400, f"send '{name}' exactly once")
    return values[0]


class TokenEndpoint:
    """``POST /oauth/token``: an authenticated client in, a bearer token out (RFC 6749 5.1, 5.2).

    ``owner`` enables the password and refresh token grants.
    """

    def __init__(self, issuer: TokenIssuer, assertions: AssertionVerifier,
                 owner: ResourceOwner | None = None, refresh_ttl_seconds: int = 30 * 86400,
                 ) -> None:
        self.issuer = issuer
        self.assertions = assertions
        self.owner = owner
        self.refresh_ttl_seconds = refresh_ttl_seconds

    @property
    def grant_types(self) -> tuple[str, ...]:
        extra = (PASSWORD, REFRESH_TOKEN) if self.owner is not None else ()
        return (CLIENT_CREDENTIALS, *extra)

    async def respond(self, request: web.Request) -> tuple[web.Response, str]:
        """The token response, and the outcome to count: granted or the RFC 6749 error code."""
        try:
            body = await self._grant(request)
        except TokenRequestError as exc:
            log.info("refused token request from %s: %s (%s)", request.remote, exc.code,
                     exc.description)
            response = web.json_response(
                {"error": exc.code, "error_description": exc.description}, status=exc.status,
                headers=_NO_STORE)
            if exc.status == 401:
                response.headers["WWW-Authenticate"] = BASIC_CHALLENGE
            return response, exc.code
        return web.json_response(body, headers=_NO_STORE), "granted"

    async def _grant(self, request: web.Request) -> dict[str, Any]:
        form = await parameters(request)
        grant_type = _single(form, "grant_type")
        self._authenticate(request.headers, form)
        now = time.time()
        if grant_type not in self.grant_types:
            raise TokenRequestError("unsupported_grant_type", 400, "grant_type must be "
                                    + " or ".join(self.grant_types))
        if grant_type == CLIENT_CREDENTIALS:
            return self._tokens(None, now)
        assert self.owner is not None  # the password and refresh grants exist only with it
        if grant_type == PASSWORD:
            if not self.owner.matches(_single(form, "username"), _single(form, "password")):
                raise TokenRequestError("invalid_grant", 400, "wrong username or password")
        else:
            problem = self.issuer.refresh_problem(_single(form, REFRESH_TOKEN), self.owner, now)
            if problem == EXPIRED:
                raise TokenRequestError("invalid_grant", 400, "refresh token expired: ask "
                                        "again with grant_type=password")
            if problem is not None:
                raise TokenRequestError("invalid_grant", 400, "refresh token not valid")
        return self._tokens(self.owner, now)

    def _tokens(self, owner: ResourceOwner | None, now: float) -> dict[str, Any]:
        """The success body (RFC 6749 section 5.1); with a refresh token for ``owner``."""
        body: dict[str, Any] = {"access_token": self.issuer.issue(now), "token_type": "Bearer",
                                "expires_in": self.issuer.ttl_seconds}
        if owner is not None:
            body["refresh_token"] = self.issuer.issue_refresh(owner, self.refresh_ttl_seconds,
                                                              now)
        return body

    def _authenticate(self, headers: Mapping[str, str], form: _Form) -> None:
        """Return when the request authenticates the client; else raise ``TokenRequestError``."""
        scheme, _, value = headers.get("Authorization", "").partition(" ")
        in_assertion = "client_assertion" in form or "client_assertion_type" in form
        if scheme.lower() == "bearer":
            self._bearer(value.strip(), form, in_assertion)
        elif in_assertion:
            if "Authorization" in headers or "client_secret" in form:
                raise _two_methods()
            if _single(form, "client_assertion_type") != ASSERTION_TYPE:
                raise TokenRequestError("invalid_request", 400,
                                        f"client_assertion_type must be {ASSERTION_TYPE}")
            self._check_assertion(_single(form, "client_assertion"))
        else:
            self._check_secret(*client_credentials(headers, form))

    def _bearer(self, value: str, form: _Form, in_assertion: bool) -> None:
        """``Authorization: Bearer`` at the token endpoint, CleverTap's "Bearer" client
        authentication type: a client assertion, or the Base64 ``client_id:client_secret``
        that Basic would carry (an assumption: CleverTap does not say which)."""
        if in_assertion or "client_secret" in form:
            raise _two_methods()
        if value.count(".") == 2:
            self._check_assertion(value)
            return
        decoded = decode_basic(value)
        if decoded is None:
            raise TokenRequestError("invalid_client", 401, "malformed Bearer client "
                                    "authorization: send a client assertion or the Base64 of "
                                    "client_id:client_secret")
        self._check_secret(*decoded)

    def _check_secret(self, client_id: str, client_secret: str) -> None:
        if not (self.issuer.client_matches(client_id, client_secret)
                or self.issuer.client_matches(unquote_plus(client_id),
                                              unquote_plus(client_secret))):
            raise TokenRequestError("invalid_client", 401, "unknown client or wrong secret")

    def _check_assertion(self, assertion: str) -> None:
        try:
            self.assertions.check(assertion, time.time())
        except AssertionRefused as exc:
            raise TokenRequestError("invalid_client", 401, str(exc)) from exc


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
