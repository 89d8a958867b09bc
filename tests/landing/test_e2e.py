"""End to end on loopback: CleverTap webhooks -> a real exporter process -> its landing checks on
moto's S3 server -> a real Prometheus with the shipped rules.

Three declared exports land on moto: ``8h`` whose run's files are there, ``4h`` that lands
files five times and then nothing (an established export: the page), and ``12h`` whose first
run lands nothing (a new export: the warning). The ``8h`` run completes while the exporter
waits an hour to settle; the exporter restarts before checking it, and checks it once.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.bundle.conftest import (
    Server,
    dashboard_targets,
    export_event,
    http,
    prom_query,
    prometheus_config,
    servers,
    start_prometheus,
    wait_until,
)
from tests.helpers import free_port, parse_metrics
from tests.landing.conftest import S3Store

__all__ = ["servers"]  # the fixture used here, from tests.bundle.conftest

pytestmark = pytest.mark.process

HOUR = 3600
EVENTS = "Events"


def exports_yml(s3: S3Store, bucket: str) -> str:
    entries = []
    for frequency, folder in (("Every 8 hours", "eight"), ("Every 4 hours", "four"),
                              ("Every 12 hours", "twelve")):
        entries.append(
            f"  - partner: Amazon S3\n    type: Events\n    frequency: {frequency}\n"
            f"    destination: {{url: 's3://{bucket}/{folder}/', "
            f"endpoint: '{s3.server.url}', region: us-east-1}}\n")
    return "exports:\n" + "".join(entries)


def labels(frequency: str, **more: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"account": "default", "partner": "amazon_s3",
                         "export_type": "events", "frequency": frequency, **more}.items()))


class Exporter:
    """The exporter process, restarted on the same state file with other flags."""

    def __init__(self, servers: Callable[..., Server], tmp: Path, config: Path,
                 env: dict[str, str]) -> None:
        self.servers, self.tmp, self.config, self.env = servers, tmp, config, env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: Server | None = None
        self.starts = 0

    def start(self, *args: str) -> None:
        self.starts += 1
        self.server = self.servers(f"exporter-{self.starts}", [
            sys.executable, "-m", "exporter", "--host", "127.0.0.1", "--port", str(self.port),
            "--state-path", str(self.tmp / "state.db"), "--config.file", str(self.config),
            "--landing-retry-for", "1s", *args,
        ], self.tmp / f"exporter-{self.starts}.log", f"{self.url}/readyz", self.env)
        self.server.wait_ready()

    def stop(self) -> None:
        assert self.server is not None
        self.server.stop()

    def post(self, export_id: int, status: str, when: float, frequency: str) -> None:
        body = export_event(export_id, status, when, "Amazon S3", EVENTS, frequency)
        assert http("POST", f"{self.url}/webhook", body) == (200, {"status": "accepted"})

    def run(self, export_id: int, start: float, frequency: str) -> None:
        self.post(export_id, "Initiated", start, frequency)
        self.post(export_id, "Completed", start + 600, frequency)

    def metrics(self) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
        status, text = http("GET", f"{self.url}/metrics")
        assert status == 200
        return parse_metrics(text)

    def landing(self, name: str, frequency: str, **more: str) -> float | None:
        return self.metrics().get(f"clevertap_export_landing_{name}", {}).get(
            labels(frequency, **more))


async def test_landing_checks_end_to_end(servers: Callable[..., Server], s3_store: S3Store,
                                         tmp_path: Path) -> None:
    bucket = f"e2e-{uuid.uuid4().hex[:12]}"
    await s3_store.make_bucket(bucket)
    config = tmp_path / "exports.yml"
    config.write_text(exports_yml(s3_store, bucket))
    exporter = Exporter(servers, tmp_path, config, {**os.environ, **s3_store.env()})
    now = time.time()

    # The 8h run completes while the exporter would wait an hour; it restarts before checking.
    exporter.start("--landing-settle", "1h")
    await s3_store.put(bucket, "eight/81-1690283492-app_launched-20231004-0-1.json", b"a" * 700)
    await s3_store.put(bucket, "eight/81-1690283492-app_launched-20231004-1-1.json", b"b" * 300)
    exporter.run(81, now - HOUR, "Every 8 hours")
    time.sleep(6)  # a claim round passes: nothing is due yet
    assert exporter.landing("last_outcome", "8h", outcome="landed") is None
    exporter.stop()
    exporter.start("--landing-settle", "1s")
    wait_until("the 8h run's check", lambda: exporter.landing("last_bytes", "8h") == 1000)
    assert exporter.landing("last_objects", "8h") == 2
    assert exporter.landing("checks_total", "8h", outcome="landed") == 1
    checked = exporter.landing("last_check_timestamp_seconds", "8h")

    # Prometheus scrapes from here.
    prom_port = free_port()
    prom = start_prometheus(servers, tmp_path, prom_port, prometheus_config(
        tmp_path, {"clevertap-export": [exporter.port], "prometheus": [prom_port],
                   "alertmanager": [free_port()]}, free_port()))
    prom.wait_ready()
    base = f"http://127.0.0.1:{prom_port}"

    # The 4h export lands five times: it gets a usual size.
    for i in range(5):
        await s3_store.put(bucket, f"four/{40 + i}-1-e-20231004-0-1.json", b"x" * 5000)
        exporter.run(40 + i, now - (10 - i) * 4 * HOUR, "Every 4 hours")
    wait_until("five checks of the 4h export", lambda: exporter.landing(
        "checks_total", "4h", outcome="landed") == 5, timeout=60)
    assert exporter.landing("usual_bytes", "4h") == 5000
    # Then it lands nothing, and so does the new 12h export's first run.
    exporter.run(45, now - 2 * HOUR, "Every 4 hours")
    exporter.run(91, now - 2 * HOUR, "Every 12 hours")
    wait_until("both empty checks", lambda: exporter.landing(
        "last_outcome", "4h", outcome="empty") == 1 and exporter.landing(
        "last_outcome", "12h", outcome="empty") == 1, timeout=60)

    def firing() -> set[tuple[str, str, str]]:
        return {(a["metric"]["alertname"], a["metric"]["frequency"], a["metric"]["severity"])
                for a in prom_query(base, 'ALERTS{alertstate="firing"}')
                if a["metric"]["alertname"].startswith("ClevertapExportLand")}

    expected = {("ClevertapExportLandedNothing", "4h", "critical"),
                ("ClevertapExportLandedNothingNew", "12h", "warning")}
    wait_until("the landing alerts", lambda: firing() == expected, timeout=60)
    # The dashboard's Landing row shows each export once (the other rows: tests/bundle).
    targets = dashboard_targets(landing=True)
    assert len(targets) == 3
    for title, expr in targets:
        result = prom_query(base, expr)
        assert result, f"panel {title!r} query returned nothing: {expr}"
        assert all("instance" not in r["metric"] for r in result), (title, result)

    # Restarted once more: the checks made stay made.
    exporter.stop()
    exporter.start("--landing-settle", "1s")
    time.sleep(6)  # a claim round passes
    samples: dict[str, Any] = exporter.metrics()
    assert sum(samples["clevertap_export_landing_checks_total"].values()) == 0
    assert exporter.landing("last_check_timestamp_seconds", "8h") == checked
    assert exporter.landing("last_objects", "8h") == 2
