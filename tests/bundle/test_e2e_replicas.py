"""Two exporter replicas scraped by a real Prometheus with the shipped rules, on loopback.

Until the PostgreSQL backend lands, "every replica exposes the same series" is simulated by
posting the same webhooks to two exporters with their own SQLite files. Replica B lags: two
completions reach A first, so for a while B alone still shows one export in flight for 5h
(stuck, per replica) and another last completed 8h ago (overdue, per replica). Each replica
also rejects one invalid body. Exactly the expected alerts must fire, once per export and
without an instance label, while B lags, after it caught up, and after it went down.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.bundle.conftest import (
    Server,
    export_event,
    http,
    prom_query,
    prometheus_config,
    require_binary,
    wait_until,
)
from tests.conftest import ROOT, free_port

HOUR = 3600
S3, GCS, AZURE = "Amazon S3", "Google Cloud Storage", "Microsoft Azure"
FOUR = "Every 4 hours"
# Held back from replica B at first: each clears a condition B alone would still show.
LATE_STUCK = ("amazon_s3", "profiles", "4h")
LATE_OVERDUE = ("google_cloud_storage", "events", "4h")

# (alertname, identifying labels) expected to fire, each exactly once.
EXPECTED = {
    ("ClevertapExportOverdue", ("google_cloud_storage", "profiles", "4h")),
    ("ClevertapExportStuck", ("azure_blob_storage", "events", "4h")),
    ("ClevertapExportFailed", ("azure_blob_storage", "profiles", "8h")),
    ("ClevertapExportWebhooksRejected", ("invalid",)),
}


@dataclass
class Replicas:
    prometheus: str
    alertmanager: str
    hooks: tuple[str, str]
    instances: tuple[str, str]
    servers: tuple[Server, Server]
    late: list[dict[str, Any]]


def _key(labels: dict[str, str]) -> tuple[str, tuple[str, ...]]:
    if "outcome" in labels:
        return labels["alertname"], (labels["outcome"],)
    return labels["alertname"], (labels.get("partner", ""), labels.get("export_type", ""),
                                 labels.get("frequency", ""))


def _history(now: int) -> list[dict[str, Any]]:
    return [
        # Healthy: completed 4h ago, the next run in flight for 20m.
        export_event(1001, "Initiated", now - 4 * HOUR - 1800, S3, "Events", FOUR),
        export_event(1001, "Completed", now - 4 * HOUR, S3, "Events", FOUR),
        # Overdue: last completion 7h30m ago (threshold 6h30m).
        export_event(2001, "Initiated", now - 8 * HOUR, GCS, "Profiles", FOUR),
        export_event(2001, "Completed", now - 7 * HOUR - 1800, GCS, "Profiles", FOUR),
        # Stuck: in flight for 5h.
        export_event(3001, "Initiated", now - 5 * HOUR, AZURE, "Events", FOUR),
        # Failed an hour ago.
        export_event(5001, "Initiated", now - 2 * HOUR, AZURE, "Profiles", "Every 8 hours"),
        export_event(5001, "Failed", now - HOUR, AZURE, "Profiles", "Every 8 hours"),
        # In flight for 5h until its completion (late to B).
        export_event(6001, "Initiated", now - 5 * HOUR, S3, "Profiles", FOUR),
        # Completed 8h ago, and again just now (late to B).
        export_event(7001, "Initiated", now - 8 * HOUR - 600, GCS, "Events", FOUR),
        export_event(7001, "Completed", now - 8 * HOUR, GCS, "Events", FOUR),
        # Last, so the account's delivery delay is small (no time-zone alert).
        export_event(1002, "Initiated", now - 1200, S3, "Events", FOUR),
    ]


def _post(hook: str, bodies: list[dict[str, Any]]) -> None:
    for body in bodies:
        assert http("POST", hook, body) == (200, {"status": "accepted"}), body


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory,
             servers: Callable[..., Server]) -> Replicas:
    prometheus_bin = require_binary("prometheus")
    alertmanager_bin = require_binary("prometheus-alertmanager")
    tmp = tmp_path_factory.mktemp("bundle-e2e-replicas")
    a, b, prom, am = (free_port() for _ in range(4))

    alertmanager = servers("alertmanager", [
        alertmanager_bin, f"--config.file={ROOT / 'alertmanager' / 'alertmanager.yml'}",
        f"--storage.path={tmp / 'alertmanager'}", f"--web.listen-address=127.0.0.1:{am}",
        "--cluster.listen-address=", "--log.level=warn",
    ], tmp / "alertmanager.log", f"http://127.0.0.1:{am}/-/ready")
    exporters = tuple(servers(f"exporter-{name}", [
        sys.executable, "-m", "exporter", "--host", "127.0.0.1", "--port", str(port),
        "--state-path", str(tmp / name / "state.db"), "--log-level", "WARNING",
    ], tmp / f"exporter-{name}.log", f"http://127.0.0.1:{port}/readyz")
        for name, port in (("a", a), ("b", b)))
    for server in (alertmanager, *exporters):
        server.wait_ready()

    now = int(time.time())
    hooks = (f"http://127.0.0.1:{a}/webhook/acme", f"http://127.0.0.1:{b}/webhook/acme")
    for hook in hooks:
        _post(hook, _history(now))
    late = [export_event(6001, "Completed", now - 2, S3, "Profiles", FOUR),
            export_event(7002, "Initiated", now - 1200, GCS, "Events", FOUR),
            export_event(7002, "Completed", now - 2, GCS, "Events", FOUR)]
    _post(hooks[0], late)
    config = prometheus_config(tmp, {"clevertap-export": [a, b], "prometheus": [prom],
                                     "alertmanager": [am]}, am)
    prometheus = servers("prometheus", [
        prometheus_bin, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{prom}", "--log.level=warn",
    ], tmp / "prometheus.log", f"http://127.0.0.1:{prom}/-/ready")
    prometheus.wait_ready()
    base = f"http://127.0.0.1:{prom}"
    # Both replicas' counters seen before they move, so increase() sees the rejections.
    wait_until("three scrapes of both replicas", lambda: len(prom_query(
        base, 'count_over_time(up{job="clevertap-export"}[1m]) >= 3')) == 2)
    for hook in hooks:
        assert http("POST", hook, raw=b"{not json")[0] == 400
    return Replicas(base, f"http://127.0.0.1:{am}", hooks, (f"127.0.0.1:{a}", f"127.0.0.1:{b}"),
                    (exporters[0], exporters[1]), late)


def _sel(partner: str, export_type: str, frequency: str, instance: str = "") -> str:
    labels = (f'job="clevertap-export", account="acme", partner="{partner}", '
              f'export_type="{export_type}", frequency="{frequency}"')
    return "{" + labels + (f', instance="{instance}"' if instance else "") + "}"


def _firing(base: str) -> Counter[tuple[str, tuple[str, ...]]]:
    alerts = prom_query(base, 'ALERTS{alertstate="firing"}')
    for alert in alerts:
        if alert["metric"]["alertname"] != "ClevertapExporterDown":
            assert "instance" not in alert["metric"], alert
    return Counter(_key(a["metric"]) for a in alerts)


def _assert_exactly_expected(base: str, pending: str = "") -> None:
    """Exactly EXPECTED fires, each once; nothing is pending but the alert named."""
    wait_until("the expected alerts", lambda: set(_firing(base)) >= EXPECTED)
    time.sleep(3)  # a few more evaluations to raise anything unexpected
    assert _firing(base) == Counter(EXPECTED)
    waiting = prom_query(base, 'ALERTS{alertstate="pending"}')
    assert [a["metric"]["alertname"] for a in waiting] == ([pending] if pending else []), waiting


def test_lagging_replica_raises_nothing_and_each_alert_fires_once(replicas: Replicas) -> None:
    base = replicas.prometheus
    a, b = replicas.instances
    # The lag is real: per replica, B shows a run 5h in flight and a completion 8h old.
    wait_until("the late completions scraped from A", lambda: prom_query(
        base, f"clevertap_export_in_flight{_sel(*LATE_STUCK, a)} == 0"))
    assert prom_query(base, f"clevertap_export_in_flight{_sel(*LATE_STUCK, b)} == 1")
    assert prom_query(base, "time() - clevertap_export_last_completed_timestamp_seconds"
                            f"{_sel(*LATE_OVERDUE, b)} > 8 * 3600")
    assert prom_query(base, f"clevertap_export:in_flight_age_seconds{_sel(*LATE_STUCK)}") == []
    since = prom_query(base, "clevertap_export:time_since_last_completion_seconds"
                             f"{_sel(*LATE_OVERDUE)}")
    assert len(since) == 1 and float(since[0]["value"][1]) < 120
    _assert_exactly_expected(base)


def test_alertmanager_gets_each_alert_once(replicas: Replicas) -> None:
    def received() -> list[dict[str, Any]]:
        alerts = http("GET", f"{replicas.alertmanager}/api/v2/alerts")[1]
        return alerts if {_key(a["labels"]) for a in alerts} >= EXPECTED else []

    alerts = wait_until("the alerts in Alertmanager", received)
    assert sorted(_key(a["labels"]) for a in alerts) == sorted(EXPECTED)
    rejected = next(a for a in alerts if a["labels"]["alertname"].endswith("Rejected"))
    assert "rejected 2 webhook(s) as invalid" in rejected["annotations"]["description"]


def test_after_the_replica_caught_up_nothing_changes(replicas: Replicas) -> None:
    b = replicas.instances[1]
    _post(replicas.hooks[1], replicas.late)
    wait_until("the late completions scraped from B", lambda: prom_query(
        replicas.prometheus, f"clevertap_export_in_flight{_sel(*LATE_STUCK, b)} == 0"))
    _assert_exactly_expected(replicas.prometheus)


def test_a_replica_down_raises_nothing_false(replicas: Replicas) -> None:
    a, b = replicas.instances
    replicas.servers[1].stop()
    wait_until("replica B seen down", lambda: prom_query(
        replicas.prometheus, f'up{{job="clevertap-export", instance="{b}"}} == 0'))
    # Only B's own ExporterDown waits for its 5m.
    _assert_exactly_expected(replicas.prometheus, pending="ClevertapExporterDown")
    # Its export series are gone; A still exposes every export.
    assert prom_query(replicas.prometheus,
                      f'clevertap_export_in_flight{{instance="{b}"}}') == []
    assert len(prom_query(replicas.prometheus,
                          f'clevertap_export_in_flight{{instance="{a}"}}')) == 6
