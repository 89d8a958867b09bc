"""Measurements of the machine rather than the servers: the disk's sync latency, whether
``perf stat`` can count instructions here, and the versions and hardware for the report."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import REPO, HarnessError, Profile, med

PACKAGES = ("aiohttp", "prometheus-client", "pydantic", "uvloop", "orjson",
            "clevertap-export-exporter")


def fsync_probe(directory: Path, n: int = 200) -> dict[str, float]:
    """Latency of one write(4 KiB) + fsync in ``directory``'s file system: a durable batch
    cannot cost less, so ``connections / p50`` bounds durable req/s from above."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "fsync-probe"
    times = []
    block = b"x" * 4096
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for _ in range(n):
            t = time.perf_counter()
            os.write(fd, block)
            os.fsync(fd)
            times.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        path.unlink()
    times.sort()
    return {"p50_ms": med(times) * 1000, "p99_ms": times[int(n * 0.99)] * 1000, "n": n}


def _perf_count(stderr: str, event: str) -> int | str:
    """The count from ``perf stat -x,`` output, or why there is none."""
    for ln in stderr.splitlines():
        fields = ln.split(",")
        if len(fields) > 2 and fields[2].startswith(event):
            try:
                return int(float(fields[0]))
            except ValueError:
                return f"perf stat -e {event}: {fields[0]}"  # e.g. "<not supported>"
    return f"perf stat -e {event}: no count in {stderr.strip()[-200:]!r}"


def perf_unsupported(event: str = "instructions") -> str | None:
    """None if ``perf stat -e event`` counts here, else why not (a VM often has no PMU)."""
    if not shutil.which("perf"):
        return "perf not installed (Debian package linux-perf)"
    p = subprocess.run(["perf", "stat", "-x,", "-e", event, "true"], capture_output=True,
                       text=True, timeout=30, check=False)
    count = _perf_count(p.stderr, event)
    return count if isinstance(count, str) else None


class PerfCounter:
    """Counts ``event`` in process ``pid`` for ``seconds``, started beside a wrk run."""

    def __init__(self, pid: int, seconds: float, event: str = "instructions") -> None:
        self.event = event
        self.timeout = seconds + 30
        self.proc = subprocess.Popen(
            ["perf", "stat", "-x,", "-e", event, "-p", str(pid), "--", "sleep", str(seconds)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def result(self) -> int:
        _, err = self.proc.communicate(timeout=self.timeout)
        count = _perf_count(err, self.event)
        if isinstance(count, str):
            raise HarnessError(count)
        return count


def _run_text(cmd: list[str]) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"
    return (p.stdout + p.stderr).strip()


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else "?"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                return ln.split(":", 1)[1].strip()
    return "unknown"


def _version(pkg: str) -> str:
    try:
        return importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_info(prof: Profile) -> dict[str, Any]:
    mem = next((ln for ln in Path("/proc/meminfo").read_text().splitlines()
                if ln.startswith("MemTotal")), "MemTotal: ?")
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(), "cpu": _cpu_model(), "kernel": platform.release(),
        "mem_total": " ".join(mem.split()),
        "python": platform.python_version(),
        "versions": {pkg: _version(pkg) for pkg in PACKAGES},
        "sqlite": sqlite3.sqlite_version,
        "pushgateway": _first_line(_run_text(["prometheus-pushgateway", "--version"])),
        "wrk": _first_line(_run_text(["wrk", "-v"])),
        "state_dir": tempfile.gettempdir(),
        "loadavg_start": Path("/proc/loadavg").read_text().strip(),
        "git": _run_text(["git", "-C", str(REPO), "describe", "--always", "--dirty"]),
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "profile": dict(prof.__dict__),
    }
