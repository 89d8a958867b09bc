"""The HTTP edge: undecodable bodies are counted 400s, the series cap is visible, and a malformed
request is one log line, with query strings kept out of the log."""

from __future__ import annotations

import http.client
import json
import socket
import time
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Final

from tests.helpers import Exporter, ExporterProcess, event, labels

Start = Callable[..., Awaitable[Exporter]]
Process = Callable[..., ExporterProcess]
NOT_GZIP = b'{"Export Request Id": 1, "Partner": "S3", "Status": "Initiated"}'


async def test_undecodable_webhook_body_is_a_counted_400(start_exporter: Start) -> None:
    exp = await start_exporter()
    resp = await exp.client.post("/webhook", data=NOT_GZIP,
                                 headers={"Content-Encoding": "gzip"})
    assert resp.status == 400
    answer = await resp.json()
    assert answer == {"status": "invalid", "error": "request body cannot be decoded as "
                      "Content-Encoding 'gzip'"}
    m = await exp.metrics()
    assert m["clevertap_export_webhook_requests_total"][labels(outcome="invalid")] == 1


async def test_undecodable_token_request_is_a_counted_400(start_exporter: Start) -> None:
    exp = await start_exporter("--oauth-client-id", "ct", "--oauth-client-secret", "s3cret")
    resp = await exp.client.post(
        "/oauth/token", data=b"grant_type=client_credentials",
        headers={"Content-Encoding": "gzip",
                 "Content-Type": "application/x-www-form-urlencoded"})
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_request"
    m = await exp.metrics()
    assert m["clevertap_export_oauth_token_requests_total"][
        labels(outcome="invalid_request")] == 1


def _post_raw(port: int, path: str, body: bytes, headers: dict[str, str]) -> int:
    return _answer(port, path, body, headers)[0]


def _answer(port: int, path: str, body: bytes,
            headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_encoding_refused_by_the_parser_is_one_counted_line(exporter_process: Process) -> None:
    exp = exporter_process()
    exp.start()
    assert _post_raw(exp.port, "/webhook", NOT_GZIP, {"Content-Encoding": "deflate"}) == 400
    for coding in ("br", "zstd"):  # no decoder here: unsupported, said for the client
        status, headers, body = _answer(exp.port, "/webhook", NOT_GZIP,
                                        {"Content-Encoding": coding})
        assert (status, headers["Accept-Encoding"]) == (415, "gzip, deflate")
        assert json.loads(body) == {
            "status": "invalid", "error": f"Content-Encoding {coding!r} is not supported: "
            "send the body uncompressed or as gzip or deflate"}
        assert b"install" not in body
    assert _post_raw(exp.port, "/webhook", NOT_GZIP, {"Content-Encoding": "gzip"}) == 400
    # Each one counted once: by the webhook when aiohttp reports it as the body is read, by
    # the parser's counter when aiohttp answers before the endpoint runs (which depends on
    # where in the body decompression fails).
    m = exp.metrics()
    by_parser = m["clevertap_export_http_malformed_requests_total"][
        labels(reason="content_encoding")]
    by_webhook = m["clevertap_export_webhook_requests_total"][labels(outcome="invalid")]
    assert by_parser >= 2 and by_parser + by_webhook == 4
    exp.stop()
    assert exp.proc is not None and exp.proc.stderr is not None
    log = exp.proc.stderr.read().decode()
    assert "Traceback" not in log
    assert log.count("refused a malformed request") == by_parser
    assert log.count("cannot be decoded as Content-Encoding") == by_webhook


#: Requests aiohttp refuses while parsing, before any middleware: each kind the HTTP fuzzing
#: found answered in plain text.
MALFORMED: Final = (
    b"GET /metrics HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # TLS to the HTTP port
    b"POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
)


def test_every_parser_refusal_is_the_json_error_shape(exporter_process: Process) -> None:
    """One error shape: what aiohttp refuses before the middleware is JSON too, not plain text
    (issue 23, item 14)."""
    exp = exporter_process()
    exp.start()
    for request in MALFORMED:
        with socket.create_connection(("127.0.0.1", exp.port), timeout=5) as s:
            s.sendall(request)
            raw = b""
            while chunk := s.recv(65536):
                raw += chunk
        head, _, body = raw.partition(b"\r\n\r\n")
        assert b" 400 Bad Request" in head.split(b"\r\n", 1)[0], (request[:40], raw[:200])
        assert b"Content-Type: application/json" in head, (request[:40], raw[:300])
        doc = json.loads(body)
        assert doc["status"] == "invalid", doc
        assert doc["error"].startswith("malformed HTTP request: "), doc
    exp.stop()


def test_malformed_requests_log_one_line_each(exporter_process: Process) -> None:
    exp = exporter_process()
    exp.start()
    for _ in range(50):
        with socket.create_connection(("127.0.0.1", exp.port), timeout=5) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
            assert b" 400 Bad Request" in s.recv(1024)
    m = exp.metrics()
    assert m["clevertap_export_http_malformed_requests_total"][labels(reason="malformed")] == 50
    exp.stop()
    assert exp.proc is not None and exp.proc.stderr is not None
    lines = exp.proc.stderr.read().decode().splitlines()
    assert not any("Traceback" in line for line in lines)
    assert sum("refused a malformed request" in line for line in lines) == 50
    assert len(lines) < 50 + 10  # start-up and shut-down lines besides


def test_access_log_redacts_query_strings(exporter_process: Process) -> None:
    exp = exporter_process("--access-log")
    exp.start()
    with urllib.request.urlopen(f"{exp.url}/metrics?token=s3cret-in-query", timeout=5) as r:
        assert r.status == 200
    time.sleep(0.2)
    exp.stop()
    assert exp.proc is not None and exp.proc.stderr is not None
    log = exp.proc.stderr.read().decode()
    assert "s3cret-in-query" not in log
    assert '"GET /metrics?[redacted] HTTP/1.1" 200' in log


async def test_series_overflow_is_exposed(start_exporter: Start) -> None:
    exp = await start_exporter("--max-series", "2")
    for i, account in enumerate(("a", "b", "c", "d")):
        assert (await exp.post(event(i, "Initiated"), account=account))[0] == 200
    m = await exp.metrics()
    assert m["clevertap_export_label_overflow_total"][labels(label="series")] == 2
    assert m["clevertap_export_label_overflow_total"][labels(label="account")] == 0
