"""JWT client assertions at the token endpoint (RFC 7523 section 2.2, OpenID Connect section 9).

Two kinds, told apart by the assertion's ``alg``: ``client_secret_jwt`` (HS256 under the client
secret) and ``private_key_jwt`` (RS256, RS384 or RS512 under the private key CleverTap keeps; the
exporter holds its public key). Signatures are verified by PyJWT with the one key and the
algorithms of that kind, never with an algorithm the token alone chose. Claims are checked here
against the caller's clock: ``iss`` and ``sub`` are the client id, ``aud`` names the token URL,
``exp`` is in the future, and ``jti`` was not seen before its ``exp``.

The ``jti`` memory is per process: replicas behind one token URL do not share it.

PyJWT and cryptography (whose serialization loads bcrypt) are imported when first needed, so a
server without OAuth does not load them.
"""

from __future__ import annotations

import base64
import binascii
import heapq
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
RSA_ALGORITHMS: Final = ("RS256", "RS384", "RS512")
#: NIST's floor for RSA signatures; a shorter key is refused at start-up.
MIN_RSA_BITS: Final = 2048
#: Tolerated clock difference for ``nbf`` between CleverTap and the exporter.
LEEWAY_SECONDS: Final = 60
#: Unexpired ``jti`` values remembered at most. Only assertions whose signature verified are
#: remembered, so only the key holder can fill it; when full, new assertions wait for old ones
#: to expire rather than a remembered one being forgotten early.
MAX_REMEMBERED: Final = 10_000
#: PyJWT's options that check the signature only, the claims being checked against our clock.
SIGNATURE_ONLY: Final[Any] = {"verify_signature": True, "verify_exp": False, "verify_nbf": False,
                              "verify_iat": False, "verify_aud": False, "verify_iss": False,
                              "verify_sub": False, "verify_jti": False}


class AssertionRefused(Exception):
    """Why an assertion does not authenticate the client: the ``error_description``."""


def load_public_key(path: Path | None) -> RSAPublicKey | None:
    """The RSA public key in ``path``: PEM (``BEGIN PUBLIC KEY`` or ``BEGIN RSA PUBLIC KEY``), or
    the bare Base64 of its DER, as a key is often shown to be copied. ``ValueError`` says why
    it cannot be read or used."""
    if path is None:
        return None
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from cryptography.hazmat.primitives.serialization import (
        load_der_public_key,
        load_pem_public_key,
    )

    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the key: {exc}") from exc
    try:
        if text.startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode())
        else:
            key = load_der_public_key(base64.b64decode("".join(text.split()), validate=True))
    except (ValueError, binascii.Error, TypeError) as exc:
        raise ValueError("not a PEM or Base64 DER public key") from exc
    if not isinstance(key, RSAPublicKey):
        raise ValueError("not an RSA key: RS256, RS384 and RS512 need one")
    if key.key_size < MIN_RSA_BITS:
        raise ValueError(f"a {key.key_size}-bit RSA key; at least {MIN_RSA_BITS} bits")
    return key


class AssertionVerifier:
    """Checks one client's assertions: with its secret (HS256), its public key (RS*), or both."""

    def __init__(self, client_id: str, token_path: str, secret: str | None,
                 public_key: RSAPublicKey | None) -> None:
        self.client_id = client_id
        self._token_path = token_path
        self._secret = secret.encode() if secret is not None else None
        self._public_key = public_key
        self._seen: dict[str, int] = {}  # jti -> exp
        self._expiries: list[tuple[int, str]] = []  # a heap of (exp, jti), to forget in order

    @property
    def expected(self) -> str:
        """How a valid assertion is signed here, for the refusal's description."""
        ways = []
        if self._public_key is not None:
            ways.append("signed RS256, RS384 or RS512 with the key pair's private key")
        if self._secret is not None:
            ways.append("signed HS256 with the client secret")
        return " or ".join(ways)

    @property
    def remembered(self) -> int:
        """How many ``jti`` values are held (each until its assertion's ``exp``)."""
        return len(self._seen)

    def check(self, assertion: str, now: float) -> None:
        """Return when ``assertion`` authenticates the client; else raise ``AssertionRefused``."""
        claims = self._verified(assertion)
        if claims.get("iss") != self.client_id or claims.get("sub") != self.client_id:
            raise AssertionRefused("client assertion iss and sub must be the client id")
        audiences = claims.get("aud")
        if isinstance(audiences, str):
            audiences = [audiences]
        # The URL the client sees depends on proxies: any audience ending in the path will do.
        if not (isinstance(audiences, list) and any(
                isinstance(a, str) and a.rstrip("/").endswith(self._token_path)
                for a in audiences)):
            raise AssertionRefused(f"client assertion aud must be the token URL (ending in "
                                  f"{self._token_path})")
        exp = claims.get("exp")
        if not isinstance(exp, int) or isinstance(exp, bool):
            raise AssertionRefused("client assertion needs a numeric exp")
        if now >= exp:
            raise AssertionRefused("client assertion expired")
        nbf = claims.get("nbf")
        if nbf is not None and not (isinstance(nbf, int) and nbf <= now + LEEWAY_SECONDS):
            raise AssertionRefused("client assertion not valid yet (nbf)")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise AssertionRefused("client assertion needs a jti")
        self._remember(jti, exp, now)

    def _verified(self, assertion: str) -> Mapping[str, Any]:
        """The claims of an assertion whose signature verifies under the key its kind uses."""
        import jwt

        try:
            alg = jwt.get_unverified_header(assertion).get("alg")
        except jwt.PyJWTError as exc:
            raise AssertionRefused("client assertion is not a JWT") from exc
        key: RSAPublicKey | bytes
        if alg in RSA_ALGORITHMS and self._public_key is not None:
            key, algorithms = self._public_key, list(RSA_ALGORITHMS)
        elif alg == "HS256" and self._secret is not None:
            key, algorithms = self._secret, ["HS256"]
        else:
            raise AssertionRefused(f"client assertion alg {alg!r} not accepted: "
                                  f"{self.expected}")
        try:
            # PyJWT warns (once, as Python does) of a client secret shorter than 32 bytes.
            claims = jwt.decode(assertion, key, algorithms=algorithms, options=SIGNATURE_ONLY)
        except jwt.InvalidSignatureError as exc:
            raise AssertionRefused("client assertion signature does not verify: "
                                  + self.expected) from exc
        except jwt.PyJWTError as exc:
            raise AssertionRefused("client assertion is not a valid JWT") from exc
        return claims

    def _remember(self, jti: str, exp: int, now: float) -> None:
        """Refuse a ``jti`` seen before, and remember this one until its ``exp``."""
        while self._expiries and self._expiries[0][0] <= now:
            self._seen.pop(heapq.heappop(self._expiries)[1], None)
        if jti in self._seen:
            raise AssertionRefused("client assertion already used (its jti was seen before)")
        if len(self._seen) >= MAX_REMEMBERED:
            raise AssertionRefused("too many unexpired client assertions remembered; send "
                                  "assertions with a shorter exp")
        self._seen[jti] = exp
        heapq.heappush(self._expiries, (exp, jti))
