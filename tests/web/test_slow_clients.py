"""Slow and abusive clients: raw sockets against the real process.

A client that trickles its body is cut off with 408 after the read timeout; one that never
finishes its headers is disconnected after the idle timeout; requests beyond the concurrency
limit get 503 with Retry-After at once; and through all of it a well-behaved client is served
promptly. Each case is counted in ``clevertap_export_webhook_requests_total{outcome}``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import pytest

from tests.helpers import ExporterProcess, event

pytestmark = pytest.mark.process

READ_TIMEOUT = 1.0
IDLE_TIMEOUT = 2.0
MAX_CONCURRENT = 8


@pytest.fixture
def proc(exporter_process: Callable[..., ExporterProcess]) -> ExporterProcess:
    p = exporter_process("--read-timeout", f"{READ_TIMEOUT}s", "--idle-timeout",
                         f"{IDLE_TIMEOUT}s", "--max-concurrent-requests", str(MAX_CONCURRENT))
    p.start()
    return p


def head(body_length: int, path: str = "/webhook") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {body_length}\r\n\r\n").encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


async def timed_post(proc: ExporterProcess, export_id: str) -> float:
    """Post one valid event over a fresh connection; returns the seconds it took."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", proc.port)
    data = json.dumps(event(export_id=export_id)).encode()
    writer.write(head(len(data)) + data)
    status, _, body = await read_response(reader)
    writer.close()
    assert (status, json.loads(body)["status"]) == (200, "accepted")
    return time.monotonic() - started


async def trickle(proc: ExporterProcess, pause: float = 0.2, path: str = "/webhook",
                  ) -> tuple[int, dict[str, str], bytes, bool]:
    """Declare a body and send it one byte per ``pause``; returns the answer and whether
    the server closed the connection after it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", proc.port)
    data = json.dumps(event()).encode()
    writer.write(head(len(data), path))

    async def dribble() -> None:
        for byte in data:
            await asyncio.sleep(pause)
            writer.write(bytes([byte]))
            await writer.drain()

    sender = asyncio.create_task(dribble())
    try:
        status, headers, body = await asyncio.wait_for(read_response(reader), 10)
        closed = await asyncio.wait_for(reader.read(1), 5) == b""
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        writer.close()
    return status, headers, body, closed


def outcomes(proc: ExporterProcess) -> dict[str, float]:
    return {dict(k)["outcome"]: v
            for k, v in proc.metrics()["clevertap_export_webhook_requests_total"].items()}


async def test_slow_body_gets_408_and_others_are_served(proc: ExporterProcess) -> None:
    slow = asyncio.create_task(trickle(proc))
    await asyncio.sleep(0.3)
    assert await timed_post(proc, "meanwhile") < 0.5  # not held up by the slow client
    status, headers, body, closed = await slow
    assert status == 408
    assert "not received within 1 s" in json.loads(body)["error"]
    assert headers.get("connection", "").lower() == "close" and closed
    assert outcomes(proc)["timeout"] == 1


async def test_unfinished_headers_are_disconnected_after_idle_timeout(
    proc: ExporterProcess,
) -> None:
    conns = [await asyncio.open_connection("127.0.0.1", proc.port) for _ in range(200)]
    started = time.monotonic()
    for _, writer in conns[:100]:
        writer.write(b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finished
    assert await timed_post(proc, "among-200-idle") < 0.5
    closed = await asyncio.wait_for(
        asyncio.gather(*(reader.read() for reader, _ in conns)), IDLE_TIMEOUT + 5)
    waited = time.monotonic() - started
    for _, writer in conns:
        writer.close()
    assert all(data == b"" for data in closed)  # closed without an answer
    assert IDLE_TIMEOUT - 0.5 <= waited <= IDLE_TIMEOUT + 5
    assert await timed_post(proc, "after-idle") < 0.5


async def test_requests_beyond_the_limit_get_503_and_retry_after(proc: ExporterProcess) -> None:
    holders = [asyncio.create_task(trickle(proc, pause=0.5)) for _ in range(MAX_CONCURRENT)]
    await asyncio.sleep(0.3)  # all holders are now reading their bodies
    reader, writer = await asyncio.open_connection("127.0.0.1", proc.port)
    data = json.dumps(event(export_id="refused")).encode()
    writer.write(head(len(data)) + data)
    status, headers, body = await asyncio.wait_for(read_response(reader), 2)
    writer.close()
    assert status == 503 and headers["retry-after"] == "1"
    assert json.loads(body) == {"status": "overloaded", "error":
                                "too many webhook requests in progress; retry later"}
    # Observability routes are not counted against the limit.
    in_progress = (await asyncio.to_thread(proc.metrics))[
        "clevertap_export_webhook_requests_in_progress"][()]
    assert in_progress == MAX_CONCURRENT
    assert {r[0] for r in await asyncio.gather(*holders)} == {408}
    assert await timed_post(proc, "after-overload") < 0.5
    counted = await asyncio.to_thread(outcomes, proc)
    assert counted["overloaded"] == 1 and counted["timeout"] == MAX_CONCURRENT
    assert (await asyncio.to_thread(proc.metrics))[
        "clevertap_export_webhook_requests_in_progress"][()] == 0


async def test_abrupt_disconnects_and_floods_of_connections(proc: ExporterProcess) -> None:
    # Clients that vanish mid-body, then 500 connections at once, each posting an event.
    for _ in range(20):
        _, writer = await asyncio.open_connection("127.0.0.1", proc.port)
        writer.write(head(500) + b'{"Export Request Id": 1')
        await writer.drain()
        writer.close()

    async def one(i: int) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", proc.port)
        data = json.dumps(event(export_id=f"c{i}")).encode()
        writer.write(head(len(data)) + data)
        status, _, _ = await read_response(reader)
        writer.close()
        return status

    statuses = await asyncio.gather(*(one(i) for i in range(500)))
    assert set(statuses) <= {200, 503}
    assert statuses.count(200) >= MAX_CONCURRENT
    assert await timed_post(proc, "after-flood") < 0.5
    counted = await asyncio.to_thread(outcomes, proc)
    assert counted["accepted"] == statuses.count(200) + 1
    assert counted["overloaded"] == statuses.count(503)
    assert counted["aborted"] == 20
    proc.stop()
    assert proc.proc is not None and proc.proc.stderr is not None
    log = proc.proc.stderr.read().decode()
    assert "unexpected error" not in log and "Traceback" not in log, log[-2000:]
    print(f"\nconnection flood: 500 concurrent posts -> {statuses.count(200)} accepted, "
          f"{statuses.count(503)} refused as overloaded (limit {MAX_CONCURRENT})")
