"""Machine probes and the perf stat parsing, with the real perf where it is installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.common import SMOKE
from bench.probes import PerfCounter, fsync_probe, machine_info, perf_unsupported


def test_fsync_probe_times_each_sync_and_cleans_up(tmp_path: Path) -> None:
    r = fsync_probe(tmp_path, n=20)
    assert 0 < r["p50_ms"] <= r["p99_ms"] and r["n"] == 20
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not shutil.which("perf"), reason="perf not installed")
def test_perf_counts_a_software_event_and_explains_a_missing_one() -> None:
    assert perf_unsupported("task-clock") is None
    why = perf_unsupported("no-such-event")
    assert why is not None and "no-such-event" in why
    busy = subprocess.Popen([sys.executable, "-c",
                             "import time\nt = time.time() + 1\nwhile time.time() < t: pass"])
    try:
        assert PerfCounter(busy.pid, 0.5, "task-clock").result() > 0
    finally:
        busy.wait(10)


def test_machine_info_names_the_command_and_versions() -> None:
    m = machine_info(SMOKE)
    assert m["command"].startswith("python -m bench")
    assert m["versions"]["aiohttp"] != "not installed"
    assert m["profile"]["name"] == "smoke"
