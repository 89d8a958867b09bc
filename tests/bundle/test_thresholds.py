"""One threshold, one source: changing it moves the rules, the dashboard and the status page."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bundle.__main__ import render
from exporter.domain.declared import DeclaredConfig
from exporter.domain.payload import StatusEvent
from exporter.domain.status import compute
from exporter.domain.thresholds import THRESHOLDS
from exporter.domain.tracker import ExportTracker
from exporter.store.sqlite import SQLiteStore
from tests.helpers import ROOT, limits

H = 3600.0
GENERATED = ("prometheus/rules.yml", "prometheus/alerts.yml",
             "grafana/dashboards/clevertap-exports.json")


def state_of(tmp_path: Path, seconds: float) -> str:
    # render() runs an exporter on its own event loop, so this test runs outside one.
    return asyncio.run(state_of_export_completed_ago(tmp_path, seconds))


async def state_of_export_completed_ago(tmp_path: Path, seconds: float) -> str:
    """The status page's state of a 4-hourly export whose last run completed ``seconds`` ago."""
    store = SQLiteStore(tmp_path / "state.db")
    tracker = ExportTracker(store, limits())
    now = time.time()
    for kind, t in (("initiated", now - seconds - 600), ("completed", now - seconds)):
        await tracker.ingest(StatusEvent(
            account="default", export_id="1", partner="amazon_s3", export_type="events",
            frequency="4h", status=kind, event_time=t, received=t))
    store.close()
    [status] = compute(tracker, DeclaredConfig(), now)
    return status.state


def test_overdue_tolerance_moves_rules_dashboard_and_status_page(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = render(ROOT)
    # 1.7 intervals + grace: late under the shipped tolerance of 1.5, on time under 2.0.
    ago = 1.7 * 4 * H + THRESHOLDS["overdue_grace_seconds"]
    assert THRESHOLDS["overdue_tolerance"] == 1.5
    assert state_of(tmp_path / "a", ago) == "late"

    monkeypatch.setitem(THRESHOLDS, "overdue_tolerance", 2.0)
    after = render(ROOT)
    for rel in GENERATED:
        assert after[rel] != before[rel], f"{rel} does not follow overdue_tolerance"
    assert "2.0" in after["prometheus/rules.yml"] or "* 2\n" in after["prometheus/rules.yml"]
    assert state_of(tmp_path / "b", ago) == "ok"
