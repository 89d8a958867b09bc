"""OAuth 2.0 client credentials: token endpoint, bearer tokens on the webhook, no secret logged."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest

from exporter.cli.flags import parse_settings
from exporter.security.oauth import TokenIssuer
from tests.helpers import Exporter, event, labels

Start = Callable[..., Awaitable[Exporter]]
CLIENT = ("clevertap", "s3cr3t+/:pw")
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


def assertion(secret: str = CLIENT[1], **overrides: Any) -> str:
    claims = {"iss": CLIENT[0], "sub": CLIENT[0], "aud": "https://exporter.example/oauth/token",
              "exp": int(time.time()) + 300, "jti": "1", **overrides}
    signing_input = b64url({"alg": "HS256", "typ": "JWT"}) + "." + b64url(claims)
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
    (["--oauth-client-id", "ct"], "go together"),
    (["--oauth-client-secret", "s"], "go together"),
    (["--oauth-signing-key", "k"], "needs --oauth-client-id"),
    (["--oauth-client-id", "ct", "--oauth-client-secret", "s", "--oauth-token-ttl", "0"],
     "positive"),
])
def test_bad_oauth_flags(args: list[str], message: str, capsys: pytest.CaptureFixture[str],
                         ) -> None:
    with pytest.raises(SystemExit):
        parse_settings(args, env={})
    assert message in capsys.readouterr().err
