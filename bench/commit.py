"""``python -m bench.commit``: the SQLite writer thread's commit, shipped vs candidate settings.

In one process, each variant in turn (rotated every repetition) gets the same workload: N
concurrent clients feed webhook events (Initiated/Completed pairs over 30 series, every 20th
an exact redelivery) through ``parse_body`` and ``ExportTracker.ingest`` into a real
``SQLiteStore``, for a few seconds or a number of events, whichever ends first. Around every
transaction on the writer thread it times the wall clock and reads the WAL-index header
(``mxFrame`` and the salt that changes on every WAL restart, see SQLite's walformat.html) to
count the frames the commit appended and the restarts, each of which follows one complete
checkpoint. Variants:

* ``shipped``: ``SQLiteStore`` as it is (``wal_autocheckpoint`` at its default of 1000 pages,
  so about every 1000 frames a commit also checkpoints);
* ``checkpointer``: ``wal_autocheckpoint=0`` on the writer and a thread with its own
  connection running ``PRAGMA wal_checkpoint(PASSIVE)`` every 50 ms until it has caught up;
  under steady load it never does (a commit lands meanwhile), so the WAL never restarts;
* ``hybrid``: the same thread copies the bulk, and once the WAL holds 1000 frames the writer
  thread, after posting a batch's answer, checkpoints the few frames left, so the next
  transaction restarts the WAL;
* ``page1024``: a new file with 1 KiB pages instead of 4 KiB;
* ``no-index``: without the ``deliveries_received`` index (expiry and load use it).

It prints, per variant, the median over repetitions of commit p50/p99/max, webhook (ingest)
p50/p99, commits/s, WAL frames and bytes per commit, checkpoints/s and the largest WAL, and
each figure's ratio to ``shipped``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import sqlite3
import statistics
import struct
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from bench import probes
from bench.common import med
from bench.workload import event
from exporter.cli.flags import parse_settings
from exporter.domain.payload import StatusEvent, parse_body
from exporter.domain.tracker import ExportTracker
from exporter.store.base import Changes
from exporter.store.sqlite import SQLiteStore
from exporter.store.sqlite_rows import Refusal

#: WAL-index header (start of ``-shm``, native byte order): mxFrame at 16, salt at 32.
_MX_FRAME = struct.Struct("=I")
_HEADER_BYTES = 48
_CHECKPOINT_EVERY = 0.05  # seconds between the candidate checkpointer's rounds
_CHECKPOINT_PAGES = 1000  # SQLite's default wal_autocheckpoint, which the shipped store keeps
_UTC = ZoneInfo("UTC")


@dataclass(frozen=True)
class Variant:
    name: str
    page_size: int | None = None  # for the new file; None: SQLite's default (4096)
    checkpointer: bool = False
    tail: bool = False  # the writer finishes each of the checkpointer's checkpoints
    drop_index: bool = False


VARIANTS = (Variant("shipped"), Variant("checkpointer", checkpointer=True),
            Variant("hybrid", checkpointer=True, tail=True),
            Variant("page1024", page_size=1024), Variant("no-index", drop_index=True))


@dataclass
class Sample:
    commit_ms: list[float] = field(default_factory=list)
    frames: list[int] = field(default_factory=list)
    ingest_ms: list[float] = field(default_factory=list)
    restarts: int = 0
    #: Indexes in ``commit_ms`` of the commits that ran a checkpoint (the WAL restarted next).
    checkpointed: list[int] = field(default_factory=list)
    rounds: int = 0  # the checkpointer thread's PASSIVE checkpoints
    peak_frames: int = 0
    page_size: int = 4096
    seconds: float = 0.0


class TimedStore(SQLiteStore):
    """The shipped store with each transaction timed and its WAL frames counted."""

    def __init__(self, path: Path, variant: Variant, sample: Sample) -> None:
        self.sample = sample
        if variant.page_size is not None:
            conn = sqlite3.connect(path)
            conn.execute(f"PRAGMA page_size={variant.page_size}")
            conn.execute("PRAGMA journal_mode=WAL")  # makes the file, with that page size
            conn.close()
        super().__init__(path)
        # Open for the store's lifetime and closed after it: closing any descriptor of the
        # -shm file drops every POSIX lock this process holds on it, SQLite's included.
        self._shm = os.open(f"{path}-shm", os.O_RDONLY)
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self._tail = threading.Event() if variant.tail else None
        self._inline = not variant.checkpointer  # a commit runs the checkpoints
        sample.page_size = self._conn.execute("PRAGMA page_size").fetchone()[0]
        if variant.drop_index:
            self._conn.execute("DROP INDEX deliveries_received")
        if variant.checkpointer:
            self._conn.execute("PRAGMA wal_autocheckpoint=0")
            self._checkpointer = threading.Thread(target=self._checkpoint, daemon=True)
            self._checkpointer.start()

    def _header(self) -> tuple[int, bytes]:
        raw = os.pread(self._shm, _HEADER_BYTES, 0)
        return _MX_FRAME.unpack_from(raw, 16)[0], raw[32:40]

    def _apply(self, batch: list[Changes]) -> Refusal | None:
        frames0, salt0 = self._header()
        t = time.perf_counter()
        refused = super()._apply(batch)
        self.sample.commit_ms.append((time.perf_counter() - t) * 1000)
        frames1, salt1 = self._header()
        restarted = salt1 != salt0
        self.sample.restarts += restarted
        if restarted and self._inline and len(self.sample.commit_ms) > 1:
            self.sample.checkpointed.append(len(self.sample.commit_ms) - 2)
        self.sample.frames.append(frames1 if restarted else frames1 - frames0)
        self.sample.peak_frames = max(self.sample.peak_frames, frames1)
        return refused

    def _write(self) -> None:
        """The shipped writer loop, plus the hybrid's last step of a checkpoint, timed as
        part of the commit before it (the next batch waits for it)."""
        while (job := self._jobs.get()) is not None:
            loop, rows, batch = job
            error = self._commit_rows(rows)
            loop.call_soon_threadsafe(self._written, batch, error)
            if self._tail is not None and self._tail.is_set():
                self._tail.clear()
                t = time.perf_counter()
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                self.sample.commit_ms[-1] += (time.perf_counter() - t) * 1000

    def _checkpoint(self) -> None:
        conn = self._connect()
        conn.execute("PRAGMA wal_autocheckpoint=0")
        try:
            while not self._stop.wait(_CHECKPOINT_EVERY):
                for _ in range(20):  # until it has copied every frame (hybrid: one round)
                    _, log, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.sample.rounds += 1
                    if self._tail is not None:
                        if log >= _CHECKPOINT_PAGES:
                            self._tail.set()
                        break
                    if done >= log:
                        break
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        if self._checkpointer is not None:
            self._checkpointer.join()
        super().close()
        os.close(self._shm)


def _events(t0: int) -> Callable[[], StatusEvent]:
    """The next event of the workload: pairs with fresh ids, every 20th a redelivery."""
    n = 0
    last: bytes = b""

    def next_event() -> StatusEvent:
        nonlocal n, last
        n += 1
        if n % 20 == 0 and last:
            raw = last
        else:
            rid, completed = divmod(n, 2)
            _, raw = event("bench", rid % 30, rid, "Completed" if completed else "Initiated",
                           t0 + rid % 3600)
            last = raw
        ev = parse_body(raw, "bench", time.time(), _UTC)
        assert isinstance(ev, StatusEvent), ev
        return ev

    return next_event


async def drive(path: Path, variant: Variant, seconds: float, conns: int,
                max_events: int) -> Sample:
    """One variant's run on a new state file; the store is closed (checkpointed) after it."""
    sample = Sample()
    store = TimedStore(path, variant, sample)
    try:
        tracker = ExportTracker(store, parse_settings([], env={}).limits)  # the shipped limits
        next_event = _events(int(time.time()) - 7200)
        sent = 0
        start = time.perf_counter()
        end = start + seconds

        async def client() -> None:
            nonlocal sent
            while sent < max_events and time.perf_counter() < end:
                sent += 1
                ev = next_event()
                t = time.perf_counter()
                await tracker.ingest(ev)
                sample.ingest_ms.append((time.perf_counter() - t) * 1000)

        await asyncio.gather(*(client() for _ in range(conns)))
        sample.seconds = time.perf_counter() - start
    finally:
        store.close()
    return sample


def _pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p * len(s)))]


def summarize(s: Sample) -> dict[str, float]:
    frames = statistics.fmean(s.frames)
    checkpoints = s.rounds if s.rounds else s.restarts
    inline = set(s.checkpointed)
    other = [t for i, t in enumerate(s.commit_ms) if i not in inline]
    return {
        "commit_p50_ms": _pct(s.commit_ms, 0.50), "commit_p99_ms": _pct(s.commit_ms, 0.99),
        "commit_max_ms": max(s.commit_ms),
        "checkpointing_commit_p50_ms": med([s.commit_ms[i] for i in inline] or [math.nan]),
        "other_commit_p99_ms": _pct(other, 0.99),
        "webhook_p50_ms": _pct(s.ingest_ms, 0.50), "webhook_p99_ms": _pct(s.ingest_ms, 0.99),
        "commits_per_s": len(s.commit_ms) / s.seconds,
        "frames_per_commit": frames, "kib_per_commit": frames * (s.page_size + 24) / 1024,
        "checkpoints_per_s": checkpoints / s.seconds,
        "wal_restarts_per_s": s.restarts / s.seconds,
        "wal_peak_mib": s.peak_frames * (s.page_size + 24) / 2**20,
    }


def run(variants: tuple[Variant, ...], reps: int, seconds: float, conns: int,
        max_events: int, directory: Path) -> dict[str, dict[str, float]]:
    """Median over ``reps`` of each variant's figures; the variants' order rotates."""
    runs: dict[str, list[dict[str, float]]] = {v.name: [] for v in variants}
    for rep in range(reps):
        for i in range(len(variants)):
            v = variants[(rep + i) % len(variants)]
            path = directory / f"{v.name}-{rep}.db"
            runs[v.name].append(summarize(asyncio.run(
                drive(path, v, seconds, conns, max_events))))
            for suffix in ("", "-wal", "-shm", ".lock"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    return {name: {k: med([r[k] for r in rs]) for k in rs[0]} for name, rs in runs.items()}


def report(results: dict[str, dict[str, float]], base: str = "shipped") -> str:
    keys = list(results[base])
    lines = ["| variant | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, figures in results.items():
        cells = []
        for k in keys:
            old, new = results[base][k], figures[k]
            ratio = f" ({new / old:.2f}x)" if name != base and old else ""
            cells.append(f"{new:.3g}{ratio}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.commit", description=__doc__.split(
        "\n")[0] if __doc__ else None)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0, help="per variant and repetition")
    ap.add_argument("--conns", type=int, default=8, help="concurrent clients")
    ap.add_argument("--max-events", type=int, default=50_000, help="per variant and repetition")
    ap.add_argument("--variants", default=",".join(v.name for v in VARIANTS),
                    help="comma-separated; the first is the baseline of the ratios")
    ap.add_argument("--dir", type=Path, default=None,
                    help="where the state files go (default: a temporary directory in /tmp)")
    args = ap.parse_args(argv)
    chosen = tuple(v for name in args.variants.split(",") for v in VARIANTS if v.name == name)
    directory = Path(tempfile.mkdtemp(prefix="bench-commit-", dir=args.dir))
    try:
        fsync = probes.fsync_probe(directory, 100)
        results = run(chosen, args.reps, args.seconds, args.conns, args.max_events, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(f"{args.conns} clients, {args.reps} x {args.seconds:g} s per variant (median of "
          f"repetitions); 4 KiB write+fsync p50 {fsync['p50_ms']:.3f} ms, "
          f"p99 {fsync['p99_ms']:.3f} ms before the runs\n")
    print(report(results, chosen[0].name))


if __name__ == "__main__":
    main()
