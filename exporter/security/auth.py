"""Webhook credentials: a shared token (Bearer or a custom header), HTTP Basic, OAuth tokens.

Secrets are compared with ``hmac.compare_digest`` so the time taken does not reveal how much of a
guess was right. When several methods are configured, any one of them admits the request.
Bearer tokens minted by the exporter's OAuth token endpoint are checked by a verifier
(``exporter.security.oauth.TokenIssuer.problem``) handed in by the app factory, so this module
does not depend on how tokens are made.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

BASIC_CHALLENGE: Final = 'Basic realm="clevertap-export-exporter", charset="UTF-8"'
#: What a bearer verifier answers for a token it minted that has expired, and for any other.
EXPIRED: Final = "expired"
INVALID: Final = "invalid"


@dataclass(frozen=True)
class WebhookAuth:
    token: str | None = None
    token_header: str | None = None
    basic_user: str | None = None
    basic_password: str | None = None
    # None for a valid token, else EXPIRED or INVALID
    bearer_verifier: Callable[[str], str | None] | None = None

    @property
    def enabled(self) -> bool:
        return (self.token is not None or self.basic_user is not None
                or self.bearer_verifier is not None)

    @property
    def challenge(self) -> str:
        """The ``WWW-Authenticate`` value for a refused request."""
        if self.basic_user is not None:
            return BASIC_CHALLENGE
        return 'Bearer realm="clevertap-export-exporter"'

    def check(self, headers: Mapping[str, str]) -> str | None:
        """Return None when ``headers`` carry valid credentials, else why they do not."""
        if not self.enabled:
            return None
        authorization = headers.get("Authorization", "")
        scheme, _, value = authorization.partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if self._token_matches(headers, scheme, value):
            return None
        bearer = (self.bearer_verifier(value) if self.bearer_verifier is not None
                  and scheme == "bearer" else INVALID)
        if bearer is None:
            return None
        if bearer == EXPIRED:
            return "access token expired: request a new one from POST /oauth/token"
        if self.basic_user is not None and self.basic_password is not None and scheme == "basic":
            user, password = decode_basic(value) or ("", "")
            # Evaluate both comparisons so a wrong user costs the same time as a wrong password.
            ok_user = same_secret(user, self.basic_user)
            ok_password = same_secret(password, self.basic_password)
            if ok_user and ok_password:
                return None
            return "invalid Basic credentials"
        if not authorization and not self._custom_present(headers):
            return "missing credentials: send " + self._expected()
        return "invalid credentials: send " + self._expected()

    def _token_matches(self, headers: Mapping[str, str], scheme: str, value: str) -> bool:
        """The shared token, as a Bearer token or in the custom header."""
        if self.token is None:
            return False
        if scheme == "bearer" and same_secret(value, self.token):
            return True
        custom = headers.get(self.token_header) if self.token_header is not None else None
        return custom is not None and same_secret(custom.strip(), self.token)

    def _custom_present(self, headers: Mapping[str, str]) -> bool:
        return self.token_header is not None and self.token_header in headers

    def _expected(self) -> str:
        ways = []
        if self.token is not None:
            ways.append("'Authorization: Bearer <token>'")
            if self.token_header is not None:
                ways.append(f"the token in header '{self.token_header}'")
        if self.bearer_verifier is not None:
            ways.append("'Authorization: Bearer <access token from POST /oauth/token>'")
        if self.basic_user is not None:
            ways.append("HTTP Basic authorization")
        return " or ".join(ways)


#: Secrets copied from an example rather than made (compared lower-case, letters and digits
#: only, so ``change-me``, ``CHANGE_ME`` and ``<changeme>`` are one): refused at start-up.
PLACEHOLDERS: Final = frozenset({
    "changeme", "changeit", "changethis", "replaceme", "setme", "fixme", "todo", "placeholder",
    "secret", "password", "passwd", "token", "yoursecret", "yourtoken", "yourpassword",
    "example", "xxx", "xxxx", "xxxxxx",
})


def is_placeholder(secret: str | None) -> bool:
    """Whether ``secret`` is a known placeholder, not a secret anyone made."""
    return secret is not None and "".join(c for c in secret.lower() if c.isalnum()) in PLACEHOLDERS


def same_secret(given: str, expected: str) -> bool:
    """Compare a presented secret with the configured one in constant time."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def decode_basic(value: str) -> tuple[str, str] | None:
    """User and password from the credentials of an HTTP Basic header; None when malformed."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None
