"""Fuzzing the live HTTP interface: hostile bodies, headers and paths, then schemathesis.

Every answer must be below 500, every 4xx must be JSON naming its reason, and the server must
stay healthy (health checks pass, a valid event is still accepted). ``pytest -s`` prints how
many inputs of each kind were tried and how many 5xx were seen (must be 0).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import Exporter, ExporterProcess, event
from tests.strategies import hostile_bodies, nasty_text

pytestmark = pytest.mark.slow

CONTENT_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded",
                 "application/json; charset=latin-1", "", "multipart/form-data; boundary=x"]


@pytest.fixture(scope="module")
def tally() -> Iterator[Counter[str]]:
    counts: Counter[str] = Counter()
    yield counts
    print(f"\nHTTP fuzzing: {counts.total() - counts['5xx']} inputs tried "
          f"({ {k: v for k, v in sorted(counts.items()) if k != '5xx'} }), "
          f"5xx seen: {counts['5xx']}")


async def check_answer(exporter: Exporter, resp_status: int, text: str,
                       tally: Counter[str]) -> None:
    if resp_status >= 500:
        tally["5xx"] += 1
    assert resp_status < 500, text
    body = json.loads(text)
    if resp_status >= 400:
        assert isinstance(body.get("error"), str) and body["error"], body
        if resp_status == 422:
            assert body["fields"], body
    else:
        assert body["status"] in ("accepted", "duplicate", "test"), body


async def assert_healthy(exporter: Exporter) -> None:
    for path in ("/healthz", "/readyz"):
        resp = await exporter.client.get(path)
        assert resp.status == 200, path
    status, answer = await exporter.post(event(export_id=f"after-{time.time()}"))
    assert (status, answer["status"]) == (200, "accepted")


@pytest.fixture
async def fuzzed(start_exporter: Callable[..., Awaitable[Exporter]]) -> Exporter:
    # Small limits so the fuzzer reaches the body limit too.
    return await start_exporter("--max-body-bytes", "4096")


@given(case=hostile_bodies, content_type=st.sampled_from(CONTENT_TYPES))
@settings(max_examples=250, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
async def test_hostile_bodies_never_cause_5xx(fuzzed: Exporter, tally: Counter[str],
                                               case: tuple[str, bytes],
                                               content_type: str) -> None:
    # One server for all examples on purpose: it must survive every one of them.
    kind, raw = case
    tally[kind] += 1
    headers = {"Content-Type": content_type} if content_type else {}
    resp = await fuzzed.client.post("/webhook/fuzz", data=raw, headers=headers)
    await check_answer(fuzzed, resp.status, await resp.text(), tally)
    if tally.total() % 50 == 0:
        await assert_healthy(fuzzed)


header_text = st.text(alphabet=st.characters(exclude_categories=["Cs", "Cc"]), max_size=80)


@pytest.fixture
async def guarded(start_exporter: Callable[..., Awaitable[Exporter]]) -> Exporter:
    return await start_exporter("--auth-token", "s3cret", "--auth-header", "X-Token")


@given(account=nasty_text, header=header_text,
       scheme=st.sampled_from(["Bearer ", "Basic ", "", "bearer  "]))
@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
async def test_hostile_paths_and_credentials_never_cause_5xx(
    guarded: Exporter, tally: Counter[str], account: str, header: str, scheme: str,
) -> None:
    tally["path_and_credentials"] += 1
    value = (scheme + header).encode("utf-8").decode("latin-1")  # raw UTF-8 bytes on the wire
    resp = await guarded.client.post(
        f"/webhook/{quote(account, safe='')}", data=json.dumps(event()).encode(),
        headers={"Authorization": value, "X-Token": value},
    )
    await check_answer(guarded, resp.status, await resp.text(), tally)
    assert resp.status in (400, 401, 404), resp.status


async def test_server_healthy_after_fuzzing(fuzzed: Exporter, tally: Counter[str]) -> None:
    big = b'{"Partner": "' + b"x" * 5000 + b'"}'
    for raw in (b"", b"\xff\xfe{", b"[" * 100_000, big):
        tally["edge"] += 1
        resp = await fuzzed.client.post("/webhook", data=raw)
        await check_answer(fuzzed, resp.status, await resp.text(), tally)
    await assert_healthy(fuzzed)


def test_schemathesis_against_the_running_server(
    exporter_process: Callable[..., ExporterProcess], tally: Counter[str],
) -> None:
    proc = exporter_process()
    proc.start()
    schema = schemathesis.openapi.from_url(f"{proc.url}/openapi.json")
    checked = Counter[str]()
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # an Err has no ok(): the test fails

        @given(case=operation.as_strategy())
        @settings(max_examples=60, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
        def run(case: Any) -> None:
            response = case.call()
            checked[case.operation.label] += 1
            tally["schemathesis"] += 1
            if response.status_code >= 500:
                tally["5xx"] += 1
            # Raises on any failed check: 5xx, undocumented status, content type or header,
            # a body that does not match its schema, schema-valid data rejected.
            case.validate_response(response)

        run()
    print(f"\nschemathesis: {dict(checked)}")
    assert set(checked) >= {"POST /webhook", "POST /webhook/{account}", "GET /metrics",
                            "GET /healthz", "GET /readyz"}
    assert proc.proc is not None and proc.proc.poll() is None
    assert proc.post(event(export_id="after-schemathesis")) == (200, "accepted")
