"""exporter-toolkit's web config test files, as written here, through the exporter's start-up.

``tests/data/webconfig`` holds this project's own copies of the 39 files exporter-toolkit's
``web/testdata`` tests load (same names, same facts; certificates made by
``make_certificates.py``). 19 load and 20 are refused, each for the reason exporter-toolkit
gives; the files that load are then served over real TLS handshakes and checked for the
behaviour exporter-toolkit's tests expect of them.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509

from exporter.cli.flags import parse_settings
from exporter.web.app import create_app
from exporter.web.appkeys import RUNTIME
from tests.helpers import ROOT, free_port, parse_metrics
from tests.pki import issue, name

DATA = ROOT / "tests" / "data" / "webconfig"
CA = DATA / "tls-ca-chain.pem"

# File name: None when it loads, else the reason it must be refused for (a regular expression,
# matched case-insensitively against the start-up error).
EXPECTED: dict[str, str | None] = {
    "web_config_empty.yml": None,
    "web_config_junk.yml": "the file must be a mapping",
    "web_config_junk_key.yml": r"unsupported key\(s\) tls_server_config\.cert_flie",
    "web_config_noAuth_certPath_empty.bad.yml": "missing one of cert or cert_file",
    "web_config_noAuth_cert_empty.bad.yml": "missing one of cert or cert_file",
    "web_config_noAuth_keyPath_empty.bad.yml": "missing one of key or key_file",
    "web_config_noAuth_key_empty.bad.yml": "missing one of key or key_file",
    "web_config_noAuth_certPath_keyPath_empty.bad.yml": "missing one of cert or cert_file",
    "web_config_noAuth_certPath_invalid.bad.yml": "cert_file: cannot read .*no such file",
    "web_config_noAuth_keyPath_invalid.bad.yml": "key_file: cannot read .*no such file",
    "web_config_noAuth_certPath_keyPath_invalid.bad.yml": "cert_file: cannot read .*no such file",
    "web_config_noAuth.bad.yml": "client CA's have been configured without a Client Auth Policy",
    "web_config_auth_clientCAs_invalid.bad.yml": "client_ca_file: cannot read .*no such file",
    "web_config_auth_user_list_invalid.bad.yml": "the hash of 'john' is not a bcrypt hash",
    "web_config_noAuth_inventedCiphers.bad.yml": "cipher_suites: unknown cipher: TLS_ECDHE_RSA_",
    "web_config_noAuth_inventedCurves.bad.yml": "curve_preferences: unknown curve: CurveP999",
    "web_config_noAuth_wrongTLSVersion.bad.yml": "min_version: unknown TLS version: TLS111",
    "web_config_noAuth_noHTTP2Cipher.bad.yml": "http2: TLSConfig.CipherSuites is missing an "
                                               "HTTP/2-required AES_128_GCM_SHA256 cipher",
    "web_config_headers_content_type_options.bad.yml":
        "invalid value for X-Content-Type-Options",
    "web_config_headers_frame_options.bad.yml": "invalid value for X-Frame-Options",
    "web_config_headers_extra_header.bad.yml": "HTTP header 'Server' can not be configured",
    "web_config_noAuth.good.yml": None,
    "web_config_noAuth.good.blocking.yml": None,
    "web_config_noAuth_tlsInline.good.yml": None,
    "web_config_noAuth_allCiphers.good.yml": None,
    "web_config_noAuth_someCiphers.good.yml": None,
    "web_config_noAuth_someCiphers_noOrder.good.yml": None,
    "web_config_noAuth_allCurves.good.yml": None,
    "web_config_noAuth_someCurves.good.yml": None,
    "web_config_noAuth_noHTTP2.good.yml": None,
    "web_config_headers.good.yml": None,
    "tls_config_noAuth.requireanyclientcert.good.yml": None,
    "tls_config_noAuth.requireandverifyclientcert.good.yml": None,
    "web_config_auth_client_san.good.yaml": None,
    "web_config_auth_client_san.bad.yaml": None,  # loads; refuses the client's certificate
    "web_config_rate_limiter_nonblocking.yaml": None,
    "web_config_rate_limiter_one_second.yaml": None,
    "web_config_users_noTLS.good.yml": None,
    "web_config_users.good.yml": None,
}


def test_the_39_files_are_all_here() -> None:
    on_disk = {p.name for p in DATA.iterdir() if p.suffix in (".yml", ".yaml")}
    assert on_disk == set(EXPECTED)
    loads = [name for name, reason in EXPECTED.items() if reason is None]
    assert (len(EXPECTED), len(loads)) == (39, 19)


@pytest.mark.parametrize(("name", "reason"), EXPECTED.items(), ids=list(EXPECTED))
def test_each_file_loads_or_is_refused_for_its_reason(
        name: str, reason: str | None, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--state-path", str(tmp_path / "state.db"), "--web.config.file", str(DATA / name)]
    if reason is None:
        settings = parse_settings(args, env={})
        assert settings.listen.web_config is not None
        return
    with pytest.raises(SystemExit) as exc:
        parse_settings(args, env={})
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"--web.config.file {DATA / name}" in err
    assert re.search(reason, err, re.IGNORECASE), err


# --- the files that load, served over real TLS ------------------------------------------------

@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    cipher: str | None
    peer_serial: int | None


class Refused(Exception):
    """The connection failed or closed without an HTTP answer."""


async def get(port: int, context: ssl.SSLContext | None, path: str = "/healthz",
              headers: dict[str, str] | None = None) -> Answer:
    """One HTTP/1.1 request on its own connection, reporting the TLS session it used."""
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=context, server_hostname="localhost" if context else None)
        lines = [f"GET {path} HTTP/1.1", "Host: localhost", "Connection: close",
                 *(f"{k}: {v}" for k, v in (headers or {}).items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = await reader.read()
        ssl_object = writer.get_extra_info("ssl_object")
        writer.close()
    except (ssl.SSLError, ConnectionError) as exc:
        raise Refused(repr(exc)) from exc
    if not data:
        raise Refused("closed without an answer")
    head = data.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
    fields = dict(line.split(": ", 1) for line in head[1:])
    cipher = ssl_object.cipher()[0] if ssl_object else None
    der = ssl_object.getpeercert(binary_form=True) if ssl_object else None
    serial = x509.load_der_x509_certificate(der).serial_number if der else None
    return Answer(int(head[0].split()[1]), fields, cipher, serial)


def client(*, cert: str | None = None, ciphers: str | None = None, curve: str | None = None,
           max_version: ssl.TLSVersion | None = None, ca: Path = CA) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(DATA / f"{cert}.pem", DATA / f"{cert}.key")
    if ciphers is not None:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(ciphers)
    if curve is not None:
        context.set_ecdh_curve(curve)
    if max_version is not None:
        context.maximum_version = max_version
    return context


Serve = Callable[..., Awaitable[int]]


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    """Serve a web config file the way ``cli.serve`` does; answers the port."""
    runners: list[web.AppRunner] = []

    async def start(config: str | Path) -> int:
        path = config if isinstance(config, Path) else DATA / config
        settings = parse_settings(["--state-path", str(tmp_path / f"{len(runners)}.db"),
                                   "--web.config.file", str(path)], env={})
        app = create_app(settings)
        runner = web.AppRunner(app)
        await runner.setup()
        runners.append(runner)
        port = free_port()
        web_config = app[RUNTIME].web_config_file
        assert web_config is not None
        await web.TCPSite(runner, "127.0.0.1", port,
                          ssl_context=web_config.server_context()).start()
        return port

    yield start
    for runner in runners:
        await runner.cleanup()


REFUSED = pytest.raises(Refused)


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
async def test_client_auth_type_without_client_ca(serve: Serve) -> None:
    port = await serve("web_config_noAuth.good.yml")
    assert (await get(port, client())).status == 200
    with REFUSED:  # plain HTTP to an HTTPS port
        await get(port, None)
    with REFUSED:  # TLS 1.2 is the default minimum
        await get(port, client(max_version=ssl.TLSVersion.TLSv1_1))
    blocking = await serve("web_config_noAuth.good.blocking.yml")
    with REFUSED:  # RequireAndVerifyClientCert: no certificate, no connection
        await get(blocking, client())


async def test_inline_certificate_and_key(serve: Serve) -> None:
    port = await serve("web_config_noAuth_tlsInline.good.yml")
    answer = await get(port, client())
    server = x509.load_pem_x509_certificate((DATA / "server.crt").read_bytes())
    assert (answer.status, answer.peer_serial) == (200, server.serial_number)


async def test_cipher_suites_and_preference(serve: Serve) -> None:
    both = "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384"
    reversed_ = "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256"
    some = await serve("web_config_noAuth_someCiphers.good.yml")
    assert (await get(some, client(ciphers="ECDHE-RSA-AES128-GCM-SHA256"))).status == 200
    with REFUSED:  # no cipher in common
        await get(some, client(ciphers="ECDHE-RSA-AES256-SHA"))
    # prefer_server_cipher_suites defaults to true: the server's order wins...
    assert (await get(some, client(ciphers=reversed_))).cipher == "ECDHE-RSA-AES128-GCM-SHA256"
    no_order = await serve("web_config_noAuth_someCiphers_noOrder.good.yml")
    # ...and with it false the client's does.
    assert (await get(no_order, client(ciphers=both))).cipher == "ECDHE-RSA-AES128-GCM-SHA256"
    assert (await get(no_order, client(ciphers=reversed_))).cipher == (
        "ECDHE-RSA-AES256-GCM-SHA384")
    every = await serve("web_config_noAuth_allCiphers.good.yml")
    assert (await get(every, client())).status == 200
    no_http2 = await serve("web_config_noAuth_noHTTP2.good.yml")
    assert (await get(no_http2, client(ciphers="ECDHE-RSA-AES256-GCM-SHA384"))).status == 200


async def test_curve_preferences(serve: Serve) -> None:
    some = await serve("web_config_noAuth_someCurves.good.yml")  # TLS 1.3, P-521 only
    assert (await get(some, client(curve="secp521r1"))).status == 200
    with REFUSED:
        await get(some, client(curve="secp384r1"))
    every = await serve("web_config_noAuth_allCurves.good.yml")
    for curve in ("prime256v1", "secp384r1", "secp521r1", "X25519"):
        assert (await get(every, client(curve=curve))).status == 200, curve


async def test_client_certificates(serve: Serve) -> None:
    any_cert = await serve("tls_config_noAuth.requireanyclientcert.good.yml")
    # RequireAnyClientCert: a certificate the CA did not sign is accepted, none is not.
    assert (await get(any_cert, client(cert="client_selfsigned"))).status == 200
    with REFUSED:
        await get(any_cert, client())
    verified = await serve("tls_config_noAuth.requireandverifyclientcert.good.yml")
    assert (await get(verified, client(cert="client_selfsigned"))).status == 200
    with REFUSED:
        await get(verified, client(cert="client2_selfsigned"))  # not signed by client_ca_file
    with REFUSED:
        await get(verified, client())


async def test_client_allowed_sans(serve: Serve) -> None:
    good = await serve("web_config_auth_client_san.good.yaml")
    assert (await get(good, client(cert="client2_selfsigned"))).status == 200
    bad = await serve("web_config_auth_client_san.bad.yaml")
    answer = await get(bad, client(cert="client2_selfsigned"))
    assert answer.status == 403 and answer.headers["Connection"] == "close"


async def test_response_headers(serve: Serve) -> None:
    port = await serve("web_config_headers.good.yml")
    for path in ("/healthz", "/no-such-page"):
        headers = (await get(port, None, path)).headers
        assert headers["X-Frame-Options"] == "sameorigin"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-XSS-Protection"] == "0"
        assert headers["Strict-Transport-Security"] == "max-age=63072000"
        assert headers["Content-Security-Policy"] == "default-src 'none'"


async def test_rate_limit(serve: Serve) -> None:
    open_port = await serve("web_config_rate_limiter_nonblocking.yaml")
    for _ in range(11):
        assert (await get(open_port, None)).status == 200
    limited = await serve("web_config_rate_limiter_one_second.yaml")
    answer = await get(limited, None)  # a bucket of 0: even the first request waits
    assert answer.status == 429 and int(answer.headers["Retry-After"]) >= 1


def basic(user: str) -> dict[str, str]:
    credentials = base64.b64encode(f"{user}:{user}-password".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


async def test_users(serve: Serve) -> None:
    plain = await serve("web_config_users_noTLS.good.yml")
    assert (await get(plain, None)).status == 401
    assert (await get(plain, None, headers=basic("dave"))).status == 200
    # With TLS and a cost-18 hash among the users: start-up does not compute it, and the
    # other users are served.
    tls = await serve("web_config_users.good.yml")
    assert (await get(tls, client())).status == 401
    assert (await get(tls, client(), headers=basic("carol"))).status == 200
    assert (await get(tls, client(), headers=basic("nobody"))).status == 401


# --- the file is re-read when it changes ------------------------------------------------------

async def test_a_renewed_certificate_needs_no_restart(serve: Serve, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    ca_cert, _, ca_key = issue(tmp_path, "ca", "reload CA", None, ca=True)
    issuer = (name("reload CA"), ca_key)
    issue(tmp_path, "server", "localhost", issuer, server=True)
    config = tmp_path / "web-config.yml"
    good = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
    config.write_text(good)
    port = await serve(config)
    first = await get(port, client(ca=ca_cert))
    # A renewal writes a new certificate and key over the old files.
    issue(tmp_path, "server", "localhost", issuer, server=True)
    second = await get(port, client(ca=ca_cert))
    assert first.status == second.status == 200
    assert first.peer_serial != second.peer_serial
    renewed = x509.load_pem_x509_certificate((tmp_path / "server.crt").read_bytes())
    assert second.peer_serial == renewed.serial_number
    # Other TLS settings follow the file too (exporter-toolkit's TestConfigReloading).
    config.write_text(good + "  client_auth_type: RequireAndVerifyClientCert\n")
    with REFUSED:
        await get(port, client(ca=ca_cert))
    config.write_text(good)
    assert (await get(port, client(ca=ca_cert))).status == 200
    # A change that does not load is logged and the last good configuration stays.
    caplog.set_level(logging.ERROR)
    shutil.copy(DATA / "web_config_noAuth_wrongTLSVersion.bad.yml", config)
    assert (await get(port, client(ca=ca_cert))).status == 200
    assert "unknown TLS version: TLS111" in caplog.text
    assert "keeping the previous configuration" in caplog.text


async def test_a_file_truncated_in_place_never_serves_without_credentials(
        serve: Serve, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A web config rewritten in place (``exec 3>web.yml`` truncates it first) reads for a
    moment as empty: the previous users stay in force (issue 23, item 9)."""
    config = tmp_path / "web-config.yml"
    shutil.copy(DATA / "web_config_users_noTLS.good.yml", config)
    port = await serve(config)
    assert (await get(port, None)).status == 401
    started = await reload_status(port)
    assert started[0] == 1 and abs(started[1] - time.time()) < 60
    caplog.set_level(logging.ERROR)
    with open(config, "r+") as fh:  # truncated, then written part of the way
        fh.truncate(0)
        fh.write("# being rewritten\n")
    assert (await get(port, None)).status == 401
    assert (await get(port, None, headers=basic("dave"))).status == 200
    assert "without basic_auth_users" in caplog.text
    # ... and says so in a metric, as Prometheus's config_last_reload_successful does.
    loaded = await reload_status(port)
    assert loaded[0] == 0 and loaded[1] == started[1]
    shutil.copy(DATA / "web_config_users_noTLS.good.yml", config)  # the rewrite completes
    assert (await get(port, None, headers=basic("dave"))).status == 200
    loaded = await reload_status(port)
    assert loaded[0] == 1 and loaded[1] > started[1]


async def reload_status(port: int) -> tuple[float, float]:
    """``--web.config.file``'s reload gauges: (successful, last success timestamp)."""
    async with aiohttp.ClientSession() as session, session.get(
            f"http://127.0.0.1:{port}/metrics", headers=basic("dave")) as resp:
        assert resp.status == 200
        samples = parse_metrics(await resp.text())
    prefix = "clevertap_export_web_config_last_reload_success"
    return samples[f"{prefix}ful"][()], samples[f"{prefix}_timestamp_seconds"][()]


@pytest.mark.parametrize("replacement", ["fifo", "huge"])
async def test_a_fifo_or_huge_file_is_refused_unread(
        serve: Serve, tmp_path: Path, caplog: pytest.LogCaptureFixture, replacement: str) -> None:
    """A web config replaced by a FIFO or a 20 MB file is refused from its stat, so no request
    waits on reading it (issue 23, item 13)."""
    config = tmp_path / "web-config.yml"
    shutil.copy(DATA / "web_config_users_noTLS.good.yml", config)
    port = await serve(config)
    config.unlink()
    if replacement == "fifo":
        os.mkfifo(config)
    else:
        config.write_bytes(b"#" * (20 * 1024 * 1024))
    caplog.set_level(logging.ERROR)
    began = time.monotonic()
    assert (await get(port, None, headers=basic("dave"))).status == 200
    assert time.monotonic() - began < 1.0
    assert ("is not a regular file" if replacement == "fifo" else "at most") in caplog.text


def test_the_process_picks_up_a_renewed_certificate(tmp_path: Path) -> None:
    """The same through ``python -m exporter``, whose event loop (uvloop when installed)
    wraps each connection itself."""
    ca_cert, _, ca_key = issue(tmp_path, "ca", "reload CA", None, ca=True)
    issuer = (name("reload CA"), ca_key)
    issue(tmp_path, "server", "localhost", issuer, server=True)
    config = tmp_path / "web-config.yml"
    config.write_text("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--host", "127.0.0.1", "--port", str(port),
         "--state-path", str(tmp_path / "state.db"), "--web.config.file", str(config)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    context = client(ca=ca_cert)

    def serial() -> int:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname="localhost") as tls:
            der = tls.getpeercert(binary_form=True)
        assert der is not None
        return x509.load_der_x509_certificate(der).serial_number

    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                before = serial()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        issue(tmp_path, "server", "localhost", issuer, server=True)
        renewed = x509.load_pem_x509_certificate((tmp_path / "server.crt").read_bytes())
        assert before != renewed.serial_number == serial()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
