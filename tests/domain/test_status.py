"""Export states (shared by the status page and the JSON API), the API and the page's HTML."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from exporter.domain.declared import parse_config
from exporter.domain.status import compute
from exporter.domain.thresholds import THRESHOLDS
from exporter.domain.timefmt import ago, human_duration
from exporter.domain.tracker import ExportTracker
from exporter.store.sqlite import SQLiteStore
from tests.helpers import Exporter, ExporterProcess, event, free_port, limits

StartExporter = Callable[..., Awaitable[Exporter]]

CONFIG = """
exports:
  - {name: Lake, account: prod, partner: S3, type: Events, frequency: 4h, max_runtime: 1h,
     min_runtime: 5m}
  - {name: Nobody, account: prod, partner: Azure, type: Profiles, frequency: Daily}
"""
H = 3600.0


@pytest.fixture
async def tracker(tmp_path: Path) -> AsyncIterator[ExportTracker]:
    store = SQLiteStore(tmp_path / "s.db")
    yield ExportTracker(store, limits())
    store.close()


async def feed(t: ExportTracker, *events: tuple[Any, ...]) -> None:
    from exporter.domain.payload import StatusEvent

    for i, (account, export_id, partner, freq, status, when) in enumerate(events):
        await t.ingest(StatusEvent(account, str(export_id), partner, "events", freq, status,
                                   when, when + i * 1e-3))


def by_key(statuses: list[Any]) -> dict[tuple[str, str, str], Any]:
    return {(s.account, s.partner, s.frequency): s for s in statuses}


async def test_states(tracker: ExportTracker) -> None:
    now = time.time()
    config = parse_config(CONFIG)
    await tracker.declare(config.exports, config.label_values())
    await feed(
        tracker,
        # ok: recurring, completed 2 h ago (threshold 4h*1.5 + 30m)
        ("prod", 1, "gcs", "4h", "initiated", now - 2.5 * H),
        ("prod", 1, "gcs", "4h", "completed", now - 2 * H),
        # late: completed 6.6 h ago (> 6.5 h)
        ("prod", 2, "gcs", "4h_b", "completed", now - 6.6 * H),
        ("prod", 3, "azure", "4h", "initiated", now - 8 * H),
        ("prod", 3, "azure", "4h", "completed", now - 6.6 * H),
        # running: declared export with max_runtime 1h, started 50 minutes ago; its previous
        # run took 20 minutes (above min_runtime)
        ("prod", 4, "amazon_s3", "4h", "initiated", now - 3 * H),
        ("prod", 4, "amazon_s3", "4h", "completed", now - 3 * H + 1200),
        ("prod", 4, "amazon_s3", "4h", "initiated", now - 50 * 60),
        # stuck: one-time export in flight for longer than the 6 h default
        ("staging", 5, "gcs", "one_time", "initiated", now - 7 * H),
        # failed
        ("staging", 6, "s3", "8h", "initiated", now - 2 * H),
        ("staging", 6, "s3", "8h", "failed", now - H),
    )
    statuses = compute(tracker, config, now)
    s = by_key(statuses)
    assert s[("prod", "gcs", "4h")].state == "ok"
    assert s[("prod", "azure", "4h")].state == "late"
    assert "no completion for 6h 36m" in s[("prod", "azure", "4h")].reason
    assert s[("prod", "amazon_s3", "4h")].state == "running"
    assert s[("prod", "amazon_s3", "4h")].name == "Lake"
    assert s[("prod", "amazon_s3", "4h")].in_flight_since == pytest.approx(now - 3000)
    assert s[("staging", "gcs", "one_time")].state == "stuck"
    assert s[("staging", "gcs", "one_time")].max_runtime == THRESHOLDS["stuck_one_time_seconds"]
    assert s[("staging", "s3", "8h")].state == "failed"
    never = s[("prod", "azure_blob_storage", "24h")]
    assert never.state == "never seen" and never.declared and not never.overdue
    # Worst first.
    assert [x.state for x in statuses][:2] == ["never seen", "stuck"]

    # Later: the declared run passes its 1 h max_runtime (stuck); the never-seen export is
    # overdue one day and a half (plus grace) after it was declared.
    later = compute(tracker, config, now + 1.6 * 86400)
    s = by_key(later)
    assert s[("prod", "amazon_s3", "4h")].state == "stuck"
    assert s[("prod", "azure_blob_storage", "24h")].overdue
    assert "overdue: declared 1d" in s[("prod", "azure_blob_storage", "24h")].reason


async def test_too_fast_and_grace(tracker: ExportTracker) -> None:
    now = time.time()
    config = parse_config(CONFIG)
    await feed(
        tracker,
        ("prod", 1, "amazon_s3", "4h", "initiated", now - 120),
        ("prod", 1, "amazon_s3", "4h", "completed", now - 100),
    )
    s = by_key(compute(tracker, config, now))[("prod", "amazon_s3", "4h")]
    assert s.state == "too fast" and s.last_duration == 20
    assert s.grace == THRESHOLDS["overdue_grace_seconds"]
    assert s.due_by == pytest.approx(now - 100 + 6 * H + 1800)
    # Just before and just after the overdue threshold.
    due = now - 100 + 6 * H + 1800
    assert not by_key(compute(tracker, config, due - 1))[("prod", "amazon_s3", "4h")].overdue
    assert by_key(compute(tracker, config, due + 1))[("prod", "amazon_s3", "4h")].state == "late"


def test_human_durations() -> None:
    assert human_duration(45) == "45s"
    assert human_duration(125) == "2m 5s"
    assert human_duration(12 * 60) == "12m"
    assert human_duration(3 * H + 300) == "3h 5m"
    assert human_duration(2 * 86400 + 4 * H) == "2d 4h"
    assert ago(90) == "1m 30s ago" and ago(-300) == "in 5m"


async def test_api_and_page(start_exporter: StartExporter, tmp_path: Path) -> None:
    path = tmp_path / "exports.yml"
    path.write_text(CONFIG)
    exp = await start_exporter("--config.file", str(path), "--timezone", "Asia/Kolkata")
    now = time.time()
    assert (await exp.post(event(1, "Initiated", now - 600), "prod"))[0] == 200
    assert (await exp.post(event(1, "Initiated", now - 600), "prod"))[1]["status"] == "duplicate"
    assert (await exp.post({"Partner": "S3"}, "prod"))[0] == 422
    assert (await exp.post({"is_test": True}))[0] == 200

    resp = await exp.client.get("/api/v1/exports")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["timezone"] == "Asia/Kolkata"
    assert doc["config"]["last_reload_successful"] is True
    rows = {(e["account"], e["partner"], e["frequency"]): e for e in doc["exports"]}
    lake = rows[("prod", "amazon_s3", "4h")]
    assert lake["state"] == "running" and lake["name"] == "Lake"
    assert lake["in_flight_since_timestamp"] == pytest.approx(now - 600, abs=1)
    assert lake["in_flight_since_time"].endswith("+05:30")
    assert lake["expected_interval"] == 14400 and lake["max_runtime"] == 3600
    assert rows[("prod", "azure_blob_storage", "24h")]["state"] == "never seen"
    assert rows[("prod", "azure_blob_storage", "24h")]["last_completed_timestamp"] is None

    resp = await exp.client.get("/api/v1/events")
    events = (await resp.json())["events"]
    assert [e["outcome"] for e in events] == ["test", "invalid", "duplicate", "accepted"]
    assert events[1]["http_status"] == 422 and "Export Request Id" in events[1]["message"]
    assert events[3]["partner"] == "amazon_s3" and events[3]["status"] == "initiated"
    assert events[3]["account"] == "prod" and events[3]["export_id"] == "1"

    resp = await exp.client.get("/")
    assert resp.status == 200 and resp.content_type == "text/html"
    html = await resp.text()
    assert '<meta http-equiv="refresh" content="15">' in html
    assert 'href="/metrics"' in html and "IST" in html
    assert "<script" not in html and "http://" not in html  # nothing external, no scripts
    resp = await exp.client.get("/?refresh=0")
    assert 'http-equiv="refresh"' not in await resp.text()


async def test_event_log_is_bounded(exporter: Exporter) -> None:
    for i in range(105):
        await exporter.post(event(i, "Completed"))
    await exporter.post(b"not json")
    events = (await (await exporter.client.get("/api/v1/events")).json())["events"]
    assert len(events) == 100
    assert events[0]["outcome"] == "invalid" and events[0]["http_status"] == 400
    assert events[-1]["export_id"] == "6"


async def test_unauthorized_webhooks_are_logged(start_exporter: StartExporter) -> None:
    exp = await start_exporter("--auth-token", "s3cret")
    assert (await exp.post(event()))[0] == 401
    events = (await (await exp.client.get("/api/v1/events")).json())["events"]
    assert events[0]["outcome"] == "unauthorized" and "missing credentials" in events[0][
        "message"]
    # The status page and API need no webhook credentials.
    assert (await exp.client.get("/")).status == 200


def test_status_page_follows_metrics_port(
    exporter_process: Callable[..., ExporterProcess],
) -> None:
    """With --metrics-port the page, the API and reload live next to /metrics, not on the
    internet-facing webhook port."""
    metrics_port = free_port()
    exp = exporter_process("--metrics-port", str(metrics_port))
    internal = f"http://127.0.0.1:{metrics_port}"
    exp.start(ready_url=f"{internal}/readyz")
    assert exp.post(event(1, "Initiated")) == (200, "accepted")
    with urllib.request.urlopen(f"{internal}/api/v1/exports", timeout=10) as r:
        assert json.loads(r.read())["exports"][0]["state"] == "running"
    with urllib.request.urlopen(f"{internal}/api/v1/events", timeout=10) as r:
        assert json.loads(r.read())["events"][0]["outcome"] == "accepted"
    with urllib.request.urlopen(f"{internal}/", timeout=10) as r:
        assert "running" in r.read().decode()
    for path in ("/", "/api/v1/exports"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{exp.url}{path}", timeout=10)
        assert err.value.code == 404


def _clevertap_time(ts: float, zone: str) -> str:
    from zoneinfo import ZoneInfo

    from exporter.tools.client import clevertap_time
    return clevertap_time(ts, ZoneInfo(zone))


@pytest.mark.parametrize(("sender_zone", "banner", "row"), [
    # The account is in New York, the exporter reads its times as UTC: 5h behind receipt.
    ("America/New_York", "5h behind their receipt, the offset of a time zone",
     "event times look 5h off (time zone?)"),
    # The account is in Kolkata: its wall-clock times read as UTC are in the future.
    ("Asia/Kolkata", "5h 30m in the future (before their receipt)",
     "event times look 5h 30m off (time zone?)"),
], ids=["behind", "future"])
async def test_page_says_when_event_times_look_like_a_wrong_zone(
    start_exporter: StartExporter, sender_zone: str, banner: str, row: str,
) -> None:
    exp = await start_exporter("--timezone", "UTC", "--event-time-max-ahead", "12h")
    now = time.time()
    fine = event(1, "Initiated", _clevertap_time(now - 60, "UTC"))
    assert (await exp.post(fine, "ok"))[0] == 200
    wrong = event(2, "Initiated", _clevertap_time(now - 5, sender_zone))  # sent at once
    assert (await exp.post(wrong, "acme"))[0] == 200
    page = await (await exp.client.get("/")).text()
    assert page.count('class="banner"') == 1
    assert ('<p class="banner" data-account="acme">Account acme: webhook event times are '
            + banner) in page
    assert "--timezone (UTC) probably differs from the CleverTap account&#x27;s" in page
    exports = {e["account"]: e for e in (await (await exp.client.get(
        "/api/v1/exports")).json())["exports"]}
    assert exports["acme"]["clock"] == row and exports["ok"]["clock"] == ""
    assert row.replace("'", "&#x27;") in page


async def test_page_is_quiet_about_clocks_that_agree(exporter: Exporter) -> None:
    assert (await exporter.post(event(1, "Initiated", time.time() - 120)))[0] == 200
    page = await (await exporter.client.get("/")).text()
    assert '<div id="clock"></div>' in page and "time zone?" not in page


async def test_page_shows_where_the_interval_comes_from(start_exporter: StartExporter) -> None:
    """A One Time export re-run every 6 hours: the page says the interval is learned, and from
    how many runs; one with CleverTap's Frequency says so."""
    exp = await start_exporter()
    t0 = time.time() - 8 * 6 * H
    for i in range(8):
        start = t0 + i * 6 * H
        for status, at in (("Initiated", start), ("Completed", start + 600)):
            body = event(100 + i, status, at, frequency="One Time")
            assert (await exp.post(body))[0] == 200
    assert (await exp.post(event(1, "Initiated", time.time() - 60)))[0] == 200
    page = await (await exp.client.get("/")).text()
    assert "learned, every 6h (from 7 runs)" in page
    assert "clevertap, every 4h" in page


async def test_a_run_in_flight_since_the_future_is_marked(exporter: Exporter) -> None:
    """The account's last webhook is on time, but one run started at a time still to come."""
    now = time.time()
    assert (await exporter.post(event(1, "Initiated", now + 2 * H)))[0] == 200
    assert (await exporter.post(event(2, "Initiated", now - 30, frequency="Every 8 hours")))[0] \
        == 200
    exports = (await (await exporter.client.get("/api/v1/exports")).json())["exports"]
    marks = {e["frequency"]: e["clock"] for e in exports}
    assert marks["8h"] == ""
    assert marks["4h"].startswith("in flight since in 1h 59m: an event time in the future")
