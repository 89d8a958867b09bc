"""The PostgreSQL phase: a real throwaway cluster, and "not available" while the exporter has
no --state-url."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bench import phases
from bench.backends import PostgresBackend, commit_delta
from bench.common import HOST, SMOKE
from bench.servers import UNPINNED

pytestmark = pytest.mark.postgres


def test_cluster_listens_on_loopback_and_is_removed() -> None:
    pg = PostgresBackend(UNPINNED)
    try:
        pg.start()
        with socket.create_connection((HOST, pg.port), timeout=5):
            pass
        assert pg.state_args() == ["--state-url", pg.url]
        assert pg.url.startswith(f"postgresql://bench:bench@{HOST}:{pg.port}/")
        before = pg.commits()
        pg.query("SELECT 1")  # reads take no transaction id
        pg.query("CREATE TABLE t (x int)")
        for _ in range(5):
            pg.query("INSERT INTO t VALUES (1)")
        assert commit_delta(before, pg.commits()) == 6
        assert len(pg.pids()) > 1  # the postmaster and its children
    finally:
        pg.close()
    assert not pg.root.exists()


def test_phase_reports_rather_than_fails(tmp_path: Path) -> None:
    run = phases.Run(SMOKE, UNPINNED, tmp_path, 1_780_000_000, count_instructions=False)
    phases.postgresql(run)
    pg = run.results["postgresql"]
    if pg["available"]:  # the exporter has the backend: then it was measured
        assert set(pg["throughput"]) == {str(c) for c in SMOKE.conns}
        two = pg["two_replicas"]
        assert set(two) == {str(c) for c in SMOKE.conns if c >= 2}
        for rows in two.values():
            (row,) = rows
            assert len(row["replicas"]) == 2
            assert row["requests"] == sum(r["requests"] for r in row["replicas"])
            assert row["p99_ms"] == max(r["p99_ms"] for r in row["replicas"])
            assert row["requests_per_commit"] >= 1
    else:
        assert "--state-url" in pg["reason"]
