"""A real PostgreSQL cluster for the tests: initdb and pg_ctl as the ``postgres`` user in a
temporary directory, on a free loopback port, one per test session; a fresh database per test.

Import the fixtures into a test module (``from tests.postgres import pg_cluster, pg_url``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.backends import SERVERS, server_bin
from tests.helpers import ExporterProcess, free_port

INSTALL = "apt-get install -y postgresql"
USER = "exporter"


class Cluster:
    """One throwaway cluster; ``url(db)`` names a database on it."""

    def __init__(self) -> None:
        found = server_bin()
        if found is None:
            pytest.fail(f"PostgreSQL server tools (initdb, pg_ctl) not found in {SERVERS}: "
                        f"{INSTALL}")
        self.bin = found
        self.port = free_port()
        # The cluster's user must own its directory; the test's tmp_path is private to root.
        self.root = Path(tempfile.mkdtemp(prefix="clevertap-test-pg-"))
        self.data = self.root / "data"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self.run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "--no-sync",
                 "--no-instructions")
        self.start()

    def run(self, tool: str, *args: str) -> None:
        # initdb and postgres refuse to run as root.
        as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        p = subprocess.run([*as_owner, str(self.bin / tool), *args], capture_output=True, text=True,
                           timeout=60, check=False)
        if p.returncode != 0:
            raise RuntimeError(f"{tool} failed ({p.returncode}): {p.stdout}{p.stderr}")

    def start(self) -> None:
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} "
                f"-c unix_socket_directories={self.root} -c max_connections=100")
        self.run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w",
                 "-t", "30", "-o", opts, "start")

    def stop(self) -> None:
        self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def createdb(self) -> str:
        name = f"t{uuid.uuid4().hex[:12]}"
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, name)
        return self.url(name)

    def url(self, db: str) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{db}"

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    cluster = Cluster()
    yield cluster
    cluster.close()


@pytest.fixture
def pg_url(pg_cluster: Cluster) -> str:
    """A new, empty database for this test."""
    return pg_cluster.createdb()


class Replica(ExporterProcess):
    """An exporter process whose log is read as it comes (an outage logs every refused webhook,
    which would fill the pipe and stall the process), keeping its last lines."""

    def __init__(self, *args: str) -> None:
        super().__init__(None, *args)
        self.log: deque[bytes] = deque(maxlen=100)

    def start(self, timeout: float = 15.0, ready_url: str | None = None) -> None:
        super().start(timeout, ready_url)
        assert self.proc is not None and self.proc.stderr is not None
        threading.Thread(target=self.log.extend, args=(self.proc.stderr,), daemon=True).start()


@pytest.fixture
def replica_process(pg_url: str) -> Iterator[Callable[..., Replica]]:
    """Factory of exporter processes on the test's database; all are stopped at teardown."""
    made: list[Replica] = []

    def make(*args: str) -> Replica:
        p = Replica("--state-url", pg_url, *args)
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop()
