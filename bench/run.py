#!/usr/bin/env python3
"""Side-by-side benchmark of the exporter and the Prometheus Pushgateway (issue 6).

One run starts the exporter (as shipped: durable SQLite state, default access log) and a
Pushgateway, each pinned to one CPU with ``taskset``, and drives them with ``wrk`` pinned to
another CPU. It measures:

1. webhook / push throughput and p50/p99 latency at 1, 8 and 64 connections, alternating the
   servers within each repetition, plus the exporter's no-op ceiling (``POST /-/noop``);
2. ``/metrics`` exposition time and size, and RSS, at about 100, 1,000 and 10,000 series built
   through the webhook (and comparable push groups on the Pushgateway);
3. ingest throughput with 10,000 series held, and webhook p99 while ``/metrics`` is scraped
   every second;
4. exporter restart time with a large state (100,000 deliveries, 10,000 in-flight exports).

It writes ``bench/RESULTS.md`` and ``bench/results.json`` (``--smoke``: one short repetition
at small sizes, written to a temporary directory). Exit status is non-zero only on harness
errors, never because a target is missed.

Standard library only (plus uvloop when the exporter's virtualenv has it). Only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import http.client
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
LUA = BENCH_DIR / "post.lua"
HOST = "127.0.0.1"
# What Prometheus 2.x sends when it scrapes.
PROM_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
PARTNERS = ("Amazon S3", "Google Cloud Storage", "Microsoft Azure", "Partner Four", "Partner Five")
PARTNER_SLUGS = ("amazon_s3", "google_cloud_storage", "azure_blob_storage", "partner_four",
                 "partner_five")
TYPES = ("Events", "Profiles")
FREQS = ("One Time", "Every 4 hours", "Every 8 hours", "Every 12 hours", "Every 24 hours")
FREQ_SLUGS = ("one_time", "4h", "8h", "12h", "24h")
COMBOS = len(PARTNERS) * len(TYPES) * len(FREQS)  # 50 series keys per account
# Sizes count exposed time series, as Prometheus does. One exporter series key exposes about 22
# (14 of them the duration histogram), one Pushgateway push line exposes one; so a size of
# 10,000 series is about 455 exporter keys against 10,000 Pushgateway lines.
SERIES_PER_KEY = 22


class HarnessError(RuntimeError):
    """Something in the harness or the environment failed (not a missed target)."""


@dataclass
class Profile:
    name: str
    reps: int
    duration: int  # seconds per wrk run
    conns: tuple[int, ...]
    sizes: tuple[int, ...]
    held: int  # series held for the "ingest with state" figure
    scrapes: int
    scrape_load_seconds: int
    restart_inflight: int
    restart_deliveries: int
    restart_reps: int
    scrape_budget: float = 10.0  # seconds per set of scrapes (at least 3 are always done)


FULL = Profile("full", reps=3, duration=5, conns=(1, 8, 64), sizes=(100, 1000, 10000),
               held=10000, scrapes=20, scrape_load_seconds=10, restart_inflight=10000,
               restart_deliveries=100000, restart_reps=3)
SMOKE = Profile("smoke", reps=1, duration=1, conns=(1, 8, 64), sizes=(100, 1000), held=1000,
                scrapes=5, scrape_load_seconds=2, restart_inflight=200,
                restart_deliveries=2000, restart_reps=1, scrape_budget=2.0)


# --------------------------------------------------------------------------------------------
# small helpers


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise HarnessError(f"no VmRSS for pid {pid}")


def med(xs: list[float]) -> float:
    return float(statistics.median(xs))


def fmt_range(xs: list[float], digits: int = 0, scale: float = 1.0) -> str:
    if not xs:
        return "n/a"
    v = [x * scale for x in xs]
    f = f"{{:,.{digits}f}}"
    if len(v) == 1:
        return f.format(v[0])
    return f"{f.format(med(v))} [{f.format(min(v))}-{f.format(max(v))}]"


def run_cmd(cmd: list[str]) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"
    return (p.stdout + p.stderr).strip()


def ensure_tools() -> None:
    missing = [t for t in ("wrk", "prometheus-pushgateway", "taskset") if not shutil.which(t)]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise HarnessError(f"missing {missing}; install: apt-get install -y wrk "
                           "prometheus-pushgateway")
    log(f"installing wrk and prometheus-pushgateway (missing: {missing})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "wrk", "prometheus-pushgateway",
                 "util-linux"]):
        subprocess.run(cmd, check=True, env=env, timeout=900, stdout=subprocess.DEVNULL)
    still = [t for t in ("wrk", "prometheus-pushgateway", "taskset") if not shutil.which(t)]
    if still:
        raise HarnessError(f"still missing after apt-get: {still}")


# --------------------------------------------------------------------------------------------
# processes


@dataclass
class Server:
    name: str
    cmd: list[str]
    port: int
    ready_path: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    _log: Any = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> float:
        """Start the process; return seconds from spawn to the first 200 on ready_path."""
        self._log = open(self.log_path, "ab")  # closed in stop()
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **self.env}, cwd=REPO)
        deadline = t0 + timeout
        while time.perf_counter() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError(f"{self.name} exited with {self.proc.returncode}; "
                                   f"log tail:\n{self.log_tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                c = http.client.HTTPConnection(HOST, self.port, timeout=2)
                try:
                    c.request("GET", self.ready_path)
                    r = c.getresponse()
                    r.read()
                    if r.status == 200:
                        return time.perf_counter() - t0
                finally:
                    c.close()
            time.sleep(0.005)
        raise HarnessError(f"{self.name} not ready after {timeout}s; log:\n{self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not stop on signal {sig}; killing")
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"


def pinned(cpu: int | None, cmd: list[str]) -> list[str]:
    return cmd if cpu is None else ["taskset", "-c", str(cpu), *cmd]


# --------------------------------------------------------------------------------------------
# wrk


@dataclass
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


class Bench:
    def __init__(self, args: argparse.Namespace, prof: Profile, work: Path) -> None:
        self.args = args
        self.prof = prof
        self.work = work
        self.servers: list[Server] = []
        self.run_no = 0
        self.t0 = int(time.time())
        self.next_id = 3_000_000_000  # ids for state built by the harness's own client
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) >= 2:
            self.server_cpu: int | None = cpus[0]
            self.load_cpu: int | None = cpus[1]
            os.sched_setaffinity(0, {cpus[1]})  # this harness (client, scraper) too
        else:
            log("fewer than 2 CPUs: not pinning")
            self.server_cpu = self.load_cpu = None
        self.results: dict[str, Any] = {}

    # -- servers ------------------------------------------------------------------------------

    def exporter(self, name: str, state_dir: Path, port: int | None = None) -> Server:
        state_dir.mkdir(parents=True, exist_ok=True)
        port = port or free_port()
        cmd = [sys.executable, "-m", self.args.exporter_module, "--host", HOST, "--port",
               str(port), "--state-path", str(state_dir / "state.db"), "--bench-noop",
               "--max-label-values", "100000"]
        s = Server(name, pinned(self.server_cpu, cmd), port, "/readyz",
                   self.work / f"{name}.log", env=self.args.exporter_env)
        self.servers.append(s)
        return s

    def pushgateway(self) -> Server:
        port = free_port()
        cmd = ["prometheus-pushgateway", f"--web.listen-address={HOST}:{port}",
               "--persistence.file=", "--log.level=warn"]
        s = Server("pushgateway", pinned(self.server_cpu, cmd), port, "/-/ready",
                   self.work / "pushgateway.log")
        self.servers.append(s)
        return s

    def stop_all(self) -> None:
        for s in self.servers:
            try:
                s.stop()
            except Exception as e:  # keep stopping the others
                log(f"stopping {s.name}: {e}")

    # -- load ---------------------------------------------------------------------------------

    def wrk(self, server: Server, path: str, mode: str, conns: int, seconds: int) -> WrkResult:
        self.run_no += 1
        env = {**os.environ, "BENCH_MODE": mode, "BENCH_PATH": path,
               "BENCH_ID_BASE": str(1_000_000_000 + self.run_no * 10_000_000),
               "BENCH_T0": str(self.t0)}
        cmd = pinned(self.load_cpu, ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s",
                                     "--timeout", "30s", "-s", str(LUA),
                                     f"http://{HOST}:{server.port}{path}"])
        before = self.cpu_snapshot(server)
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=seconds + 60,
                           check=False)
        foreign = self.foreign_share(server, before)
        line = next((x for x in p.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
        if p.returncode != 0 or line is None:
            raise HarnessError(f"wrk failed ({p.returncode}): {p.stdout}\n{p.stderr}")
        d = json.loads(line[len("BENCH_JSON "):])
        res = WrkResult(d["requests"], d["duration_us"] / 1e6, d["p50_us"] / 1000,
                        d["p99_us"] / 1000, d["errors"])
        # Non-2xx answers mean the bodies or the harness are wrong: that is a harness error.
        # Socket errors and timeouts are measurements; they are recorded and reported.
        bad = d["errors"]["status"]
        if res.requests == 0 or bad > 0.01 * res.requests:
            raise HarnessError(f"wrk against {server.name}{path}: {bad} non-2xx in "
                               f"{res.requests} requests {d['errors']}; server log:\n"
                               f"{server.log_tail()}")
        if foreign is not None:
            self.results.setdefault("foreign_cpu", []).append(
                {"server": server.name, "path": path, "conns": conns, "share": foreign})
        if sum(d["errors"].values()):
            self.results.setdefault("wrk_errors", []).append(
                {"server": server.name, "path": path, "conns": conns, "seconds": seconds,
                 "requests": res.requests, "errors": d["errors"]})
        time.sleep(0.3)  # let background commits settle between runs
        return res

    def cpu_snapshot(self, server: Server) -> tuple[int, int, int] | None:
        if self.server_cpu is None:
            return None
        busy, total = cpu_jiffies(self.server_cpu)
        return busy, total, proc_jiffies(server.pid)

    def foreign_share(self, server: Server, before: tuple[int, int, int] | None
                      ) -> float | None:
        """Share of the server CPU used by processes other than the server during a run."""
        after = self.cpu_snapshot(server)
        if before is None or after is None or after[1] == before[1]:
            return None
        other = (after[0] - before[0]) - (after[2] - before[2])
        return max(0.0, other / (after[1] - before[1]))

    def post_many(self, server: Server, reqs: Iterable[tuple[str, bytes]],
                  concurrency: int = 32) -> Counter[str]:
        """POST every (path, body) once over keep-alive connections; count outcomes."""
        return run_async(post_many(server.port, reqs, concurrency))

    # -- state builders -----------------------------------------------------------------------

    def event(self, account: str, key: int, rid: int, status: str, when: int) -> tuple[str, bytes]:
        p = PARTNERS[key % 5]
        t = TYPES[(key // 5) % 2]
        f = FREQS[(key // 10) % 5]
        body = json.dumps({"Export Request Id": rid, "Partner": p, "Type": t, "Status": status,
                           "Frequency": f, "Date and Time": clevertap_time(when)})
        return f"/webhook/{account}", body.encode()

    def build_exporter_series(self, server: Server, start: int, stop: int) -> Counter[str]:
        """Series keys [start, stop): account acctNNNN x 50 partner/type/frequency combos.

        Each key gets an Initiated and (except every 10th, left in flight) a Completed run,
        sent in two waves so that no pair arrives out of order.
        """
        ids = {}
        for i in range(start, stop):
            ids[i] = self.next_id
            self.next_id += 1
        when = self.t0 - 3600

        def wave(status: str) -> Iterator[tuple[str, bytes]]:
            for i in range(start, stop):
                if status == "Completed" and i % 10 == 0:
                    continue
                yield self.event(f"acct{i // COMBOS:04d}", i % COMBOS, ids[i], status,
                                 when + (600 if status == "Completed" else 0))

        c = self.post_many(server, wave("Initiated"), 64)
        c += self.post_many(server, wave("Completed"), 64)
        return c

    def build_push_groups(self, server: Server, start: int, stop: int) -> Counter[str]:
        """The same series keys on the Pushgateway: one push group per account (grouping
        label ``account``), each holding one series per partner/type/frequency combination
        (``clevertap_export_last_completed_timestamp_seconds{partner,export_type,frequency}``).
        One group per series key would take minutes to build at 10,000 because the
        Pushgateway re-checks everything it holds on every push."""

        def reqs() -> Iterator[tuple[str, bytes]]:
            for acct in range(start // COMBOS, -(-stop // COMBOS)):
                lines = []
                for k in range(COMBOS):
                    lines.append(
                        f'clevertap_export_last_completed_timestamp_seconds{{partner='
                        f'"{PARTNER_SLUGS[k % 5]}",export_type="{TYPES[(k // 5) % 2].lower()}",'
                        f'frequency="{FREQ_SLUGS[(k // 10) % 5]}"}} {self.t0 - k}\n')
                yield (f"/metrics/job/clevertap_export/account/acct{acct:04d}",
                       "".join(lines).encode())

        return self.post_many(server, reqs(), 4)

    # -- phases -------------------------------------------------------------------------------

    def phase_throughput(self, exp: Server, pgw: Server) -> None:
        prof = self.prof
        targets: list[tuple[str, Server, str, str]] = [
            ("exporter", exp, "/webhook/bench", "webhook"),
            ("pushgateway", pgw, "/metrics/job/bench", "push"),
            ("ceiling", exp, "/-/noop", "webhook"),
        ]
        out: dict[str, dict[str, list[dict[str, Any]]]] = {
            t[0]: {str(c): [] for c in prof.conns} for t in targets}
        for rep in range(prof.reps):
            order = targets[rep % 3:] + targets[:rep % 3]
            for c in prof.conns:
                for name, srv, path, mode in order:
                    r = self.wrk(srv, path, mode, c, prof.duration)
                    out[name][str(c)].append({"rps": r.rps, "p50_ms": r.p50_ms,
                                              "p99_ms": r.p99_ms, "requests": r.requests})
                    log(f"rep {rep + 1} c={c:<3} {name:<12} {r.rps:9.0f} req/s  "
                        f"p50 {r.p50_ms:6.2f} ms  p99 {r.p99_ms:6.2f} ms")
        self.results["throughput"] = out

    def scrape(self, server: Server, conn: http.client.HTTPConnection | None = None
               ) -> tuple[float, int, bytes, str]:
        c = conn or http.client.HTTPConnection(HOST, server.port, timeout=60)
        t = time.perf_counter()
        c.request("GET", "/metrics", headers={"Accept": PROM_ACCEPT,
                                              "Accept-Encoding": "gzip"})
        r = c.getresponse()
        data = r.read()
        dt = time.perf_counter() - t
        if r.status != 200:
            raise HarnessError(f"GET /metrics on {server.name}: {r.status}")
        enc = r.getheader("Content-Encoding", "")
        ctype = r.getheader("Content-Type", "")
        if conn is None:
            c.close()
        raw = gzip.decompress(data) if enc == "gzip" else data
        return dt, len(data), raw, f"{ctype}; encoding={enc or 'identity'}"

    def measure_scrapes(self, server: Server, n: int,
                        write: Callable[[], object] | None) -> dict[str, Any]:
        conn = http.client.HTTPConnection(HOST, server.port, timeout=120)
        times = []
        size = 0
        raw = b""
        ctype = ""
        self.scrape(server, conn)  # warm
        deadline = time.perf_counter() + self.prof.scrape_budget
        for i in range(n):
            if i >= 3 and time.perf_counter() > deadline:
                break  # bounded in time: a slow exposition gets fewer (but >= 3) scrapes
            if write is not None:
                write()
            dt, size, raw, ctype = self.scrape(server, conn)
            times.append(dt)
        conn.close()
        return {"p50_ms": med(times) * 1000, "n": len(times), "min_ms": min(times) * 1000,
                "max_ms": max(times) * 1000, "gzip_bytes": size, "bytes": len(raw),
                "samples": count_samples(raw), "content_type": ctype}

    def phase_sizes(self, exp: Server, pgw: Server) -> None:
        prof = self.prof
        out: dict[str, Any] = {}
        built = 0  # Pushgateway series so far
        built_keys = 0  # exporter series keys so far
        rid = iter(range(4_000_000_000, 4_100_000_000))

        def exp_write() -> None:
            self.post_many(exp, [self.event("bench", 0, next(rid), "Initiated", self.t0)], 1)

        def pgw_write() -> None:
            self.post_many(pgw, [("/metrics/job/bench/instance/scrape",
                                  f"bench_scrape_write {next(rid)}\n".encode())], 1)

        for size in prof.sizes:
            keys_wanted = max(1, round(size / SERIES_PER_KEY))
            t = time.perf_counter()
            ce = self.build_exporter_series(exp, built_keys, keys_wanted)
            te = time.perf_counter() - t
            built_keys = keys_wanted
            t = time.perf_counter()
            cp = self.build_push_groups(pgw, built, size)
            tp = time.perf_counter() - t
            built = size
            log(f"built {size} series: exporter {te:.1f}s {dict(ce)}, pushgateway {tp:.1f}s "
                f"{dict(cp)}")
            _, _, raw, _ = self.scrape(exp)
            keys = raw.count(b"clevertap_export_in_flight{")
            _, _, praw, _ = self.scrape(pgw)
            groups = praw.count(b"push_time_seconds{")
            pkeys = praw.count(b"clevertap_export_last_completed_timestamp_seconds{")
            row: dict[str, Any] = {
                "series_keys_exporter": keys, "push_groups_pushgateway": groups,
                "series_pushgateway": pkeys,
                "build_seconds": {"exporter": te, "pushgateway": tp},
                "exporter": {"idle": [], "after_write": [], "rss_mb": []},
                "pushgateway": {"idle": [], "after_write": [], "rss_mb": []}}
            targets = [("exporter", exp, exp_write), ("pushgateway", pgw, pgw_write)]
            for rep in range(prof.reps):
                for name, srv, w in (targets if rep % 2 == 0 else targets[::-1]):
                    r = row[name]
                    r["idle"].append(self.measure_scrapes(srv, prof.scrapes, None))
                    r["after_write"].append(self.measure_scrapes(srv, prof.scrapes, w))
                    r["rss_mb"].append(rss_mb(srv.pid))
                    log(f"  {name:<12} /metrics p50 idle {r['idle'][-1]['p50_ms']:.2f} ms, "
                        f"after write {r['after_write'][-1]['p50_ms']:.2f} ms, "
                        f"{r['idle'][-1]['gzip_bytes']:,} B gzip "
                        f"({r['idle'][-1]['bytes']:,} B, {r['idle'][-1]['samples']:,} "
                        f"samples), RSS {r['rss_mb'][-1]:.1f} MB")
            out[str(size)] = row
        self.results["sizes"] = out

    def phase_held(self, exp: Server, pgw: Server) -> None:
        """Ingest at 8 connections with the state built above, then under scraping."""
        prof = self.prof
        out: dict[str, Any] = {"held": prof.held, "ingest": {"exporter": [], "pushgateway": []},
                               "scraped": {"exporter": [], "pushgateway": []}}
        targets = [("exporter", exp, "/webhook/bench", "webhook"),
                   ("pushgateway", pgw, "/metrics/job/bench", "push")]
        for rep in range(prof.reps):
            order = targets if rep % 2 == 0 else targets[::-1]
            for name, srv, path, mode in order:
                r = self.wrk(srv, path, mode, 8, prof.duration)
                out["ingest"][name].append({"rps": r.rps, "p50_ms": r.p50_ms,
                                            "p99_ms": r.p99_ms})
                log(f"held {prof.held} rep {rep + 1} {name:<12} {r.rps:9.0f} req/s  "
                    f"p99 {r.p99_ms:6.2f} ms")
            for name, srv, path, mode in order:
                stop = threading.Event()
                scrapes: list[float] = []
                th = threading.Thread(target=self._scraper, args=(srv, stop, scrapes),
                                      daemon=True)
                th.start()
                try:
                    r = self.wrk(srv, path, mode, 8, prof.scrape_load_seconds)
                finally:
                    stop.set()
                    th.join(30)
                out["scraped"][name].append({"rps": r.rps, "p50_ms": r.p50_ms,
                                             "p99_ms": r.p99_ms, "scrapes": len(scrapes),
                                             "scrape_p50_ms": med(scrapes) * 1000
                                             if scrapes else None})
                log(f"held {prof.held} + scrape/1s rep {rep + 1} {name:<12} {r.rps:9.0f} "
                    f"req/s  p99 {r.p99_ms:6.2f} ms  ({len(scrapes)} scrapes)")
        self.results["held"] = out

    def _scraper(self, srv: Server, stop: threading.Event, times: list[float]) -> None:
        conn = http.client.HTTPConnection(HOST, srv.port, timeout=60)
        try:
            while not stop.is_set():
                t = time.perf_counter()
                dt, _, _, _ = self.scrape(srv, conn)
                times.append(dt)
                stop.wait(max(0.0, 1.0 - (time.perf_counter() - t)))
        except Exception as e:
            log(f"scraper: {e}")
        finally:
            conn.close()

    def phase_restart(self) -> None:
        prof = self.prof
        exp = self.exporter("exporter-restart", self.work / "restart")
        exp.start()
        n_inflight = prof.restart_inflight
        n_pairs = (prof.restart_deliveries - n_inflight) // 2
        base = 5_000_000_000
        when = self.t0 - 1800

        def wave(status: str) -> Iterator[tuple[str, bytes]]:
            total = n_pairs if status == "Completed" else n_pairs + n_inflight
            for j in range(total):
                yield self.event(f"restart{j % 4}", j % COMBOS, base + j, status,
                                 when + (300 if status == "Completed" else 0))

        t = time.perf_counter()
        c = self.post_many(exp, wave("Initiated"), 64)
        c += self.post_many(exp, wave("Completed"), 64)
        build = time.perf_counter() - t
        deliveries = c.get("accepted", 0)
        log(f"restart state: {dict(c)} in {build:.1f}s "
            f"({sum(c.values()) / build:.0f} durable webhooks/s from the harness client)")
        inflight_before = in_flight_total(self.scrape(exp)[2])
        db_bytes = sum(p.stat().st_size for p in (self.work / "restart").glob("state.db*"))
        times: list[float] = []
        checks = []
        for rep in range(prof.restart_reps + 1):
            sig = signal.SIGKILL if rep == prof.restart_reps else signal.SIGTERM
            exp.stop(sig)
            dt = exp.start()
            inflight = in_flight_total(self.scrape(exp)[2])
            # an early delivery again: must still be remembered
            dup = self.post_many(exp, [self.event("restart0", 0, base, "Initiated", when)], 1)
            checks.append({"signal": signal.Signals(sig).name, "seconds": dt,
                           "in_flight": inflight, "redelivery": dict(dup)})
            if sig == signal.SIGTERM:
                times.append(dt)
            log(f"restart after {signal.Signals(sig).name}: {dt:.3f}s to /readyz, in_flight "
                f"{inflight} (before {inflight_before}), early redelivery -> {dict(dup)}")
        self.results["restart"] = {"deliveries": deliveries, "in_flight_before": inflight_before,
                                   "build_seconds": build, "db_bytes": db_bytes,
                                   "seconds": times, "runs": checks,
                                   "rss_mb": rss_mb(exp.pid)}
        exp.stop()

    # -- main ---------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        self.results["meta"] = machine_info(self.args, self.prof)
        self.results["meta"]["pinning"] = {"servers": self.server_cpu, "load": self.load_cpu}
        self.results["meta"]["fsync"] = fsync_probe(self.work / "main")
        exp = self.exporter("exporter", self.work / "main")
        pgw = self.pushgateway()
        exp.start()
        pgw.start()
        self.results["rss_idle_mb"] = {"exporter": rss_mb(exp.pid),
                                       "pushgateway": rss_mb(pgw.pid)}
        log(f"exporter pid {exp.pid} port {exp.port}; pushgateway pid {pgw.pid} port {pgw.port}")
        self.phase_throughput(exp, pgw)
        self.phase_sizes(exp, pgw)
        self.phase_held(exp, pgw)
        exp.stop()
        pgw.stop()
        self.phase_restart()
        return self.results


# --------------------------------------------------------------------------------------------
# asyncio keep-alive HTTP/1.1 client for building state (exact counts, no wrk overshoot)


def run_async(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:
        return asyncio.run(coro)


async def post_many(port: int, reqs: Iterable[tuple[str, bytes]], concurrency: int
                    ) -> Counter[str]:
    it = iter(reqs)
    counts: Counter[str] = Counter()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        try:
            for path, body in it:
                writer.write(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                             b"application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (path.encode(), len(body), body))
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
                lines = head.split(b"\r\n")
                status = int(lines[0].split()[1])
                hdrs = {}
                for ln in lines[1:]:
                    if b":" in ln:
                        k, v = ln.split(b":", 1)
                        hdrs[k.strip().lower()] = v.strip()
                if b"content-length" in hdrs:
                    data = await reader.readexactly(int(hdrs[b"content-length"]))
                elif hdrs.get(b"transfer-encoding", b"").lower() == b"chunked":
                    data = b""
                    while True:
                        n = int((await reader.readline()).split(b";")[0], 16)
                        data += await reader.readexactly(n + 2)
                        if n == 0:
                            break
                else:
                    raise HarnessError(f"response without length from port {port}")
                key = str(status)
                if status == 200 and data.startswith(b"{"):
                    with contextlib.suppress(ValueError):
                        key = str(json.loads(data).get("status", status))
                counts[key] += 1
                if hdrs.get(b"connection", b"").lower() == b"close":
                    writer.close()
                    reader, writer = await asyncio.open_connection(HOST, port)
        finally:
            writer.close()

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), 900)
    bad = {k: v for k, v in counts.items() if not (k in ("accepted", "duplicate", "200")
                                                   or k.startswith("2"))}
    if bad:
        raise HarnessError(f"unexpected responses from port {port}: {dict(counts)}")
    return counts


# --------------------------------------------------------------------------------------------
# parsing and reporting


def clevertap_time(t: int) -> str:
    d = datetime.fromtimestamp(t, UTC)
    return f"{d:%d/%m/%Y} {int(d.strftime('%I'))}:{d:%M:%S %p}"


def p50s(r: dict[str, Any], kind: str) -> list[float]:
    return [x["p50_ms"] for x in r[kind]]


def cpu_jiffies(cpu: int) -> tuple[int, int]:
    """(busy, total) jiffies of one CPU from /proc/stat."""
    for ln in Path("/proc/stat").read_text().splitlines():
        if ln.startswith(f"cpu{cpu} "):
            v = [int(x) for x in ln.split()[1:9]]
            return sum(v) - v[3] - v[4], sum(v)
    raise HarnessError(f"cpu{cpu} not in /proc/stat")


def proc_jiffies(pid: int) -> int:
    """utime + stime of a process (all threads)."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


def fsync_probe(directory: Path, n: int = 200) -> dict[str, float]:
    """Latency of write(4 KiB) + fsync in the state directory's file system."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "fsync-probe"
    times = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(n):
            os.write(fd, b"x" * 4096)
            t = time.perf_counter()
            os.fsync(fd)
            times.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        path.unlink()
    times.sort()
    return {"p50_ms": med(times) * 1000, "p99_ms": times[int(n * 0.99)] * 1000}


def count_samples(raw: bytes) -> int:
    return sum(1 for ln in raw.splitlines() if ln and not ln.startswith(b"#"))


def in_flight_total(raw: bytes) -> float:
    total = 0.0
    for ln in raw.splitlines():
        if ln.startswith(b"clevertap_export_in_flight{"):
            total += float(ln.rsplit(b"}", 1)[1].split()[0])
    return total


def machine_info(args: argparse.Namespace, prof: Profile) -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                model = ln.split(":", 1)[1].strip()
                break
    vers = {}
    for pkg in ("aiohttp", "prometheus-client", "pydantic", "uvloop", "orjson",
                "clevertap-export-exporter"):
        try:
            vers[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            vers[pkg] = "not installed"
    pg = run_cmd(["prometheus-pushgateway", "--version"]).splitlines()
    wrk = run_cmd(["wrk", "-v"]).splitlines()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(), "cpu": model, "kernel": platform.release(),
        "mem_total": run_cmd(["sh", "-c", "grep MemTotal /proc/meminfo"]),
        "python": platform.python_version(), "versions": vers,
        "sqlite": __import__("sqlite3").sqlite_version,
        "pushgateway": pg[0] if pg else "?", "wrk": wrk[0] if wrk else "?",
        "state_dir": tempfile.gettempdir(),
        "loadavg_start": Path("/proc/loadavg").read_text().strip(),
        "git": run_cmd(["git", "-C", str(REPO), "describe", "--always", "--dirty"]),
        "command": " ".join(["python", "bench/run.py", *sys.argv[1:]]),
        "profile": prof.__dict__,
    }


def write_report(res: dict[str, Any], path: Path) -> None:
    m = res["meta"]
    p = m["profile"]
    L: list[str] = []
    a = L.append
    a("# Benchmark results: exporter vs Prometheus Pushgateway")
    a("")
    a(f"Generated by `make bench` (`{m['command']}`) on {m['date']}, exporter at git "
      f"`{m['git']}`. Every figure is the median of {p['reps']} repetition(s) with "
      "[min-max]; the servers are alternated within each repetition so drift hits both.")
    a("")
    a("## Machine and versions")
    a("")
    a(f"- {m['nproc']} CPUs, {m['cpu']}, Linux {m['kernel']}, {m['mem_total']}")
    a(f"- Python {m['python']}, " + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
      + f", SQLite {m['sqlite']}")
    a(f"- {m['pushgateway']}; {m['wrk']}")
    pin = m["pinning"]
    fs = m["fsync"]
    a(f"- state directory `{m['state_dir']}`: write 4 KiB + fsync p50 {fs['p50_ms']:.3f} ms, "
      f"p99 {fs['p99_ms']:.3f} ms (200 probes before the run)")
    a(f"- exporter and Pushgateway each pinned to CPU {pin['servers']} (`taskset`), wrk and "
      f"this harness to CPU {pin['load']}; wrk `-t1`, {p['duration']} s per run, "
      "`bench/post.lua` bodies")
    fc = [x["share"] for x in res.get("foreign_cpu", [])]
    if fc:
        a(f"- noise: other processes on the machine used {med(fc) * 100:.0f}% "
          f"[{min(fc) * 100:.0f}-{max(fc) * 100:.0f}%] of the servers' CPU during the wrk "
          f"runs (CPU busy time minus the server's own); load average at start "
          f"`{m['loadavg_start']}`, at end `{m.get('loadavg_end', '?')}`"
          + (". **The machine was not quiet: absolute figures are depressed and noisy; "
             "compare the ratios.**" if med(fc) > 0.05 else ""))
    a("- exporter: `python -m exporter --host 127.0.0.1 --port P --state-path DIR/state.db "
      "--bench-noop --max-label-values 100000` (durable SQLite, default access log); "
      "Pushgateway: `prometheus-pushgateway --web.listen-address=127.0.0.1:P "
      "--persistence.file= --log.level=warn`")
    a("")
    tp = res["throughput"]
    conns = [str(c) for c in p["conns"]]

    def rps(name: str, c: str) -> list[float]:
        return [r["rps"] for r in tp[name][c]]

    def p99(name: str, c: str) -> list[float]:
        return [r["p99_ms"] for r in tp[name][c]]

    a("## 1. Webhook / push throughput and latency")
    a("")
    a("Exporter: `POST /webhook/bench`, CleverTap bodies (Initiated/Completed pairs with "
      "distinct ids, documented date format, 5% exact redeliveries), every 200 durable. "
      "Ceiling: the same exporter's `POST /-/noop` (same bodies, not read, parsed or stored). "
      "Pushgateway: `POST /metrics/job/bench/instance/N` with a one-line text metric "
      "(N cycles over 10 groups).")
    a("")
    a("| conns | server | req/s | p50 ms | p99 ms |")
    a("|---|---|---|---|---|")
    for c in conns:
        for name in ("exporter", "pushgateway", "ceiling"):
            a(f"| {c} | {name} | {fmt_range(rps(name, c))} | "
              f"{fmt_range([r['p50_ms'] for r in tp[name][c]], 2)} | "
              f"{fmt_range(p99(name, c), 2)} |")
    a("")
    a("| conns | exporter / Pushgateway req/s | exporter / ceiling req/s | "
      "exporter p99 / Pushgateway p99 |")
    a("|---|---|---|---|")
    for c in conns:
        a(f"| {c} | {med(rps('exporter', c)) / med(rps('pushgateway', c)):.2f} | "
          f"{med(rps('exporter', c)) / med(rps('ceiling', c)):.2f} | "
          f"{med(p99('exporter', c)) / med(p99('pushgateway', c)):.2f} |")
    a("")
    sz = res["sizes"]
    a("## 2. `/metrics` exposition and RSS by size")
    a("")
    a("Sizes count exposed time series, as Prometheus does. Exporter state built through "
      f"the webhook: size / {SERIES_PER_KEY} series keys (each exposes about "
      f"{SERIES_PER_KEY} series, 14 of them its duration histogram), accounts `acctNNNN` x 5 "
      "partners x 2 types x 5 frequencies, each key one Initiated and (9 in 10) one Completed "
      "run. The Pushgateway holds `size` series: push groups of 50 per account (grouping "
      "label `account`), each line one `clevertap_export_last_completed_timestamp_seconds"
      "{partner,export_type,frequency}` series, plus the `push_time_seconds`/"
      "`push_failure_time_seconds` it adds per group. (One group per series would take many "
      "minutes to build at 10,000 because the Pushgateway re-checks everything it holds on "
      "each push.) "
      f"Scrapes as Prometheus sends them (its Accept header, gzip): the p50 of {p['scrapes']} "
      "scrapes, median [min-max] over the repetitions; "
      "*idle* = nothing changed between scrapes, *after write* = one webhook/push before each "
      "scrape. The throughput runs above add a few dozen keys/groups of their own.")
    a("")
    a("| target size | server | series keys | samples | bytes (gzip) | "
      "p50 idle ms | p50 after write ms | RSS MB |")
    a("|---|---|---|---|---|---|---|---|")
    a(f"| 0 (just started) | exporter | | | | | | {res['rss_idle_mb']['exporter']:.1f} |")
    a(f"| 0 (just started) | pushgateway | | | | | | {res['rss_idle_mb']['pushgateway']:.1f} |")
    for size, row in sz.items():
        for name, n in (("exporter", row["series_keys_exporter"]),
                        ("pushgateway", row["series_pushgateway"])):
            r = row[name]
            last = r["idle"][-1]
            a(f"| {int(size):,} | {name} | {n:,} | {last['samples']:,} | "
              f"{last['bytes']:,} ({last['gzip_bytes']:,}) | "
              f"{fmt_range(p50s(r, 'idle'), 2)} | {fmt_range(p50s(r, 'after_write'), 2)} | "
              f"{fmt_range(r['rss_mb'], 1)} |")
    a("")
    ct = {n: sz[next(iter(sz))][n]["idle"][0]["content_type"] for n in ("exporter", "pushgateway")}
    a(f"Content types served: exporter `{ct['exporter']}`, Pushgateway `{ct['pushgateway']}`.")
    a("")
    a("| target size | exporter / Pushgateway /metrics p50 (idle, after write) | "
      "exporter / Pushgateway RSS |")
    a("|---|---|---|")
    for size, row in sz.items():
        e, g = row["exporter"], row["pushgateway"]
        a(f"| {int(size):,} | {med(p50s(e, 'idle')) / med(p50s(g, 'idle')):.2f}, "
          f"{med(p50s(e, 'after_write')) / med(p50s(g, 'after_write')):.2f} | "
          f"{med(e['rss_mb']) / med(g['rss_mb']):.2f} |")
    a("")
    h = res["held"]
    a(f"## 3. Ingest with {h['held']:,} series held, and under scraping")
    a("")
    a(f"8 connections, same bodies as section 1, after section 2 built {h['held']:,} "
      "series (exporter keys x ~22, Pushgateway lines). *Scraped*: a client GETs "
      "`/metrics` (gzip) once a second during the run.")
    a("")
    a("| server | req/s, ~0 held (sec. 1) | req/s, held | held / ~0 | p99 ms held | "
      "req/s scraped | p99 ms scraped | scrape p50 ms during load |")
    a("|---|---|---|---|---|---|---|---|")
    for name in ("exporter", "pushgateway"):
        base = rps(name, "8") if "8" in tp[name] else []
        held = [r["rps"] for r in h["ingest"][name]]
        sc = h["scraped"][name]
        ratio = f"{med(held) / med(base):.2f}" if base else "n/a"
        a(f"| {name} | {fmt_range(base)} | {fmt_range(held)} | {ratio} | "
          f"{fmt_range([r['p99_ms'] for r in h['ingest'][name]], 2)} | "
          f"{fmt_range([r['rps'] for r in sc])} | {fmt_range([r['p99_ms'] for r in sc], 2)} | "
          f"{fmt_range([r['scrape_p50_ms'] for r in sc if r['scrape_p50_ms']], 1)} |")
    a("")
    rs = res["restart"]
    a("## 4. Restart with a large state")
    a("")
    a(f"A separate exporter was given {rs['deliveries']:,} accepted deliveries through the "
      f"webhook ({p['restart_inflight']:,} Initiated left in flight, the rest "
      f"Initiated/Completed pairs; {rs['build_seconds']:.1f} s from the harness's own "
      f"64-connection client), state files {rs['db_bytes'] / 1e6:.1f} MB. Time from process "
      "spawn (`taskset ... python -m exporter`) to the first `200` on `/readyz`:")
    a("")
    a(f"- after SIGTERM: {fmt_range(rs['seconds'], 3)} s")
    for r in rs["runs"]:
        a(f"- run after {r['signal']}: {r['seconds']:.3f} s; in_flight after restart "
          f"{r['in_flight']:,.0f} (before {rs['in_flight_before']:,.0f}); an early delivery "
          f"posted again -> {r['redelivery']}")
    a(f"- RSS after restart: {rs['rss_mb']:.1f} MB")
    a("")
    a("## Targets (issue 6)")
    a("")
    a("| target | measured | |")
    a("|---|---|---|")

    def row(name: str, measured: str, ok: bool) -> None:
        a(f"| {name} | {measured} | {'met' if ok else '**not met**'} |")

    for c in ("8", "64"):
        if c in tp["exporter"]:
            r = med(rps("exporter", c)) / med(rps("pushgateway", c))
            row(f"throughput >= 2x Pushgateway at {c} conns", f"{r:.2f}x", r >= 2)
            r = med(rps("exporter", c)) / med(rps("ceiling", c))
            row(f"throughput >= 0.5x own no-op ceiling at {c} conns", f"{r:.2f}x", r >= 0.5)
    if "8" in tp["exporter"]:
        e, g = med(p99("exporter", "8")), med(p99("pushgateway", "8"))
        row("p99 at 8 conns below Pushgateway's", f"{e:.2f} ms vs {g:.2f} ms", e < g)
        held = med([r["rps"] for r in h["ingest"]["exporter"]])
        r = held / med(rps("exporter", "8"))
        row(f"ingest with {h['held']:,} series within 20% of ~0 series", f"{r:.2f}x", r >= 0.8)
    big = sz[str(max(int(s) for s in sz))]
    e, g = med(p50s(big["exporter"], "after_write")), med(p50s(big["pushgateway"], "after_write"))
    row(f"/metrics p50 at {int(max(int(s) for s in sz)):,} series faster than Pushgateway's "
        "(after write)", f"{e:.2f} ms vs {g:.2f} ms", e < g)
    e, g = med(p50s(big["exporter"], "idle")), med(p50s(big["pushgateway"], "idle"))
    row("... (idle, cached)", f"{e:.2f} ms vs {g:.2f} ms", e < g)
    sp = med([r["p99_ms"] for r in h["scraped"]["exporter"]])
    row(f"webhook p99 < 5 ms at 8 conns while scraped every second ({h['held']:,} series)",
        f"{sp:.2f} ms", sp < 5)
    worst = max(med(sz[s]["exporter"]["rss_mb"]) / med(sz[s]["pushgateway"]["rss_mb"])
                for s in sz)
    row("RSS within 3x Pushgateway's at each size", f"worst {worst:.2f}x", worst <= 3)
    rt = med(rs["seconds"]) if rs["seconds"] else float("inf")
    row(f"restart with {rs['deliveries']:,} deliveries + {p['restart_inflight']:,} in flight "
        "< 2 s", f"{rt:.3f} s", rt < 2)
    a("")
    errs = res.get("wrk_errors", [])
    if errs:
        a("wrk runs with socket errors or timeouts (30 s timeout; not counted in latency):")
        a("")
        for e in errs:
            a(f"- {e['server']} `{e['path']}` c={e['conns']}: {e['errors']} in "
              f"{e['requests']:,} requests")
        a("")
    a("Raw numbers: `bench/results.json`.")
    path.write_text("\n".join(L) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--smoke", action="store_true",
                    help="one short repetition at small sizes; writes to a temp directory")
    ap.add_argument("--out", type=Path, help="directory for RESULTS.md and results.json "
                    "(default: bench/, or a temporary directory with --smoke)")
    ap.add_argument("--reps", type=int, help="override the number of repetitions")
    ap.add_argument("--duration", type=int, help="override seconds per wrk run")
    ap.add_argument("--exporter-module", default="exporter", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.exporter_env = {}
    prof = SMOKE if args.smoke else FULL
    if args.reps:
        prof.reps = args.reps
    if args.duration:
        prof.duration = args.duration
    ensure_tools()
    work = Path(tempfile.mkdtemp(prefix="clevertap-bench-"))
    out = args.out or (work if args.smoke else BENCH_DIR)
    out.mkdir(parents=True, exist_ok=True)
    bench = Bench(args, prof, work)

    def on_signal(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    started = time.perf_counter()
    ok = False
    try:
        res = bench.run()
        res["meta"]["wall_seconds"] = time.perf_counter() - started
        res["meta"]["loadavg_end"] = Path("/proc/loadavg").read_text().strip()
        (out / "results.json").write_text(json.dumps(res, indent=1) + "\n")
        write_report(res, out / "RESULTS.md")
        ok = True
    except HarnessError as e:
        log(f"harness error: {e}")
        return 2
    finally:
        bench.stop_all()
        if ok or args.smoke:
            shutil.rmtree(work / "main", ignore_errors=True)
            shutil.rmtree(work / "restart", ignore_errors=True)
    log(f"done in {time.perf_counter() - started:.0f}s; wrote {out / 'RESULTS.md'}")
    if args.smoke:
        print((out / "RESULTS.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
