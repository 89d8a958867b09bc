"""OAuth 2.0 client credentials: token endpoint, bearer tokens on the webhook, no secret logged."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from exporter.cli.flags import parse_settings
from exporter.security.assertion import AssertionRefused, AssertionVerifier
from exporter.security.oauth import ResourceOwner, TokenIssuer
from tests.helpers import Exporter, event, labels

Start = Callable[..., Awaitable[Exporter]]
# A secret of 32 bytes or more, as RFC 7518 asks of an HS256 key (PyJWT warns below that).
CLIENT = ("clevertap", "s3cr3t+/:pw-0123456789abcdefghij")
OAUTH = ("--oauth-client-id", CLIENT[0], "--oauth-client-secret", CLIENT[1])
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def request_token(exp: Exporter, data: Any, headers: dict[str, str] | None = None,
                        ) -> tuple[int, dict[str, Any], dict[str, str]]:
    resp = await exp.client.post("/oauth/token", data=data, headers=headers or {})
    return resp.status, await resp.json(), dict(resp.headers)


def b64url(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


# --- the token itself -------------------------------------------------------------------------

def test_token_is_an_hs256_jwt_that_verifies_until_it_expires() -> None:
    issuer = TokenIssuer("ct", "secret", ttl_seconds=600)
    token = issuer.issue(now=1_000_000)
    header, claims, _ = token.split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {"alg": "HS256", "typ": "JWT"}
    body = json.loads(base64.urlsafe_b64decode(claims + "=="))
    assert (body["sub"], body["iat"], body["exp"]) == ("ct", 1_000_000, 1_000_600)
    assert issuer.verify(token, now=1_000_000)
    assert issuer.verify(token, now=1_000_599)
    assert not issuer.verify(token, now=1_000_600)  # expiry honoured
    assert not issuer.verify(token, now=999_000)  # issued in the future: not from this clock


def test_tokens_survive_a_restart_and_die_with_the_secret() -> None:
    token = TokenIssuer("ct", "secret", 600).issue()
    # A new process derives the same key from the same secret: the token stays valid.
    assert TokenIssuer("ct", "secret", 600).verify(token)
    assert not TokenIssuer("ct", "rotated", 600).verify(token)
    assert not TokenIssuer("other-client", "secret", 600).verify(token)
    # An explicit signing key keeps tokens valid across a secret rotation.
    keyed = TokenIssuer("ct", "secret", 600, signing_key="k" * 32).issue()
    assert TokenIssuer("ct", "rotated", 600, signing_key="k" * 32).verify(keyed)
    assert not TokenIssuer("ct", "secret", 600).verify(keyed)


def test_forged_and_malformed_tokens_are_refused() -> None:
    issuer = TokenIssuer("ct", "secret", 600)
    token = issuer.issue()
    header, claims, signature = token.split(".")
    longer = b64url({"iss": "clevertap-export-exporter", "aud": "clevertap-export-exporter/"
                     "webhook", "sub": "ct", "iat": 0, "exp": 2**40})
    for forged in (
        f"{header}.{longer}.{signature}",  # claims changed, signature kept
        f"{b64url({'alg': 'none', 'typ': 'JWT'})}.{claims}.",  # the "alg: none" trick
        f"{header}.{claims}.{signature[:-2]}",
        f"{header}.{claims}",
        "", "....", "not-a-token", token + "é", token.replace(".", "", 1),
    ):
        assert not issuer.verify(forged), forged


# --- the endpoint -----------------------------------------------------------------------------

async def test_basic_header_grant_then_bearer_webhook(start_exporter: Start) -> None:
    exp = await start_exporter(*OAUTH, "--oauth-token-ttl", "15m")
    status, body, headers = await request_token(exp, {"grant_type": "client_credentials"},
                                                basic(*CLIENT))
    assert status == 200
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert headers["Cache-Control"] == "no-store"
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert await exp.post(event(1), headers=bearer) == (200, {"status": "accepted"})
    # Without or with a wrong token the webhook stays shut.
    assert (await exp.post(event(2)))[0] == 401
    assert (await exp.post(event(2), headers={"Authorization": "Bearer x.y.z"}))[0] == 401
    resp = await exp.client.post("/webhook", data=b"{}")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_client_credentials_by_form_fields(start_exporter: Start) -> None:
    exp = await start_exporter(*OAUTH)
    status, body, _ = await request_token(exp, {"grant_type": "client_credentials",
                                                "client_id": CLIENT[0],
                                                "client_secret": CLIENT[1]})
    assert status == 200 and body["expires_in"] == 3600  # default TTL: 1h
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert (await exp.post(event(1), headers=bearer))[0] == 200


@pytest.mark.parametrize("body", ["form", "json"])
@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_form_or_json_body_with_basic_or_body_credentials(start_exporter: Start,
                                                                body: str, method: str) -> None:
    """CleverTap does not document its token request: every common shape is granted."""
    exp = await start_exporter(*OAUTH)
    params = {"grant_type": "client_credentials"}
    headers: dict[str, str] = {}
    if method == "client_secret_post":
        params |= {"client_id": CLIENT[0], "client_secret": CLIENT[1]}
    else:
        headers |= basic(*CLIENT)
    data: Any = params if body == "form" else json.dumps(params)
    if body == "json":
        headers |= JSON
    status, answer, _ = await request_token(exp, data, headers)
    assert status == 200, answer
    bearer = {"Authorization": f"Bearer {answer['access_token']}"}
    assert (await exp.post(event(1), headers=bearer))[0] == 200


async def test_basic_header_with_form_encoded_credentials(start_exporter: Start) -> None:
    """RFC 6749 2.3.1 form-encodes id and secret before Base64; both spellings work."""
    exp = await start_exporter(*OAUTH)
    encoded = basic(quote_plus(CLIENT[0]), quote_plus(CLIENT[1]))
    assert (await request_token(exp, "grant_type=client_credentials",
                                {**encoded, **FORM}))[0] == 200


@pytest.mark.parametrize(("data", "headers", "status", "error"), [
    ({"grant_type": "client_credentials"}, basic(CLIENT[0], "wrong"), 401, "invalid_client"),
    ({"grant_type": "client_credentials"}, basic("someone", CLIENT[1]), 401, "invalid_client"),
    ({"grant_type": "client_credentials"}, {"Authorization": "Basic !!!"}, 401,
     "invalid_client"),
    ({"grant_type": "client_credentials"}, {}, 401, "invalid_client"),
    ({"grant_type": "client_credentials", "client_id": CLIENT[0]}, {}, 400, "invalid_request"),
    ({"grant_type": "password"}, basic(*CLIENT), 400, "unsupported_grant_type"),
    ({}, basic(*CLIENT), 400, "invalid_request"),
    ("grant_type=client_credentials&grant_type=client_credentials", {**basic(*CLIENT), **FORM},
     400, "invalid_request"),
    ({"grant_type": "client_credentials", "client_id": CLIENT[0], "client_secret": CLIENT[1]},
     basic(*CLIENT), 400, "invalid_request"),  # two authentication methods at once
    (json.dumps(["grant_type", "client_credentials"]), {**basic(*CLIENT), **JSON}, 400,
     "invalid_request"),
    ('{"grant_type": "client_credentials", "grant_type": "client_credentials"}',
     {**basic(*CLIENT), **JSON}, 400, "invalid_request"),
    (json.dumps({"grant_type": "client_credentials", "client_id": CLIENT[0],
                 "client_secret": 12345}), JSON, 400, "invalid_request"),
    ("{not json", {**basic(*CLIENT), **JSON}, 400, "invalid_request"),
    ("grant_type=client_credentials", {**basic(*CLIENT), "Content-Type": "text/plain"}, 400,
     "invalid_request"),
    (json.dumps({"grant_type": "client_credentials"}), JSON, 401, "invalid_client"),
    (b"grant_type=client_credentials&client_id=\xff\xfe&client_secret=x", FORM, 400,
     "invalid_request"),
    (b"grant_type=client_credentials", {**basic(*CLIENT), "Content-Type":
     "application/x-www-form-urlencoded; charset=no-such-charset"}, 400, "invalid_request"),
])
async def test_refusals_follow_rfc_6749(start_exporter: Start, data: Any,
                                        headers: dict[str, str], status: int,
                                        error: str) -> None:
    exp = await start_exporter(*OAUTH)
    got_status, body, got_headers = await request_token(exp, data, headers)
    assert (got_status, body["error"]) == (status, error)
    assert body["error_description"]
    assert "access_token" not in body
    if status == 401:
        assert got_headers["WWW-Authenticate"].startswith("Basic")
    m = await exp.metrics()
    assert m["clevertap_export_oauth_token_requests_total"][labels(outcome=error)] == 1
    assert m["clevertap_export_oauth_token_requests_total"][labels(outcome="granted")] == 0


async def test_grants_are_counted(start_exporter: Start) -> None:
    exp = await start_exporter(*OAUTH)
    for _ in range(3):
        assert (await request_token(exp, {"grant_type": "client_credentials"},
                                    basic(*CLIENT)))[0] == 200
    assert (await exp.client.get("/oauth/token")).status == 405
    m = await exp.metrics()
    assert m["clevertap_export_oauth_token_requests_total"][labels(outcome="granted")] == 3


async def test_token_outlives_a_restart_and_expires(start_exporter: Start,
                                                    tmp_path: Path) -> None:
    first = await start_exporter(*OAUTH, "--oauth-token-ttl", "2s")
    _, body, _ = await request_token(first, {"grant_type": "client_credentials"},
                                     basic(*CLIENT))
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    await first.client.close()
    again = await start_exporter(*OAUTH, "--oauth-token-ttl", "2s")
    assert (await again.post(event(1), headers=bearer))[0] == 200
    await asyncio.sleep(2.1)
    status, answer = await again.post(event(2), headers=bearer)
    assert (status, answer["error"]) == (
        401, "access token expired: request a new one from POST /oauth/token")
    # A token that is not ours gets the general message, not "expired".
    status, answer = await again.post(event(3), headers={"Authorization": "Bearer x.y.z"})
    assert status == 401 and "expired" not in answer["error"]


async def test_oauth_and_static_token_together(start_exporter: Start) -> None:
    exp = await start_exporter(*OAUTH, "--auth-token", "static")
    assert (await exp.post(event(1), headers={"Authorization": "Bearer static"}))[0] == 200
    _, body, _ = await request_token(exp, {"grant_type": "client_credentials"}, basic(*CLIENT))
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert (await exp.post(event(2), headers=bearer))[0] == 200


async def test_no_secret_or_token_in_the_log(start_exporter: Start,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    exp = await start_exporter(*OAUTH, "--access-log")
    wrong = "Wr0ng-Guess-123"
    await request_token(exp, {"grant_type": "client_credentials"}, basic(CLIENT[0], wrong))
    await request_token(exp, {"grant_type": "client_credentials", "client_id": CLIENT[0],
                              "client_secret": wrong})
    _, body, _ = await request_token(exp, {"grant_type": "client_credentials"}, basic(*CLIENT))
    token = body["access_token"]
    await exp.post(event(1), headers={"Authorization": f"Bearer {token}"})
    await exp.post(event(2), headers={"Authorization": f"Bearer {token}x"})
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 3  # two token requests, one webhook
    text = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (CLIENT[1], wrong, token, token.split(".")[2]):
        assert secret not in text


# --- "OAuth with JWT": client authentication by a client_secret_jwt assertion (RFC 7523) -------

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def claims(**overrides: Any) -> dict[str, Any]:
    """An assertion's claims as a client makes them; each ``jti`` new."""
    return {"iss": CLIENT[0], "sub": CLIENT[0], "aud": "https://exporter.example/oauth/token",
            "exp": int(time.time()) + 300, "jti": secrets.token_hex(8), **overrides}


def assertion(secret: str = CLIENT[1], **overrides: Any) -> str:
    claims_ = claims(**overrides)
    signing_input = b64url({"alg": "HS256", "typ": "JWT"}) + "." + b64url(claims_)
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


async def test_client_secret_jwt_assertion(start_exporter: Start) -> None:
    exp = await start_exporter(*OAUTH)
    form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE}
    status, body, _ = await request_token(exp, {**form, "client_assertion": assertion()})
    assert status == 200
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert (await exp.post(event(1), headers=bearer))[0] == 200
    # A list audience naming the token URL is fine too.
    good = assertion(aud=["other", "http://10.0.0.1:9877/oauth/token"])
    assert (await request_token(exp, {**form, "client_assertion": good}))[0] == 200


@pytest.mark.parametrize(("jwt", "extra", "status", "error"), [
    (assertion("wrong-secret"), {}, 401, "invalid_client"),
    (assertion(exp=int(time.time()) - 1), {}, 401, "invalid_client"),
    (assertion(aud="https://elsewhere.example/token"), {}, 401, "invalid_client"),
    (assertion(iss="someone"), {}, 401, "invalid_client"),
    (assertion(), {"client_assertion_type": "urn:example:saml"}, 400, "invalid_request"),
    (assertion(), {"client_secret": CLIENT[1]}, 400, "invalid_request"),
])
async def test_bad_client_assertions(start_exporter: Start, jwt: str, extra: dict[str, str],
                                     status: int, error: str) -> None:
    exp = await start_exporter(*OAUTH)
    form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": jwt, **extra}
    got, body, _ = await request_token(exp, form)
    assert (got, body["error"]) == (status, error)


def test_oauth_flags(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-file\n")
    s = parse_settings(["--oauth-client-id", "ct", "--oauth-token-ttl", "90m"], env={
        "EXPORTER_OAUTH_CLIENT_SECRET_FILE": str(secret)})
    auth = s.auth
    assert (auth.oauth_client_id, auth.oauth_client_secret, auth.oauth_token_ttl) == (
        "ct", "from-file", 5400)
    assert not s.webhook_open
    env = {"EXPORTER_OAUTH_CLIENT_ID": "ct", "EXPORTER_OAUTH_CLIENT_SECRET": "s",
           "EXPORTER_OAUTH_SIGNING_KEY": "k"}
    assert parse_settings([], env=env).auth.oauth_signing_key == "k"


@pytest.mark.parametrize(("args", "message"), [
    (["--oauth-client-id", "ct"], "needs --oauth-client-secret or --oauth-client-public-key"),
    (["--oauth-client-secret", "s"], "need --oauth-client-id"),
    (["--oauth-signing-key", "k"], "need --oauth-client-id"),
    (["--oauth-client-id", "ct", "--oauth-client-secret", "s", "--oauth-token-ttl", "0"],
     "positive"),
])
def test_bad_oauth_flags(args: list[str], message: str, capsys: pytest.CaptureFixture[str],
                         ) -> None:
    with pytest.raises(SystemExit):
        parse_settings(args, env={})
    assert message in capsys.readouterr().err


# --- "OAuth with JWT" by CleverTap's key pair: private_key_jwt (RFC 7523), RS256/RS384/RS512 ---

SIGNING_KEY = "k" * 32
HASHES = {"RS256": hashes.SHA256(), "RS384": hashes.SHA384(), "RS512": hashes.SHA512()}


@pytest.fixture(scope="module")
def key_pair() -> rsa.RSAPrivateKey:
    """The key pair CleverTap would generate; it keeps the private key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def rs_assertion(private_key: rsa.RSAPrivateKey, alg: str = "RS256", **overrides: Any) -> str:
    """A client assertion signed as CleverTap would, with the private key itself (not PyJWT)."""
    signing_input = b64url({"alg": alg, "typ": "JWT"}) + "." + b64url(claims(**overrides))
    signature = private_key.sign(signing_input.encode(), padding.PKCS1v15(), HASHES[alg])
    return signing_input + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


def public_pem(private_key: rsa.RSAPrivateKey) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture
def key_file(tmp_path: Path, key_pair: rsa.RSAPrivateKey) -> Path:
    """CleverTap's public key as the user pastes it into a file."""
    path = tmp_path / "clevertap.pub"
    path.write_bytes(public_pem(key_pair))
    return path


def key_flags(key_file: Path) -> tuple[str, ...]:
    """A client known by its public key alone: no secret, so the tokens need a signing key."""
    return ("--oauth-client-id", CLIENT[0], "--oauth-client-public-key", str(key_file),
            "--oauth-signing-key", SIGNING_KEY)


def assertion_form(jwt_: str) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": jwt_}


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512"])
async def test_private_key_jwt_assertion(start_exporter: Start, key_pair: rsa.RSAPrivateKey,
                                         key_file: Path, alg: str) -> None:
    exp = await start_exporter(*key_flags(key_file))
    status, body, _ = await request_token(exp, assertion_form(rs_assertion(key_pair, alg)))
    assert status == 200, body
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert (await exp.post(event(1), headers=bearer))[0] == 200
    m = await exp.metrics()
    assert m["clevertap_export_oauth_token_requests_total"][labels(outcome="granted")] == 1


async def test_assertion_as_bearer_client_authentication(start_exporter: Start,
                                                         key_pair: rsa.RSAPrivateKey,
                                                         key_file: Path) -> None:
    """CleverTap's "Bearer" client authentication type: the assertion in the header."""
    exp = await start_exporter(*key_flags(key_file))
    header = {"Authorization": f"Bearer {rs_assertion(key_pair)}"}
    status, body, _ = await request_token(exp, {"grant_type": "client_credentials"}, header)
    assert status == 200, body
    # The same in the form as well is two methods at once.
    both = assertion_form(rs_assertion(key_pair))
    header = {"Authorization": f"Bearer {rs_assertion(key_pair)}"}
    assert (await request_token(exp, both, header))[1]["error"] == "invalid_request"


async def test_secret_as_bearer_client_authentication(start_exporter: Start) -> None:
    """The other reading of "Bearer": Basic's Base64 of client_id:client_secret."""
    exp = await start_exporter(*OAUTH)
    value = base64.b64encode(f"{CLIENT[0]}:{CLIENT[1]}".encode()).decode()
    header = {"Authorization": f"Bearer {value}"}
    assert (await request_token(exp, {"grant_type": "client_credentials"}, header))[0] == 200
    wrong = base64.b64encode(f"{CLIENT[0]}:wrong".encode()).decode()
    for bad in (wrong, "!!!"):
        status, body, _ = await request_token(exp, {"grant_type": "client_credentials"},
                                              {"Authorization": f"Bearer {bad}"})
        assert (status, body["error"]) == (401, "invalid_client")


def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def alg_confusion(private_key: rsa.RSAPrivateKey) -> str:
    """HS256 "signed" with the public key's PEM as the secret: the classic key confusion."""
    signing_input = b64url({"alg": "HS256", "typ": "JWT"}) + "." + b64url(claims())
    signature = hmac.new(public_pem(private_key), signing_input.encode(), hashlib.sha256)
    return signing_input + "." + base64.urlsafe_b64encode(signature.digest()).rstrip(
        b"=").decode()


@pytest.mark.parametrize(("make", "reason"), [
    (lambda k: rs_assertion(k, exp=int(time.time()) - 1), "expired"),
    (lambda k: rs_assertion(k, aud="https://elsewhere.example/token"), "aud must be"),
    (lambda k: rs_assertion(other_key()), "signature does not verify"),
    (lambda k: rs_assertion(k, iss="someone"), "iss and sub"),
    (lambda k: rs_assertion(k, jti=None), "needs a jti"),
    (lambda k: rs_assertion(k, nbf=int(time.time()) + 3600), "not valid yet"),
    (alg_confusion, "alg 'HS256' not accepted"),
    (lambda k: b64url({"alg": "none"}) + "." + b64url(claims()) + ".", "alg 'none'"),
    (lambda k: "not.a.jwt", "not a JWT"),
], ids=["expired", "wrong-audience", "wrong-key", "wrong-issuer", "no-jti", "not-yet",
        "alg-confusion", "alg-none", "garbage"])
async def test_bad_private_key_assertions(start_exporter: Start, key_pair: rsa.RSAPrivateKey,
                                          key_file: Path, make: Callable[[rsa.RSAPrivateKey],
                                                                         str],
                                          reason: str) -> None:
    exp = await start_exporter(*key_flags(key_file))
    status, body, headers = await request_token(exp, assertion_form(make(key_pair)))
    assert (status, body["error"]) == (401, "invalid_client")
    assert reason in body["error_description"]
    assert headers["WWW-Authenticate"].startswith("Basic")
    m = await exp.metrics()
    assert m["clevertap_export_oauth_token_requests_total"][labels(outcome="invalid_client")] == 1
    assert m["clevertap_export_oauth_token_requests_total"][labels(outcome="granted")] == 0


async def test_replayed_assertion_is_refused(start_exporter: Start, key_pair: rsa.RSAPrivateKey,
                                            key_file: Path) -> None:
    exp = await start_exporter(*key_flags(key_file))
    once = rs_assertion(key_pair)
    assert (await request_token(exp, assertion_form(once)))[0] == 200
    status, body, _ = await request_token(exp, assertion_form(once))
    assert (status, body["error"]) == (401, "invalid_client")
    assert "already used" in body["error_description"]
    # The jti, not the bytes: re-signed with another algorithm it is still a replay.
    jti = json.loads(base64.urlsafe_b64decode(once.split(".")[1] + "=="))["jti"]
    again = rs_assertion(key_pair, "RS512", jti=jti)
    assert "already used" in (await request_token(exp, assertion_form(again)))[1][
        "error_description"]
    m = await exp.metrics()
    counts = m["clevertap_export_oauth_token_requests_total"]
    assert (counts[labels(outcome="granted")], counts[labels(outcome="invalid_client")]) == (1, 2)


def test_jti_is_remembered_until_its_exp_and_then_forgotten(key_pair: rsa.RSAPrivateKey) -> None:
    verifier = AssertionVerifier(CLIENT[0], "/oauth/token", None, key_pair.public_key())
    now = time.time()
    first = rs_assertion(key_pair, exp=int(now) + 10, jti="a")
    verifier.check(first, now)
    with pytest.raises(AssertionRefused, match="already used"):
        verifier.check(first, now + 9)
    assert verifier.remembered == 1
    # Past its exp the assertion is refused as expired, and its jti is no longer held.
    with pytest.raises(AssertionRefused, match="expired"):
        verifier.check(first, now + 11)
    verifier.check(rs_assertion(key_pair, exp=int(now) + 100, jti="b"), now + 11)
    assert verifier.remembered == 1


async def test_client_secret_and_key_pair_together(start_exporter: Start,
                                                   key_pair: rsa.RSAPrivateKey,
                                                   key_file: Path) -> None:
    exp = await start_exporter(*OAUTH, "--oauth-client-public-key", str(key_file))
    for form in (assertion_form(rs_assertion(key_pair)), assertion_form(assertion()),
                 {"grant_type": "client_credentials", "client_id": CLIENT[0],
                  "client_secret": CLIENT[1]}):
        assert (await request_token(exp, form))[0] == 200, form


async def test_key_pair_client_has_no_secret(start_exporter: Start, key_file: Path) -> None:
    exp = await start_exporter(*key_flags(key_file))
    for guess in ("", SIGNING_KEY):
        status, body, _ = await request_token(exp, {"grant_type": "client_credentials"},
                                              basic(CLIENT[0], guess))
        assert (status, body["error"]) == (401, "invalid_client")
    # An HS256 assertion has no secret to be checked against.
    status, body, _ = await request_token(exp, assertion_form(assertion(SIGNING_KEY)))
    assert (status, body["error"]) == (401, "invalid_client")


@pytest.mark.parametrize("form", ["pkcs1", "spki", "base64"])
def test_public_key_forms(tmp_path: Path, key_pair: rsa.RSAPrivateKey, form: str) -> None:
    public = key_pair.public_key()
    text = {
        "pkcs1": public.public_bytes(serialization.Encoding.PEM,
                                     serialization.PublicFormat.PKCS1),
        "spki": public_pem(key_pair),
        # What a page shows to copy: the DER's Base64, wrapped, without the PEM lines.
        "base64": b"\n".join(public_pem(key_pair).splitlines()[1:-1]),
    }[form]
    path = tmp_path / "key"
    path.write_bytes(text)
    s = parse_settings([*key_flags(path)], env={})
    loaded = s.auth.oauth_client_public_key
    assert loaded is not None and loaded.public_numbers() == public.public_numbers()


@pytest.mark.parametrize(("content", "message"), [
    (b"hello", "not a PEM or Base64 DER public key"),
    (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "not a PEM"),
    ("ec", "not an RSA key"),
    ("rsa1024", "1024-bit RSA key"),
    (None, "cannot read the key"),
])
def test_unusable_public_keys_stop_the_start(tmp_path: Path, content: bytes | str | None,
                                             message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "key"
    if content == "ec":
        content = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    elif content == "rsa1024":
        # The weak key under test, refused at start-up.
        content = public_pem(rsa.generate_private_key(public_exponent=65537,
                                                      key_size=1024))  # noqa: S505
    if isinstance(content, bytes):
        path.write_bytes(content)
    with pytest.raises(SystemExit):
        parse_settings([*key_flags(path)], env={})
    assert message in capsys.readouterr().err


# --- the password grant and refresh tokens (RFC 6749 sections 4.3 and 6) ----------------------

OWNER = ("exporter-user", "0wn3r-pa55")
PASSWORD_FLAGS = (*OAUTH, "--oauth-username", OWNER[0], "--oauth-password", OWNER[1])


def password_form(username: str = OWNER[0], password: str = OWNER[1]) -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": password}


async def test_password_grant_then_refresh(start_exporter: Start) -> None:
    exp = await start_exporter(*PASSWORD_FLAGS, "--oauth-token-ttl", "10m")
    status, body, headers = await request_token(exp, password_form(), basic(*CLIENT))
    assert status == 200, body
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 600)
    assert headers["Cache-Control"] == "no-store"
    assert (await exp.post(event(1), headers={
        "Authorization": f"Bearer {body['access_token']}"}))[0] == 200
    # The refresh token is no access token.
    status, answer = await exp.post(event(2), headers={
        "Authorization": f"Bearer {body['refresh_token']}"})
    assert status == 401 and "expired" not in answer["error"]
    status, fresh, _ = await request_token(exp, {"grant_type": "refresh_token",
                                                 "refresh_token": body["refresh_token"]},
                                           basic(*CLIENT))
    assert status == 200, fresh
    assert fresh["refresh_token"] and fresh["access_token"] != body["access_token"]
    assert (await exp.post(event(3), headers={
        "Authorization": f"Bearer {fresh['access_token']}"}))[0] == 200
    # The new refresh token works in turn (client_secret_post this time).
    status, _, _ = await request_token(exp, {"grant_type": "refresh_token",
                                             "refresh_token": fresh["refresh_token"],
                                             "client_id": CLIENT[0], "client_secret": CLIENT[1]})
    assert status == 200
    m = await exp.metrics()
    assert m["clevertap_export_oauth_token_requests_total"][labels(outcome="granted")] == 3


async def test_refused_password_and_refresh_grants(start_exporter: Start) -> None:
    exp = await start_exporter(*PASSWORD_FLAGS)
    _, body, _ = await request_token(exp, password_form(), basic(*CLIENT))
    refresh, access = body["refresh_token"], body["access_token"]
    cases: list[tuple[dict[str, str], dict[str, str], int, str]] = [
        (password_form(password="wrong"), basic(*CLIENT), 400, "invalid_grant"),
        (password_form(username="someone"), basic(*CLIENT), 400, "invalid_grant"),
        (password_form(), basic(CLIENT[0], "wrong"), 401, "invalid_client"),
        (password_form(), {}, 401, "invalid_client"),
        ({"grant_type": "password", "username": OWNER[0]}, basic(*CLIENT), 400,
         "invalid_request"),
        ({"grant_type": "refresh_token", "refresh_token": access}, basic(*CLIENT), 400,
         "invalid_grant"),
        ({"grant_type": "refresh_token", "refresh_token": refresh + "x"}, basic(*CLIENT), 400,
         "invalid_grant"),
        ({"grant_type": "refresh_token", "refresh_token": refresh}, {}, 401, "invalid_client"),
        ({"grant_type": "refresh_token"}, basic(*CLIENT), 400, "invalid_request"),
        ({"grant_type": "authorization_code", "code": "x"}, basic(*CLIENT), 400,
         "unsupported_grant_type"),
    ]
    for data, headers, status, error in cases:
        got, answer, _ = await request_token(exp, data, headers)
        assert (got, answer["error"]) == (status, error), (data, answer)
        assert "access_token" not in answer
    m = await exp.metrics()
    counts = m["clevertap_export_oauth_token_requests_total"]
    assert counts[labels(outcome="invalid_grant")] == 4
    assert counts[labels(outcome="granted")] == 1


async def test_refresh_tokens_die_with_the_password(start_exporter: Start) -> None:
    first = await start_exporter(*PASSWORD_FLAGS)
    _, body, _ = await request_token(first, password_form(), basic(*CLIENT))
    await first.client.close()
    # Same password after a restart: still good. A new password revokes it.
    again = await start_exporter(*PASSWORD_FLAGS)
    form = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    assert (await request_token(again, form, basic(*CLIENT)))[0] == 200
    await again.client.close()
    changed = await start_exporter(*OAUTH, "--oauth-username", OWNER[0],
                                   "--oauth-password", "rotated")
    status, answer, _ = await request_token(changed, form, basic(*CLIENT))
    assert (status, answer["error"]) == (400, "invalid_grant")


def test_refresh_token_expiry() -> None:
    issuer = TokenIssuer("ct", "secret", 600)
    owner = ResourceOwner(*OWNER)
    token = issuer.issue_refresh(owner, 3600, now=1_000_000)
    assert issuer.refresh_problem(token, owner, now=1_003_599) is None
    assert issuer.refresh_problem(token, owner, now=1_003_600) == "expired"
    assert issuer.refresh_problem(token, ResourceOwner(OWNER[0], "other"),
                                  now=1_000_000) == "invalid"
    assert TokenIssuer("other", "secret", 600).refresh_problem(token, owner,
                                                               now=1_000_000) == "invalid"
    assert issuer.problem(token, now=1_000_000) == "invalid"  # not an access token


def test_password_flags(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-file\n")
    s = parse_settings([*OAUTH, "--oauth-username", "u", "--oauth-refresh-token-ttl", "2d"],
                       env={"EXPORTER_OAUTH_PASSWORD_FILE": str(secret)})
    assert (s.auth.oauth_username, s.auth.oauth_password, s.auth.oauth_refresh_token_ttl) == (
        "u", "from-file", 172_800)
    assert parse_settings(list(OAUTH), env={}).auth.oauth_refresh_token_ttl == 30 * 86400


@pytest.mark.parametrize(("args", "message"), [
    ([*OAUTH, "--oauth-username", "u"], "--oauth-username and --oauth-password go together"),
    (["--oauth-username", "u", "--oauth-password", "p"], "need --oauth-client-id"),
    (["--oauth-client-id", "ct", "--oauth-client-public-key", "{key}"],
     "--oauth-signing-key signs the access tokens"),
    (["--oauth-client-public-key", "{key}"], "need --oauth-client-id"),
])
def test_bad_grant_flags(args: list[str], message: str, key_file: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_settings([a.format(key=key_file) for a in args], env={})
    assert message in capsys.readouterr().err
