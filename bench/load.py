"""Load: wrk runs (parsed from the JSON line ``post.lua`` prints), the keep-alive client that
builds state with exact counts (aiohttp), and ``/metrics`` scrapes as Prometheus sends them."""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import os
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import aiohttp

from bench.common import HOST, LUA, HarnessError, log, med
from bench.servers import ForeignCpu, Pinning, Server

# What Prometheus 2.x sends when it scrapes.
PROM_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
_OK = ("accepted", "duplicate")
T = TypeVar("T")


@dataclass
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]
    foreign_cpu: float | None = None  # others' share of the server CPU meanwhile

    @property
    def stalled(self) -> bool:
        """No request completed during the run (a shared disk can stall a sync that long)."""
        return self.requests == 0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def row(self) -> dict[str, Any]:
        return {"rps": self.rps, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms,
                "requests": self.requests, "foreign_cpu": self.foreign_cpu,
                "stalled": self.stalled}


def parse_wrk(stdout: str) -> WrkResult:
    """The ``BENCH_JSON`` line ``done()`` in post.lua prints (wrk's own histogram)."""
    line = next((x for x in stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise HarnessError(f"no BENCH_JSON line in wrk output:\n{stdout}")
    d = json.loads(line.removeprefix("BENCH_JSON "))
    return WrkResult(d["requests"], d["duration_us"] / 1e6, d["p50_us"] / 1000,
                     d["p99_us"] / 1000, d["errors"])


class Wrk:
    """Runs wrk on the load CPU; each run gets its own Export Request Id range."""

    def __init__(self, pin: Pinning, t0: int) -> None:
        self.pin = pin
        self.t0 = t0
        self.runs = 0
        self.foreign_cpu: list[dict[str, Any]] = []  # noise: others' use of the server CPU
        self.errors: list[dict[str, Any]] = []  # socket errors and timeouts, reported

    def run(self, server: Server, path: str, mode: str, conns: int, seconds: int,
            own_pids: tuple[int, ...] = ()) -> WrkResult:
        return self.run_split([server], path, mode, conns, seconds, own_pids)[0]

    def run_split(self, servers: list[Server], path: str, mode: str, conns: int, seconds: int,
                  own_pids: tuple[int, ...] = ()) -> list[WrkResult]:
        """One wrk per server, all at once, ``conns`` split evenly between them (each its own
        Export Request Id range); ``own_pids`` (a database's processes) do not count as
        noise."""
        each = max(1, conns // len(servers))
        noise = ForeignCpu(self.pin.server_cpu, [s.pid for s in servers] + list(own_pids))
        procs = []
        for server in servers:
            self.runs += 1
            env = {**os.environ, "BENCH_MODE": mode, "BENCH_PATH": path,
                   "BENCH_ID_BASE": str(1_000_000_000 + self.runs * 10_000_000),
                   "BENCH_T0": str(self.t0)}
            cmd = self.pin.load(["wrk", "-t1", f"-c{each}", f"-d{seconds}s", "--timeout",
                                 "30s", "-s", str(LUA), f"http://{HOST}:{server.port}{path}"])
            procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True, env=env))
        outs = []
        try:
            for p in procs:
                out, err = p.communicate(timeout=seconds + 60)
                outs.append((p.returncode, out, err))
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait(10)
        share = noise.share()
        results = [self._check(server, path, each, seconds, rc, out, err, share)
                   for server, (rc, out, err) in zip(servers, outs, strict=True)]
        if share is not None:
            self.foreign_cpu.append({"server": "+".join(s.name for s in servers), "path": path,
                                     "conns": conns, "share": share})
        time.sleep(0.3)  # let background work settle between runs
        return results

    def _check(self, server: Server, path: str, conns: int, seconds: int, rc: int, out: str,
               err: str, share: float | None) -> WrkResult:
        if rc != 0:
            raise HarnessError(f"wrk failed ({rc}): {out}\n{err}")
        res = parse_wrk(out)
        res.foreign_cpu = share
        if res.stalled:  # every latency was at least the run: say so, not 0
            res.p50_ms = res.p99_ms = res.seconds * 1000
        # Non-2xx answers mean the bodies or the harness are wrong: that is a harness error.
        # Socket errors, timeouts and stalls are measurements; they are recorded and reported.
        bad = res.errors["status"]
        if bad > 0.01 * res.requests:
            raise HarnessError(f"wrk against {server.name}{path}: {bad} non-2xx in "
                               f"{res.requests} requests {res.errors}; server log:\n"
                               f"{server.log_tail()}")
        if sum(res.errors.values()) or res.stalled:
            self.errors.append({"server": server.name, "path": path, "conns": conns,
                                "seconds": seconds, "requests": res.requests,
                                "errors": res.errors})
            log(f"wrk against {server.name}{path} c={conns}: {res.requests} requests, "
                f"errors {res.errors}")
        return res


def combine(results: list[WrkResult]) -> WrkResult:
    """Simultaneous wrk runs (one per replica) as one: requests added up over the longest
    run's length, the worse p50 and p99, errors added up."""
    errors: Counter[str] = Counter()
    for r in results:
        errors.update(r.errors)
    return WrkResult(sum(r.requests for r in results), max(r.seconds for r in results),
                     max(r.p50_ms for r in results), max(r.p99_ms for r in results),
                     dict(errors), results[0].foreign_cpu)


def post_many(port: int, reqs: Iterable[tuple[str, bytes]], concurrency: int = 32
              ) -> Counter[str]:
    """POST every (path, body) once over keep-alive connections; count outcomes (the
    exporter's ``status`` field, or the HTTP status). Any other than 2xx is a harness error."""
    counts = _run(_post_many(port, reqs, concurrency))
    bad = {k: v for k, v in counts.items() if k not in _OK and not k.startswith("2")}
    if bad:
        raise HarnessError(f"unexpected responses from port {port}: {dict(counts)}")
    return counts


def _run(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


async def _post_many(port: int, reqs: Iterable[tuple[str, bytes]], concurrency: int
                     ) -> Counter[str]:
    it = iter(reqs)  # shared by the workers: each request is sent exactly once
    counts: Counter[str] = Counter()
    timeout = aiohttp.ClientTimeout(total=30)
    headers = {"Content-Type": "application/json"}

    async def worker(session: aiohttp.ClientSession) -> None:
        for path, body in it:
            async with session.post(f"http://{HOST}:{port}{path}", data=body,
                                    headers=headers) as r:
                data = await r.read()
            key = str(r.status)
            if r.status == 200 and data.startswith(b"{"):
                key = str(json.loads(data).get("status", key))
            counts[key] += 1

    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
        await asyncio.wait_for(
            asyncio.gather(*(worker(session) for _ in range(concurrency))), 900)
    return counts


@dataclass
class Scrape:
    seconds: float
    wire_bytes: int
    body: bytes  # decompressed
    content_type: str


def scrape(server: Server, conn: http.client.HTTPConnection | None = None) -> Scrape:
    """GET /metrics with Prometheus's Accept header and gzip, on ``conn`` if given."""
    c = conn or http.client.HTTPConnection(HOST, server.port, timeout=60)
    try:
        t = time.perf_counter()
        c.request("GET", "/metrics", headers={"Accept": PROM_ACCEPT,
                                              "Accept-Encoding": "gzip"})
        r = c.getresponse()
        data = r.read()
        dt = time.perf_counter() - t
    finally:
        if conn is None:
            c.close()
    if r.status != 200:
        raise HarnessError(f"GET /metrics on {server.name}: {r.status}")
    enc = r.getheader("Content-Encoding", "")
    raw = gzip.decompress(data) if enc == "gzip" else data
    return Scrape(dt, len(data), raw,
                  f"{r.getheader('Content-Type', '')}; encoding={enc or 'identity'}")


class Scraper:
    """While open, scrapes ``server`` once a second from a thread, as Prometheus would."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(30)

    def _loop(self) -> None:
        conn = http.client.HTTPConnection(HOST, self.server.port, timeout=60)
        try:
            while not self._stop.is_set():
                t = time.perf_counter()
                self.times.append(scrape(self.server, conn).seconds)
                self._stop.wait(max(0.0, 1.0 - (time.perf_counter() - t)))
        except (OSError, http.client.HTTPException, HarnessError) as e:
            log(f"scraper: {e}")
        finally:
            conn.close()

    def p50_ms(self) -> float | None:
        return med(self.times) * 1000 if self.times else None
