"""The landing of a declared export with a destination, through the webhook: in /metrics
(zero-initialised counters, then the last check's objects, bytes, time and outcome), and on the
status page and the JSON API, the prefix listed shown as escaped text, never a link."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from exporter.domain.landing import Outcome
from tests.helpers import Exporter, Samples, event, series
from tests.landing.conftest import S3Store

Start = Callable[..., Awaitable[Exporter]]


def exports_file(tmp_path: Path, s3: S3Store, bucket: str) -> Path:
    path = tmp_path / "exports.yml"
    path.write_text(
        "exports:\n"
        "  - partner: Amazon S3\n    type: Events\n    frequency: Every 4 hours\n"
        f"    destination: {{url: 's3://{bucket}/<i>&/', endpoint: '{s3.server.url}', "
        "region: us-east-1}\n"
        "  - {partner: Amazon S3, type: Profiles, frequency: Every 4 hours}\n")
    return path


async def until(exporter: Exporter, ok: Callable[[Samples], bool],
                timeout: float = 20.0) -> Samples:
    deadline = time.monotonic() + timeout
    while True:
        samples = await exporter.metrics()
        if ok(samples) or time.monotonic() > deadline:
            return samples
        await asyncio.sleep(0.2)


async def test_landing_metrics_from_zero_to_the_last_check(
        start_exporter: Start, tmp_path: Path, s3_store: S3Store,
        monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in s3_store.env().items():
        monkeypatch.setenv(name, value)
    bucket = f"m-{uuid.uuid4().hex[:12]}"
    await s3_store.make_bucket(bucket)
    await s3_store.put(bucket, "<i>&/41-1690283492-e-20231004-0-1.json", b"x" * 300)
    exporter = await start_exporter("--config.file", str(exports_file(tmp_path, s3_store, bucket)),
                                    "--landing-settle", "1", "--landing-retry-for", "1")
    events = series(export_type="events")
    samples = await exporter.metrics()
    checks = samples["clevertap_export_landing_checks_total"]
    # Every outcome from zero, for the export with a destination only.
    assert checks == {series(export_type="events", outcome=o.value): 0.0 for o in Outcome}
    assert "clevertap_export_landing_last_bytes" not in samples
    start = time.time() - 600
    for status, when in (("Initiated", start), ("Completed", start + 300)):
        status_code, _ = await exporter.post(event(41, status, when))
        assert status_code == 200
    samples = await until(exporter, lambda s: bool(s.get(
        "clevertap_export_landing_last_check_timestamp_seconds")))
    key = events
    assert samples["clevertap_export_landing_last_objects"] == {key: 1.0}
    assert samples["clevertap_export_landing_last_bytes"] == {key: 300.0}
    checked = samples["clevertap_export_landing_last_check_timestamp_seconds"][key]
    assert start + 300 < checked <= time.time()
    outcome = samples["clevertap_export_landing_last_outcome"]
    assert {dict(k)["outcome"]: v for k, v in outcome.items()} == {
        o.value: (1.0 if o is Outcome.LANDED else 0.0) for o in Outcome}
    assert samples["clevertap_export_landing_checks_total"][
        series(export_type="events", outcome="landed")] == 1.0
    assert samples["clevertap_export_landing_failed_checks"] == {key: 0.0}
    # One checked run: under the minimum history, no usual size yet.
    assert "clevertap_export_landing_usual_bytes" not in samples
    page = await (await exporter.client.get("/")).text()
    assert '<b>landed</b></span> 1 object(s), 300 B<br><small>checked ' in page
    assert f"listed <code>s3://{bucket}/&lt;i&gt;&amp;/41-</code>" in page
    assert "<i>" not in page and 'href="s3:' not in page
    exports = await (await exporter.client.get("/api/v1/exports")).json()
    landing = next(e["landing"] for e in exports["exports"] if e["export_type"] == "events")
    assert (landing["outcome"], landing["objects"], landing["bytes"], landing["prefix"]) == (
        "landed", 1, 300, "<i>&/41-")
