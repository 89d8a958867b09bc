"""``--web.config.file``: HTTPS with certificates made at test time, bcrypt basic_auth_users."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import bcrypt
import pytest
from aiohttp import web
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.cli.flags import parse_settings
from exporter.security.users import (
    BCRYPT_WAITING,
    BCRYPT_WORKERS,
    CACHE_SIZE,
    DUMMY_HASH,
    BasicAuthUsers,
)
from exporter.security.webconfig import WebConfigError, load_web_config
from exporter.web.app import create_app, create_metrics_app
from exporter.web.appkeys import RUNTIME
from tests.helpers import ROOT, ClientFactory, Exporter, event, free_port, labels, parse_metrics
from tests.pki import Pki, hashed, write_config

Start = Callable[..., Awaitable[Exporter]]
PASSWORD = "correct horse"


def client_context(pki: Pki, *, with_cert: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki.ca))
    if with_cert:
        context.load_cert_chain(pki.client_cert, pki.client_key)
    return context


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# --- a real HTTPS server on loopback ------------------------------------------------------------

Serve = Callable[..., Awaitable[str]]


@pytest.fixture
async def serve_https(tmp_path: Path) -> AsyncIterator[Serve]:
    """Serve the exporter with its web config on 127.0.0.1 the way ``cli.serve`` does."""
    runners: list[web.AppRunner] = []

    async def start(config: Path, *args: str) -> str:
        settings = parse_settings(["--state-path", str(tmp_path / "state.db"),
                                   "--web.config.file", str(config), *args], env={})
        assert settings.listen.web_config is not None
        runner = web.AppRunner(create_app(settings))
        await runner.setup()
        runners.append(runner)
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port,
                          ssl_context=settings.listen.web_config.ssl_context).start()
        return f"https://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def fetch(url: str, context: ssl.SSLContext, *, method: str = "GET",
                headers: dict[str, str] | None = None, data: bytes | None = None,
                ) -> tuple[int, str, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.request(
            method, url, ssl=context, headers=headers, data=data) as resp:
        return resp.status, await resp.text(), dict(resp.headers)


async def test_https_with_basic_auth_users(pki: Pki, tmp_path: Path, serve_https: Serve) -> None:
    config = write_config(tmp_path, f"""
tls_server_config:
  cert_file: {pki.server_cert}
  key_file: {pki.server_key}
basic_auth_users:
  prometheus: {hashed(PASSWORD, prefix="$2y$")}
  clevertap: {hashed("ct-pass")}
""")
    url = await serve_https(config)
    ctx = client_context(pki)
    status, _, headers = await fetch(f"{url}/metrics", ctx)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    assert (await fetch(f"{url}/metrics", ctx, headers=basic("prometheus", "wrong")))[0] == 401
    assert (await fetch(f"{url}/metrics", ctx, headers=basic("nobody", PASSWORD)))[0] == 401
    status, text, _ = await fetch(f"{url}/metrics", ctx, headers=basic("prometheus", PASSWORD))
    assert status == 200 and "clevertap_export_webhook_requests_total" in text
    # exporter-toolkit semantics: every endpoint needs a user, health checks and 404s included.
    assert (await fetch(f"{url}/healthz", ctx))[0] == 401
    assert (await fetch(f"{url}/no-such-page", ctx))[0] == 401
    assert (await fetch(f"{url}/healthz", ctx, headers=basic("clevertap", "ct-pass")))[0] == 200
    # The webhook takes a web config user too: CleverTap's "Basic Authorization" mode.
    body = b'{"Export Request Id": 1, "Partner": "S3", "Status": "Initiated"}'
    assert (await fetch(f"{url}/webhook", ctx, method="POST", data=body))[0] == 401
    status, text, _ = await fetch(f"{url}/webhook", ctx, method="POST", data=body,
                                  headers=basic("clevertap", "ct-pass"))
    assert status == 200 and json.loads(text) == {"status": "accepted"}


async def test_untrusted_or_plain_clients_get_nothing(pki: Pki, tmp_path: Path,
                                                      serve_https: Serve) -> None:
    config = write_config(tmp_path, f"tls_server_config:\n  cert_file: {pki.server_cert}\n"
                                    f"  key_file: {pki.server_key}\n")
    url = await serve_https(config)
    assert (await fetch(f"{url}/healthz", client_context(pki)))[0] == 200
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await fetch(f"{url}/healthz", ssl.create_default_context())  # self-signed CA unknown
    with pytest.raises(aiohttp.ClientError):
        await fetch(url.replace("https", "http") + "/healthz", ssl.create_default_context())


async def test_client_certificates_required(pki: Pki, tmp_path: Path,
                                            serve_https: Serve) -> None:
    config = write_config(tmp_path, f"""
tls_server_config:
  cert_file: {pki.server_cert}
  key_file: {pki.server_key}
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: {pki.ca}
  min_version: TLS13
""")
    url = await serve_https(config)
    assert (await fetch(f"{url}/healthz", client_context(pki, with_cert=True)))[0] == 200
    with pytest.raises(aiohttp.ClientError):
        await fetch(f"{url}/healthz", client_context(pki))


def test_the_process_serves_https(pki: Pki, tmp_path: Path) -> None:
    """The command line wires the web config's TLS context into every listener."""
    config = write_config(tmp_path, f"tls_server_config:\n  cert_file: {pki.server_cert}\n"
                                    f"  key_file: {pki.server_key}\n")
    port, metrics_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--host", "127.0.0.1", "--port", str(port),
         "--metrics-port", str(metrics_port), "--state-path", str(tmp_path / "state.db"),
         "--web.config.file", str(config)],
        cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        ctx = client_context(pki)
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"https://127.0.0.1:{metrics_port}/readyz",
                                            context=ctx, timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        req = urllib.request.Request(
            f"https://127.0.0.1:{port}/webhook", method="POST",
            data=b'{"Export Request Id": 1, "Partner": "S3", "Status": "Completed"}')
        with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
            assert r.status == 200
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert "listening on https://127.0.0.1" in err.decode()


# --- rate_limit -----------------------------------------------------------------------------------

async def test_rate_limited_webhooks_are_counted_from_zero(start_exporter: Start,
                                                          tmp_path: Path) -> None:
    # A bucket of two that refills once an hour: exactly two requests get through.
    config = write_config(tmp_path, "rate_limit:\n  interval: 1h\n  burst: 2\n")
    exp = await start_exporter("--web.config.file", str(config))
    resp = await exp.client.get("/metrics")
    family = next(f for f in text_string_to_metric_families(await resp.text())
                  if f.name == "clevertap_export_webhook_requests")
    assert "rate_limited" in family.documentation
    assert {s.labels["outcome"]: s.value for s in family.samples}["rate_limited"] == 0
    assert parse_metrics(await resp.text())["clevertap_export_oauth_token_requests_total"][
        labels(outcome="rate_limited")] == 0  # the token endpoint's, likewise
    assert (await exp.post(event(1)))[0] == 200
    status, answer = await exp.post(event(2))
    assert status == 429 and answer["status"] == "rate_limited"
    # /metrics is rate limited too: read the exporter's registry as a scrape would.
    m = parse_metrics(generate_latest(exp.app[RUNTIME].registry).decode())
    requests = m["clevertap_export_webhook_requests_total"]
    assert requests[labels(outcome="rate_limited")] == 1
    assert requests[labels(outcome="accepted")] == 1


# --- basic_auth_users without TLS, with the webhook's own credentials ---------------------------

async def test_users_alongside_webhook_credentials(start_exporter: Start, tmp_path: Path) -> None:
    config = write_config(tmp_path, f"basic_auth_users:\n  prom: {hashed(PASSWORD)}\n")
    exp = await start_exporter("--web.config.file", str(config), "--auth-token", "tok",
                               "--oauth-client-id", "ct", "--oauth-client-secret", "sec")
    # The webhook admits its own token or a web config user...
    assert (await exp.post(event(1), headers={"Authorization": "Bearer tok"}))[0] == 200
    assert (await exp.post(event(2), headers=basic("prom", PASSWORD)))[0] == 200
    status, answer = await exp.post(event(3), headers=basic("prom", "bad"))
    assert status == 401 and "web config user" in answer["error"]
    # ...the token endpoint authenticates its client itself...
    resp = await exp.client.post("/oauth/token", data={"grant_type": "client_credentials"},
                                 headers=basic("ct", "sec"))
    assert resp.status == 200
    # ...and everything else needs a web config user: the webhook's token is not enough.
    resp = await exp.client.get("/metrics", headers={"Authorization": "Bearer tok"})
    assert resp.status == 401
    assert (await exp.client.get("/metrics", headers=basic("prom", PASSWORD))).status == 200


async def test_separate_metrics_port_is_protected_too(aiohttp_client: ClientFactory,
                                                     tmp_path: Path) -> None:
    config = write_config(tmp_path, f"basic_auth_users:\n  prom: {hashed(PASSWORD)}\n")
    settings = parse_settings(["--state-path", str(tmp_path / "s.db"), "--metrics-port", "9999",
                               "--web.config.file", str(config)], env={})
    client = await aiohttp_client(create_metrics_app(create_app(settings, serve_metrics=False)))
    assert (await client.get("/healthz")).status == 401
    assert (await client.get("/healthz", headers=basic("prom", PASSWORD))).status == 200


@pytest.fixture
def bcrypt_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bytes]]:
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed_password: bytes) -> bool:
        calls.append(password)
        return real(password, hashed_password)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    yield calls


async def test_bcrypt_verdicts_are_cached(start_exporter: Start, tmp_path: Path,
                                          bcrypt_calls: list[bytes]) -> None:
    config = write_config(tmp_path, f"basic_auth_users:\n  prom: {hashed(PASSWORD)}\n")
    exp = await start_exporter("--web.config.file", str(config))
    for _ in range(5):
        assert (await exp.client.get("/healthz", headers=basic("prom", PASSWORD))).status == 200
        assert (await exp.client.get("/healthz", headers=basic("prom", "guess"))).status == 401
        assert (await exp.client.get("/healthz", headers=basic("who", PASSWORD))).status == 401
    assert len(bcrypt_calls) == 3  # one bcrypt per distinct (user, password), not per request
    # A password past bcrypt's 72-byte limit is refused, not truncated into a match.
    long = PASSWORD + "x" * 80
    assert (await exp.client.get("/healthz", headers=basic("prom", long))).status == 401


async def test_guesses_do_not_evict_a_verified_user(start_exporter: Start, tmp_path: Path,
                                                    bcrypt_calls: list[bytes]) -> None:
    """More distinct wrong guesses than the cache holds leave a verified scraper's verdict in
    place: it is served with no new bcrypt, so a guessing flood cannot make it wait behind the
    guesses' bcrypt checks (issue 23, item 8)."""
    config = write_config(tmp_path, f"basic_auth_users:\n  prom: {hashed(PASSWORD)}\n")
    exp = await start_exporter("--web.config.file", str(config))
    assert (await exp.client.get("/healthz", headers=basic("prom", PASSWORD))).status == 200
    guesses = CACHE_SIZE + 20
    for i in range(guesses):
        assert (await exp.client.get("/healthz", headers=basic(f"u{i}", "x"))).status == 401
    assert len(bcrypt_calls) == 1 + guesses
    assert (await exp.client.get("/healthz", headers=basic("prom", PASSWORD))).status == 200
    assert len(bcrypt_calls) == 1 + guesses  # still cached


# --- bad files are refused at start-up ----------------------------------------------------------

@pytest.mark.parametrize(("text", "message"), [
    ("tls_server_config: [1, 2]\n", "tls_server_config must be a mapping"),
    ("web_config:\n  burst: 1\n", "unsupported key(s) web_config"),
    ("rate_limit:\n  interval: fast\n", "rate_limit.interval: 'fast' is not a duration"),
    ("rate_limit:\n  interval: 1s\n  burst: -1\n", "rate_limit.burst"),
    ("basic_auth_users:\n  a: $2y$04$0123456789012345678901234567890123456789012345678901a\n"
     "  a: $2y$04$0123456789012345678901234567890123456789012345678901a\n",
     "key 'a' is given twice"),
    ("tls_server_config:\n  cert_file: a.crt\n  keyfile: a.key\n",
     "unsupported key(s) tls_server_config.keyfile"),
    ("tls_server_config:\n  cert_file: a.crt\n", "missing one of key or key_file"),
    ("tls_server_config:\n  min_version: TLS12\n", "needs cert_file and key_file"),
    ("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n",
     "cert_file: cannot read"),
    ("basic_auth_users:\n  alice: plaintext\n", "not a bcrypt hash"),
    ("basic_auth_users:\n  - alice\n", "basic_auth_users must be a mapping"),
    ("basic_auth_users: {\n", "not valid YAML"),
])
def test_invalid_files_are_rejected(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(WebConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_web_config(write_config(tmp_path, text))


@pytest.mark.parametrize(("tls", "message"), [
    ("  client_auth_type: RequireSomeClientCert\n", "invalid ClientAuth"),
    ("  client_allowed_sans: [a]\n  client_auth_type: VerifyClientCertIfGiven\n",
     "client_allowed_sans requires client_auth_type"),
    ("  client_ca_file: CA\n", "without a Client Auth Policy"),
    ("  min_version: TLS14\n", "min_version: unknown TLS version: TLS14"),
    ("  min_version: TLS10\n", "min_version: TLS10 cannot be honoured"),
    ("  max_version: TLS11\n", "max_version: TLS11 cannot be honoured"),
    ("  cert: inline\n", "set cert or cert_file, not both"),
    ("  min_version: TLS13\n  max_version: TLS12\n", "above max_version"),
    ("  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: KEY\n",
     "holds no usable PEM"),
])
def test_invalid_tls_settings_are_rejected(pki: Pki, tmp_path: Path, tls: str,
                                           message: str) -> None:
    text = (f"tls_server_config:\n  cert_file: {pki.server_cert}\n  key_file: {pki.server_key}\n"
            + tls.replace("CA", str(pki.ca)).replace("KEY", str(pki.server_key)))
    with pytest.raises(WebConfigError, match=message):
        load_web_config(write_config(tmp_path, text))


def test_relative_paths_and_empty_file(pki: Pki, tmp_path: Path) -> None:
    (tmp_path / "s.crt").write_bytes(pki.server_cert.read_bytes())
    (tmp_path / "s.key").write_bytes(pki.server_key.read_bytes())
    config = load_web_config(write_config(tmp_path, "tls_server_config:\n  cert_file: s.crt\n"
                                                    "  key_file: s.key\n"))
    assert config.ssl_context is not None
    assert config.ssl_context.minimum_version == ssl.TLSVersion.TLSv1_2  # exporter-toolkit's
    empty = load_web_config(write_config(tmp_path, ""))
    assert empty.ssl_context is None and not empty.basic_auth_users


def test_bad_file_stops_the_start_with_a_clear_error(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, "basic_auth_users:\n  alice: Pl41nText-Pw\n")
    with pytest.raises(SystemExit) as exc:
        parse_settings(["--web.config.file", str(config)], env={})
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--web.config.file" in err and "not a bcrypt hash" in err and "Pl41nText" not in err
    with pytest.raises(SystemExit):
        parse_settings([], env={"EXPORTER_WEB_CONFIG_FILE": str(tmp_path / "absent.yml")})
    assert "cannot read" in capsys.readouterr().err


# --- bcrypt must not become a denial of service -------------------------------------------------

def _users_of(exp: Exporter) -> BasicAuthUsers:
    users = exp.app[RUNTIME].users
    assert users is not None
    return users


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in 5 s")


async def test_guesses_cannot_starve_a_verified_user(start_exporter: Start,
                                                     tmp_path: Path) -> None:
    """A cost-14 hash (about a second a check) and a flood of guesses while Prometheus scrapes."""
    slow = bcrypt.hashpw(b"slow-password", bcrypt.gensalt(rounds=14)).decode()
    config = write_config(tmp_path, f"basic_auth_users:\n  prom: {hashed(PASSWORD)}\n"
                                    f"  slow: {slow}\n")
    exp = await start_exporter("--web.config.file", str(config))
    users = _users_of(exp)
    assert (await exp.client.get("/metrics", headers=basic("prom", PASSWORD))).status == 200

    def scrape(user: str, password: str) -> asyncio.Task[int]:
        async def status() -> int:
            return (await exp.client.get("/healthz", headers=basic(user, password))).status
        return asyncio.create_task(status())

    # An unknown user is checked against exporter-toolkit's fixed cost (10), not the highest
    # configured one: it finishes before a guess at the cost-14 user that started first.
    guess = scrape("slow", "guess-0")
    await _until(lambda: users.in_progress == 1)
    unknown = scrape("nobody", "guess")
    done, _ = await asyncio.wait({guess, unknown}, return_when=asyncio.FIRST_COMPLETED)
    assert done == {unknown} and unknown.result() == 401
    assert DUMMY_HASH.startswith(b"$2b$10$")
    # Fill every bcrypt worker and waiting place with distinct guesses...
    limit = BCRYPT_WORKERS + BCRYPT_WAITING
    flood = [scrape("slow", f"guess-{i}") for i in range(1, limit)]
    await _until(lambda: users.in_progress == limit)
    # ...then one more uncached check is refused at once, with a hint to retry...
    resp = await exp.client.get("/healthz", headers=basic("nobody", "another guess"))
    assert resp.status == 503 and resp.headers["Retry-After"] == "1"
    assert "password checks" in (await resp.json())["error"]
    # ...while the verified user's cached credentials are served without waiting for bcrypt.
    assert (await exp.client.get("/metrics", headers=basic("prom", PASSWORD))).status == 200
    assert users.in_progress > 0 and not any(task.done() for task in flood)
    for task in [guess, *flood]:
        task.cancel()


# --- which endpoints need a web config user (docs/security.md says so exactly) ------------------

GUARDED = [("GET", "/metrics"), ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/"),
           ("GET", "/api/v1/exports"), ("GET", "/api/v1/events"), ("GET", "/openapi.json"),
           ("POST", "/-/reload"), ("GET", "/no-such-page")]


async def test_every_endpoint_needs_a_web_config_user(start_exporter: Start,
                                                      tmp_path: Path) -> None:
    config = write_config(tmp_path, f"basic_auth_users:\n  prometheus: {hashed(PASSWORD)}\n")
    exp = await start_exporter("--web.config.file", str(config), "--auth-token", "tok")
    for method, path in GUARDED:
        for headers in ({}, {"Authorization": "Bearer tok"}, basic("prometheus", "wrong")):
            resp = await exp.client.request(method, path, headers=headers)
            assert resp.status == 401, (method, path, headers)
            assert resp.headers["WWW-Authenticate"].startswith("Basic")
        resp = await exp.client.request(method, path, headers=basic("prometheus", PASSWORD))
        assert resp.status != 401, (method, path)
    # The documentation lists exactly these, and shows Prometheus's basic_auth scrape config.
    docs = (ROOT / "docs" / "security.md").read_text()
    section = docs.split("### `basic_auth_users`: which endpoints need credentials", 1)[1]
    section = section.split("\n### ", 1)[0]
    for _, path in GUARDED[:-1]:
        assert f"`{path}`" in section, path
    assert "unknown paths" in section
    scrape = section.split("```yaml", 1)[1].split("```", 1)[0]
    assert "basic_auth:" in scrape and "username: prometheus" in scrape
    assert "password_file:" in scrape


def test_yaml_errors_do_not_quote_the_file(tmp_path: Path) -> None:
    """PyYAML quotes the offending line; that line may hold a hash or an inline key."""
    secret_hash = hashed("hunter2")
    with pytest.raises(WebConfigError) as exc:
        load_web_config(write_config(tmp_path, f"basic_auth_users:\n  alice: {secret_hash}: [\n"))
    assert "not valid YAML" in str(exc.value) and "line 2" in str(exc.value)
    assert secret_hash not in str(exc.value)
