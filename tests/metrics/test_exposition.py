"""The hand-rendered series exposition: valid for Prometheus's own tools, always current, and
its incrementally built gzip body the same text as a fresh render."""

from __future__ import annotations

import gzip
import random
import subprocess
import time
import zlib
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse

from exporter.domain.payload import StatusEvent
from exporter.domain.tracker import ExportTracker
from exporter.metrics.exposition import CHUNK_SERIES, SeriesExposition
from exporter.store.sqlite import SQLiteStore
from tests.helpers import Exporter, event, limits, parse_metrics, require_binary, series

OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}


async def populate(exp: Exporter) -> None:
    t0 = time.time() - 7200
    await exp.post(event(1, "Initiated", t0))
    await exp.post(event(1, "Completed", t0 + 1800))
    await exp.post(event(2, "Initiated", t0 + 60, partner="GCS", frequency="One Time"),
                   account="acme.eu-1")
    await exp.post(event(3, "Failed", t0, partner="Azure", type_="Profiles"))


async def test_promtool_finds_no_problem(exporter: Exporter) -> None:
    # promtool reads the Prometheus text format only; it parses and lints (names, help, units).
    promtool = require_binary("promtool")
    await populate(exporter)
    resp = await exporter.client.get("/metrics")
    check = subprocess.run([promtool, "check", "metrics"], input=await resp.read(),
                           capture_output=True, timeout=30, check=False)
    assert (check.returncode, check.stdout, check.stderr) == (0, b"", b"")


async def test_openmetrics_parses(exporter: Exporter) -> None:
    await populate(exporter)
    resp = await exporter.client.get("/metrics", headers=OPENMETRICS)
    families = {f.name: f for f in om_parse(await resp.text())}  # type: ignore[no-untyped-call]
    assert families["clevertap_export_status_events"].type == "counter"
    assert families["clevertap_export_duration_seconds"].type == "histogram"
    assert families["clevertap_export_abandoned"].type == "counter"
    in_flight = {s.labels["account"]: s.value
                 for s in families["clevertap_export_in_flight"].samples}
    assert in_flight == {"default": 0.0, "acme.eu-1": 1.0}


async def test_scrape_reflects_every_change(exporter: Exporter) -> None:
    # The exposition is cached between changes: each change must show in the next scrape.
    t0 = time.time() - 3600
    for i in range(5):
        await exporter.post(event(i, "Initiated", t0 + i))
        m = await exporter.metrics()
        assert m["clevertap_export_in_flight"][series()] == i + 1
        assert m["clevertap_export_last_initiated_timestamp_seconds"][series()] == t0 + i
    first = await exporter.client.get("/metrics")
    again = await exporter.client.get("/metrics")
    a, b = parse_metrics(await first.text()), parse_metrics(await again.text())
    assert a["clevertap_export_in_flight"] == b["clevertap_export_in_flight"]


async def test_gzip_body_is_one_member_of_the_plain_text(exporter: Exporter) -> None:
    await populate(exporter)
    plain = await exporter.client.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    packed = await exporter.client.get("/metrics", headers={"Accept-Encoding": "gzip"},
                                       auto_decompress=False)
    assert packed.headers["Content-Encoding"] == "gzip"
    assert packed.headers["Vary"] == "Accept-Encoding"
    # One gzip member that ends exactly at the body's end: strict decoders accept it.
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    text = d.decompress(await packed.read())
    assert (d.eof, d.unused_data) == (True, b"")
    # Process metrics (CPU, memory) move between the two scrapes; every export sample is equal.
    a, b = parse_metrics(await plain.text()), parse_metrics(text.decode())
    exports = {name for name in a if name.startswith("clevertap_export_")}
    assert exports and {n: a[n] for n in exports} == {n: b[n] for n in exports}


def _status_event(rng: random.Random, accounts: int, export_id: int, now: float) -> StatusEvent:
    return StatusEvent(account=f"acct{rng.randrange(accounts)}", export_id=str(export_id),
                       partner=rng.choice(["amazon_s3", "gcs"]), export_type="events",
                       frequency=rng.choice(["4h", "24h"]),
                       status=rng.choice(["Initiated", "Completed", "Failed"]),
                       event_time=now - rng.randrange(7200), received=now)


def _assert_fresh(tracker: ExportTracker, exposition: SeriesExposition) -> None:
    for openmetrics in (False, True):
        snap = exposition.snapshot(openmetrics)
        fresh = SeriesExposition(tracker).snapshot(openmetrics).text(b"# EOF\n")
        assert snap.text(b"# EOF\n") == fresh
        assert gzip.decompress(snap.gzip(b"# EOF\n")) == fresh


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_incremental_chunks_equal_a_fresh_render(tmp_path: Path, seed: int) -> None:
    # Series spread over several chunks, changed at random between scrapes; then a reload that
    # loses most of them (chunks shift): the cached body must always equal a fresh render.
    rng, now = random.Random(seed), time.time()
    bounds = limits(max_label_values=1000, max_series=1000)
    store = SQLiteStore(tmp_path / "state.db")
    small = SQLiteStore(tmp_path / "small.db")
    try:
        tracker = ExportTracker(store, bounds)
        exposition = SeriesExposition(tracker)
        accounts = CHUNK_SERIES
        for i in range(12 * CHUNK_SERIES):
            await tracker.ingest(_status_event(rng, accounts, i, now))
            if rng.random() < 0.05:
                _assert_fresh(tracker, exposition)
        assert len(tracker.series) > 2 * CHUNK_SERIES
        _assert_fresh(tracker, exposition)
        other = ExportTracker(small, bounds)
        for i in range(20):
            await other.ingest(_status_event(rng, accounts, i, now))
        tracker.restore(small.load())
        assert len(tracker.series) < CHUNK_SERIES
        _assert_fresh(tracker, exposition)
    finally:
        store.close()
        small.close()


async def test_usual_duration_and_learned_interval_are_exposed(exporter: Exporter) -> None:
    t0 = time.time() - 40 * 3600
    for i in range(6):  # a One Time export that runs every 6 hours, 20 to 25 minutes long
        start = t0 + i * 6 * 3600
        await exporter.post(event(i, "Initiated", start, frequency="One Time"))
        await exporter.post(event(i, "Completed", start + 1200 + 60 * i, frequency="One Time"))
    await exporter.post(event(99, "Initiated", t0))  # a 4h export: CleverTap's Frequency
    m = await exporter.metrics()
    once = series(frequency="one_time")
    assert m["clevertap_export_usual_duration_median_seconds"][once] == 1350
    assert m["clevertap_export_usual_duration_runs"][once] == 6
    # MAD 90 s: 3 x 1.4826 x 90 = 400 s above the median, more than the 25% margin.
    assert m["clevertap_export_usual_duration_high_seconds"][once] == pytest.approx(
        1350 + 3 * 1.4826 * 90)
    interval = m["clevertap_export_expected_interval_seconds"]
    assert interval == {series(frequency="one_time", source="learned"): 6 * 3600,
                        series(source="clevertap"): 4 * 3600}
    assert series() not in m.get("clevertap_export_usual_duration_runs", {})  # no history
