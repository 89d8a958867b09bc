"""Where the exporter under test keeps its state: a backend gives the exporter's state flags,
counts the transactions it has committed (to infer group-commit batch sizes), and cleans up.

SQLite is what ships. PostgreSQL runs a throwaway cluster (initdb/pg_ctl as the ``postgres``
user on a free loopback port) for the ``--state-url`` backend being added to the exporter.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Final, Protocol

from bench.common import HOST, HarnessError
from bench.servers import Pinning, child_pids, free_port

# In the WAL-index header at the start of the -shm file, the u32 ``iChange`` (native byte
# order) counts committed transactions and survives WAL restarts (SQLite's wal.c,
# WalIndexHdr): reading it needs no change to the exporter and takes no lock.
_ICHANGE = struct.Struct("=I")
_ICHANGE_OFFSET = 8


class Backend(Protocol):
    name: str

    def state_args(self) -> list[str]:
        """The exporter flags that select this backend."""
        ...

    def commits(self) -> int | None:
        """Transactions committed so far (a counter; only deltas mean anything), or None."""
        ...

    def pids(self) -> list[int]:
        """The database's own processes (their CPU is the backend's, not noise)."""
        ...

    def close(self) -> None: ...


def commit_delta(before: int | None, after: int | None) -> int | None:
    if before is None or after is None:
        return None
    return (after - before) % 2**32  # iChange is a wrapping u32


class SqliteBackend:
    name = "sqlite"

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.db = directory / "state.db"

    def state_args(self) -> list[str]:
        return ["--state-path", str(self.db)]

    def commits(self) -> int | None:
        try:
            with open(f"{self.db}-shm", "rb") as f:
                head = f.read(_ICHANGE_OFFSET + _ICHANGE.size)
        except OSError:
            return None
        if len(head) < _ICHANGE_OFFSET + _ICHANGE.size:
            return None
        return int(_ICHANGE.unpack_from(head, _ICHANGE_OFFSET)[0])

    def pids(self) -> list[int]:
        return []  # in the exporter's process

    def disk_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.directory.glob("state.db*"))

    def close(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


#: Where Debian's postgresql packages put the server tools, one directory per major version
#: (they are not on PATH).
SERVERS: Final = Path("/usr/lib/postgresql")


def server_bin() -> Path | None:
    """The newest installed PostgreSQL's server tools directory (initdb, pg_ctl, postgres)."""
    found = sorted(SERVERS.glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


class PostgresBackend:
    """A throwaway PostgreSQL cluster, pinned with the servers, fsync on (the default)."""

    name = "postgresql"
    user = "bench"
    database = "bench"

    def __init__(self, pin: Pinning) -> None:
        found = server_bin()
        if found is None:
            raise HarnessError(f"PostgreSQL server tools (initdb, pg_ctl) not found in {SERVERS}"
                               ": apt-get install -y postgresql")
        self.bin = found
        self.pin = pin
        self.port = free_port()
        # Its own directory, owned by the cluster's user: the harness's work dir is private.
        self.root = Path(tempfile.mkdtemp(prefix="clevertap-bench-pg-"))
        self.data = self.root / "data"
        self.started = False
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")

    def _run(self, tool: str, *args: str, timeout: float = 120) -> None:
        # initdb refuses to run as root; the cluster belongs to the postgres user.
        as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        cmd = self.pin.server([*as_owner, str(self.bin / tool), *args])
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if p.returncode != 0:
            raise HarnessError(f"{tool} failed ({p.returncode}): {p.stdout}{p.stderr}")

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", self.user, "--auth=trust", "--no-sync",
                  "--no-instructions")
        opts = (f"-c listen_addresses={HOST} -p {self.port} "
                f"-c unix_socket_directories={self.root}")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w",
                  "-t", "60", "-o", opts, "start")
        self.started = True
        self._run("createdb", "-h", HOST, "-p", str(self.port), "-U", self.user, self.database)

    @property
    def url(self) -> str:
        # trust authentication: the password is there because the flag's form has one
        return f"postgresql://{self.user}:{self.user}@{HOST}:{self.port}/{self.database}"

    def state_args(self) -> list[str]:
        return ["--state-url", self.url]

    def query(self, sql: str) -> str:
        """One psql query's unaligned output (from the harness's CPU)."""
        p = subprocess.run([str(self.bin / "psql"), "-h", HOST, "-p", str(self.port), "-U",
                            self.user, "-d", self.database, "-XAtqc", sql],
                           capture_output=True, text=True, timeout=30, check=False)
        if p.returncode != 0:
            raise HarnessError(f"psql failed ({p.returncode}): {p.stderr}")
        return p.stdout.strip()

    def commits(self) -> int | None:
        """The next transaction id: every writing transaction takes one, a read-only one (and
        this query) none, so deltas count the exporter's write transactions, its group commit
        batches (aborted ones too, which are rare). pg_stat_database's ``xact_commit`` would
        lag by up to a second and count reads."""
        if not self.started:
            return None
        try:
            return int(self.query("SELECT pg_snapshot_xmax(pg_current_snapshot())"))
        except (HarnessError, ValueError, subprocess.TimeoutExpired):
            return None

    def pids(self) -> list[int]:
        try:
            postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            return []
        return [postmaster, *child_pids(postmaster)]

    def close(self) -> None:
        try:
            if self.started:
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            self.started = False
            shutil.rmtree(self.root, ignore_errors=True)
