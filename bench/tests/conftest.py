"""A real exporter (SQLite state, no-op route) shared by the harness tests that need one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import servers
from bench.backends import SqliteBackend
from bench.servers import UNPINNED, Server


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteBackend]:
    b = SqliteBackend(tmp_path_factory.mktemp("state"))
    yield b
    b.close()


@pytest.fixture(scope="module")
def exporter(backend: SqliteBackend, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Server]:
    logs: Path = tmp_path_factory.mktemp("logs")
    s = servers.exporter("exporter", UNPINNED, logs, backend.state_args())
    s.start()
    yield s
    s.stop()
