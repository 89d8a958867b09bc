"""Fixtures: real exporter apps on real SQLite files, exporter processes, a test PKI; and the
markers that ``make test-fast`` selects by. What tests import lives in ``tests/helpers.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Final

import pytest

from exporter.web.app import create_app
from tests.helpers import ClientFactory, Exporter, ExporterProcess, make_settings
from tests.pki import Pki, make_pki

#: Markers from what a test uses, so ``make test-fast`` (``-m "not slow"``) leaves out every
#: test that starts processes, a browser, Prometheus, PostgreSQL or a long load.
_SLOW_FIXTURES: Final = {"exporter_process": "process", "browser": "browser"}
_SLOW_DIRS: Final = {"bundle": "bundle", "deploy": "deploy"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        kinds = {m for f, m in _SLOW_FIXTURES.items() if f in getattr(item, "fixturenames", ())}
        kinds |= {m for d, m in _SLOW_DIRS.items() if d in item.path.parent.parts[-1:]}
        kinds |= {m.name for m in item.iter_markers() if m.name in ("postgres", "process")}
        for kind in kinds:
            item.add_marker(kind)
        if kinds or item.get_closest_marker("slow"):
            item.add_marker("slow")


@pytest.fixture
def start_exporter(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> Callable[..., Awaitable[Exporter]]:
    """Start an exporter app on a real test server; extra args are command-line flags."""

    async def start(*args: str, state: Path | None = None) -> Exporter:
        path = state or tmp_path / "state.db"
        client = await aiohttp_client(create_app(make_settings(path, *args)))
        return Exporter(client, path)

    return start


@pytest.fixture
async def exporter(start_exporter: Callable[..., Awaitable[Exporter]]) -> AsyncIterator[Exporter]:
    yield await start_exporter()


@pytest.fixture
def exporter_process(tmp_path: Path) -> Iterator[Callable[..., ExporterProcess]]:
    """Factory of exporter processes; every one started is stopped at teardown."""
    made: list[ExporterProcess] = []

    def make(*args: str, state: Path | None = None) -> ExporterProcess:
        p = ExporterProcess(state or tmp_path / "state.db", *args)
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A test CA with server and client certificates (``tests/pki.py``), made once per run."""
    return make_pki(tmp_path_factory.mktemp("pki"))
