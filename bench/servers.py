"""The processes under test: start, pin to a CPU, wait until ready, stop, read RSS and CPU."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

from bench.common import HOST, REPO, HarnessError, log

TOOLS = ("wrk", "prometheus-pushgateway", "taskset")


class ServerExited(HarnessError):
    """The server process ended before it answered its readiness check."""

    def __init__(self, name: str, returncode: int, log_tail: str) -> None:
        super().__init__(f"{name} exited with {returncode}; log tail:\n{log_tail}")
        self.log_tail = log_tail


@dataclass(frozen=True)
class Pinning:
    """Servers on one CPU, load generator and harness on another, so they do not compete."""

    server_cpu: int | None
    load_cpu: int | None

    @classmethod
    def for_this_machine(cls) -> Pinning:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            log("fewer than 2 CPUs: not pinning")
            return UNPINNED
        os.sched_setaffinity(0, {cpus[1]})  # the harness's own client and scraper too
        return cls(cpus[0], cpus[1])

    def server(self, cmd: list[str]) -> list[str]:
        return _pinned(self.server_cpu, cmd)

    def load(self, cmd: list[str]) -> list[str]:
        return _pinned(self.load_cpu, cmd)


#: No pinning: what a machine with one CPU gets, and the harness's own tests.
UNPINNED: Final = Pinning(None, None)


def _pinned(cpu: int | None, cmd: list[str]) -> list[str]:
    return cmd if cpu is None else ["taskset", "-c", str(cpu), *cmd]


@dataclass
class Server:
    name: str
    cmd: list[str]
    port: int
    ready_path: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise HarnessError(f"{self.name} is not running")
        return self.proc.pid

    def start(self, timeout: float = 60.0) -> float:
        """Start the process; return seconds from spawn to the first 200 on ready_path."""
        self._log = self.log_path.open("ab")  # closed in stop()
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **self.env}, cwd=REPO)
        deadline = t0 + timeout
        while time.perf_counter() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                tail = self.log_tail()
                self.stop()
                raise ServerExited(self.name, rc, tail)
            if self._ready():
                return time.perf_counter() - t0
            time.sleep(0.005)
        self.stop(signal.SIGKILL)
        raise HarnessError(f"{self.name} not ready after {timeout}s; log:\n{self.log_tail()}")

    def _ready(self) -> bool:
        c = http.client.HTTPConnection(HOST, self.port, timeout=2)
        try:
            c.request("GET", self.ready_path)
            r = c.getresponse()
            r.read()
            return r.status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            c.close()

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


def exporter(name: str, pin: Pinning, work: Path, state_args: list[str],
             port: int | None = None) -> Server:
    """The exporter as shipped, with its no-op route and a label cap high enough for 10,000
    series; ``state_args`` say where it keeps its state (see ``bench.backends``)."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "exporter", "--host", HOST, "--port", str(port),
           *state_args, "--bench-noop", "--max-label-values", "100000"]
    return Server(name, pin.server(cmd), port, "/readyz", work / f"{name}.log")


def pushgateway(pin: Pinning, work: Path) -> Server:
    port = free_port()
    cmd = ["prometheus-pushgateway", f"--web.listen-address={HOST}:{port}",
           "--persistence.file=", "--log.level=warn"]
    return Server("pushgateway", pin.server(cmd), port, "/-/ready", work / "pushgateway.log")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise HarnessError(f"no VmRSS for pid {pid}")


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


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (a PostgreSQL postmaster's backends)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
    return out


class ForeignCpu:
    """Share of the server CPU used by processes other than ``pids`` (the servers under test
    and their database) between start and ``share()``."""

    def __init__(self, cpu: int | None, pids: list[int]) -> None:
        self.cpu = cpu
        self.pids = pids
        self.before = self._snapshot()

    def _snapshot(self) -> tuple[int, int, dict[int, int]] | None:
        if self.cpu is None:
            return None
        own = {}
        for pid in self.pids:
            with contextlib.suppress(OSError):  # a database backend may have ended
                own[pid] = proc_jiffies(pid)
        with contextlib.suppress(OSError):
            return (*cpu_jiffies(self.cpu), own)
        return None

    def share(self) -> float | None:
        after = self._snapshot()
        if self.before is None or after is None or after[1] == self.before[1]:
            return None
        was = self.before[2]
        ours = sum(j - was[pid] for pid, j in after[2].items() if pid in was)
        other = (after[0] - self.before[0]) - ours
        return max(0.0, other / (after[1] - self.before[1]))


def ensure_tools() -> None:
    """Install wrk and the Pushgateway with apt-get when run as root on Debian."""
    missing = [t for t in TOOLS if not shutil.which(t)]
    if not missing:
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise HarnessError(f"missing {missing}; install: apt-get install -y wrk "
                           "prometheus-pushgateway util-linux")
    log(f"installing wrk and prometheus-pushgateway (missing: {missing})")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "wrk", "prometheus-pushgateway",
                 "util-linux"]):
        subprocess.run(cmd, check=True, env=env, timeout=900, stdout=subprocess.DEVNULL)
    still = [t for t in TOOLS if not shutil.which(t)]
    if still:
        raise HarnessError(f"still missing after apt-get: {still}")
