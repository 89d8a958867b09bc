"""The PostgreSQL phase: a real throwaway cluster, and "not available" while the exporter has
no --state-url."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bench import phases
from bench.backends import PostgresBackend
from bench.common import HOST, SMOKE
from bench.tests.conftest import UNPINNED

pytestmark = pytest.mark.postgres


def test_cluster_listens_on_loopback_and_is_removed() -> None:
    pg = PostgresBackend(UNPINNED)
    try:
        pg.start()
        with socket.create_connection((HOST, pg.port), timeout=5):
            pass
        assert pg.state_args() == ["--state-url", pg.url]
        assert pg.url.startswith(f"postgresql://bench:bench@{HOST}:{pg.port}/")
    finally:
        pg.close()
    assert not pg.root.exists()


def test_phase_reports_rather_than_fails(tmp_path: Path) -> None:
    run = phases.Run(SMOKE, UNPINNED, tmp_path, 1_780_000_000, count_instructions=False)
    phases.postgresql(run)
    pg = run.results["postgresql"]
    if pg["available"]:  # the exporter has the backend: then it was measured
        assert set(pg["throughput"]) == {str(c) for c in SMOKE.conns}
    else:
        assert "--state-url" in pg["reason"]
