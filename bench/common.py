"""Paths, run profiles and the few helpers every harness module uses."""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
LUA = BENCH_DIR / "post.lua"
HOST = "127.0.0.1"
QUIET_SHARE = 0.15


class HarnessError(RuntimeError):
    """Something in the harness or the environment failed (not a missed target)."""


@dataclass
class Profile:
    name: str
    reps: int
    duration: int  # seconds per wrk run
    conns: tuple[int, ...]
    sizes: tuple[int, ...]
    held: int  # series held for the scrape-cost figure
    scrapes: int
    scrape_load_seconds: int  # seconds per scraped and per unscraped run at `held` series
    restart_inflight: int
    restart_deliveries: int
    restart_reps: int
    scrape_budget: float = 10.0  # seconds per set of scrapes (at least 3 are always done)
    # On a shared machine: a wrk run during which other processes took more than
    # QUIET_SHARE of the server CPU is repeated, up to this many attempts in all; the
    # quietest attempt counts.
    attempts: int = 1


FULL = Profile("full", reps=3, duration=5, conns=(1, 8, 64), sizes=(100, 1000, 10000),
               held=10000, scrapes=20, scrape_load_seconds=8, restart_inflight=10000,
               restart_deliveries=100000, restart_reps=3, attempts=2)
SMOKE = Profile("smoke", reps=1, duration=1, conns=(1, 8, 64), sizes=(100, 1000), held=1000,
                scrapes=5, scrape_load_seconds=2, restart_inflight=200,
                restart_deliveries=2000, restart_reps=1, scrape_budget=2.0)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def med(xs: list[float]) -> float:
    return float(statistics.median(xs))
