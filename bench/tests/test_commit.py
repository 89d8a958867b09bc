"""The commit benchmark on a few hundred events: it counts what it says and leaves whole files."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench import commit
from exporter.store.sqlite import SQLiteStore


def test_every_variant_commits_and_is_reported_against_the_shipped_one(tmp_path: Path) -> None:
    results = commit.run(commit.VARIANTS, reps=1, seconds=2.0, conns=4, max_events=300,
                         directory=tmp_path)
    assert list(results) == [v.name for v in commit.VARIANTS]
    for figures in results.values():
        assert figures["commits_per_s"] > 0
        assert figures["frames_per_commit"] >= 1
        assert figures["commit_p50_ms"] <= figures["commit_p99_ms"] <= figures["commit_max_ms"]
    # 1 KiB pages: more frames per commit, fewer bytes.
    assert results["page1024"]["kib_per_commit"] < results["shipped"]["kib_per_commit"]
    table = commit.report(results)
    assert table.count("\n") == len(results) + 1
    assert "x)" in table and "| shipped |" in table
    assert not list(tmp_path.iterdir())  # every state file is removed after its run


def test_a_variant_leaves_a_file_the_shipped_store_loads(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    variant = commit.Variant("checkpointer", checkpointer=True)
    sample = asyncio.run(commit.drive(path, variant, seconds=2.0, conns=4, max_events=200))
    assert sum(sample.frames) > 0 and len(sample.commit_ms) == len(sample.frames)
    store = SQLiteStore(path)
    try:
        snapshot = store.load()
    finally:
        store.close()
    # 200 events, every 20th a redelivery, as Initiated/Completed pairs of distinct ids.
    assert len(snapshot.deliveries) == 190
    assert 90 <= len(snapshot.runs) <= 101
