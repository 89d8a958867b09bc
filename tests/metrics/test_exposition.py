"""The hand-rendered series exposition: valid for Prometheus's own tools, and always current."""

from __future__ import annotations

import subprocess
import time

from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse

from tests.conftest import Exporter, event, parse_metrics, require_binary, series

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
