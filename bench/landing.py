"""``python -m bench.landing``: webhook latency with landing checks running against a slow store,
against the same load without destinations (issue 19: "never at the webhook's expense").

Every series bench/post.lua posts is declared, once with an S3 destination on a local store
that answers each listing after ``--delay`` seconds with no objects, once without any. With
destinations, every Completed also stores its check, and the exporter claims, lists (slowly)
and records checks throughout the load, ``--landing-concurrency`` at a time. Both exporters
start fresh on SQLite, pinned like the main benchmark; wrk runs the durable webhook at
``--conns`` connections, the two modes alternating per repetition. Prints one line per run and
the medians; loopback only, every loop bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import re
import sys
import threading
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Final

from aiohttp import web

from bench.common import HOST, log, med
from bench.load import Wrk
from bench.servers import Pinning, Server, free_port

PARTNERS: Final = ("Amazon S3", "Google Cloud Storage", "Microsoft Azure")
TYPES: Final = ("Events", "Profiles")
FREQUENCIES: Final = ("One Time", "Every 4 hours", "Every 8 hours", "Every 12 hours",
                      "Every 24 hours")
_EMPTY: Final = (b'<?xml version="1.0" encoding="UTF-8"?>'
                 b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                 b"<Name>slow</Name><Prefix></Prefix><KeyCount>0</KeyCount>"
                 b"<MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>")


class SlowStore:
    """An S3 endpoint on 127.0.0.1 whose every listing takes ``delay`` seconds and finds
    nothing; counts the listings it answered. Runs its own loop in a thread."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.port = free_port()
        self.listings = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    async def _list(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.delay)
        self.listings += 1
        return web.Response(body=_EMPTY, content_type="application/xml")

    def _serve(self) -> None:
        async def main() -> None:
            app = web.Application()
            app.router.add_get("/{tail:.*}", self._list)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, HOST, self.port).start()
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()
            await runner.cleanup()

        self._loop.run_until_complete(main())

    def __enter__(self) -> SlowStore:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the slow store did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def exports_yml(endpoint: str | None) -> str:
    """Every series post.lua sends (account ``bench``), with a destination when given."""
    where = (f", destination: {{url: 's3://slow-bucket/exports/', endpoint: '{endpoint}', "
             "region: us-east-1}" if endpoint else "")
    return "exports:\n" + "".join(
        f"  - {{account: bench, partner: {p}, type: {t}, frequency: {f}{where}}}\n"
        for p in PARTNERS for t in TYPES for f in FREQUENCIES)


def checks_recorded(port: int) -> float:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    return sum(float(m) for m in re.findall(
        r"^clevertap_export_landing_checks_total\{[^}]*\} (\S+)$", text, re.M))


def run_once(pin: Pinning, wrk: Wrk, work: Path, name: str, endpoint: str | None,
             conns: int, seconds: int, concurrency: int) -> tuple[float, float, float]:
    """(requests/s, p99 ms, checks recorded) of one fresh exporter under wrk."""
    run_dir = work / f"{name}-{wrk.runs}"
    run_dir.mkdir()
    config = run_dir / "exports.yml"
    config.write_text(exports_yml(endpoint))
    port = free_port()
    cmd = [sys.executable, "-m", "exporter", "--host", HOST, "--port", str(port),
           "--state-path", str(run_dir / "state.db"), "--config.file", str(config),
           "--landing-settle", "1s", "--landing-retry-for", "1s",
           "--landing-concurrency", str(concurrency), "--log-level", "WARNING"]
    keys = {"EXPORTER_S3_ACCESS_KEY_ID": "bench", "EXPORTER_S3_SECRET_ACCESS_KEY": "bench"}
    server = Server(name, pin.server(cmd), port, "/readyz", run_dir / "exporter.log", keys)
    server.start()
    try:
        result = wrk.run(server, "/webhook/bench", "webhook", conns, seconds)
        return result.rps, result.p99_ms, checks_recorded(port)
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.landing", description=__doc__)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10, help="seconds of wrk per run")
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--delay", type=float, default=2.0, help="seconds the store takes a listing")
    ap.add_argument("--landing-concurrency", type=int, default=4)
    args = ap.parse_args(argv)
    pin = Pinning.for_this_machine()
    wrk = Wrk(pin, int(time.time()))
    p99: dict[str, list[float]] = {"without checks": [], "with checks": []}
    with TemporaryDirectory(prefix="bench-landing-") as tmp, SlowStore(args.delay) as store:
        endpoint = f"http://{HOST}:{store.port}"
        modes = [("without checks", None), ("with checks", endpoint)]
        for rep in range(args.reps):
            for name, where in modes if rep % 2 == 0 else modes[::-1]:
                rps, p, checks = run_once(pin, wrk, Path(tmp), name.replace(" ", "-"), where,
                                          args.conns, args.duration, args.landing_concurrency)
                p99[name].append(p)
                log(f"rep {rep + 1} c={args.conns} {name:<15} {rps:8.0f} req/s  p99 "
                    f"{p:6.2f} ms  checks recorded {checks:.0f}")
        log(f"store listings answered (each after {args.delay:g}s): {store.listings}")
    for name, values in p99.items():
        log(f"median webhook p99 {name}: {med(values):.2f} ms over {len(values)} run(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
