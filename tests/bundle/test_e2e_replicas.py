"""Two exporter replicas scraped by a real Prometheus with the shipped rules, on loopback.

Until the PostgreSQL backend lands, "every replica exposes the same series" is simulated by
posting the same webhooks to two exporters with their own SQLite files. Replica B lags: two
completions reach A first, so for a while B alone still shows one export in flight for 5h
(stuck, per replica) and another last completed 8h ago (overdue, per replica). Each replica
also rejects one invalid body. Exactly the expected alerts must fire, once per export and
without an instance label, while B lags, after it caught up, and after it went down.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.bundle.conftest import (
    EXPECTED_ALERTS,
    FOUR_HOURLY,
    GCS,
    HOUR,
    S3,
    Server,
    alert_key,
    dashboard_targets,
    export_event,
    export_history,
    http,
    prom_query,
    prometheus_config,
    start_alertmanager,
    start_exporter,
    start_prometheus,
    wait_until,
)
from tests.helpers import free_port

# Held back from replica B at first: each clears a condition B alone would still show.
LATE_STUCK = ("amazon_s3", "profiles", "4h")
LATE_OVERDUE = ("google_cloud_storage", "events", "4h")
EXPECTED = EXPECTED_ALERTS


@dataclass
class Replicas:
    prometheus: str
    alertmanager: str
    hooks: tuple[str, str]
    instances: tuple[str, str]
    servers: tuple[Server, Server]
    late: list[dict[str, Any]]


def _history(now: int) -> list[dict[str, Any]]:
    return export_history(
        now,
        # In flight for 5h until its completion (late to B).
        export_event(6001, "Initiated", now - 5 * HOUR, S3, "Profiles", FOUR_HOURLY),
        # Completed 8h ago, and again just now (late to B).
        export_event(7001, "Initiated", now - 8 * HOUR - 600, GCS, "Events", FOUR_HOURLY),
        export_event(7001, "Completed", now - 8 * HOUR, GCS, "Events", FOUR_HOURLY),
    )


def _post(hook: str, bodies: list[dict[str, Any]]) -> None:
    for body in bodies:
        assert http("POST", hook, body) == (200, {"status": "accepted"}), body


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory,
             servers: Callable[..., Server]) -> Replicas:
    tmp = tmp_path_factory.mktemp("bundle-e2e-replicas")
    a, b, prom, am = (free_port() for _ in range(4))
    alertmanager = start_alertmanager(servers, tmp, am)
    exporters = (start_exporter(servers, "exporter-a", tmp, a),
                 start_exporter(servers, "exporter-b", tmp, b))
    for server in (alertmanager, *exporters):
        server.wait_ready()

    now = int(time.time())
    hooks = (f"http://127.0.0.1:{a}/webhook/acme", f"http://127.0.0.1:{b}/webhook/acme")
    for hook in hooks:
        _post(hook, _history(now))
    late = [export_event(6001, "Completed", now - 2, S3, "Profiles", FOUR_HOURLY),
            export_event(7002, "Initiated", now - 1200, GCS, "Events", FOUR_HOURLY),
            export_event(7002, "Completed", now - 2, GCS, "Events", FOUR_HOURLY)]
    _post(hooks[0], late)
    config = prometheus_config(tmp, {"clevertap-export": [a, b], "prometheus": [prom],
                                     "alertmanager": [am]}, am)
    prometheus = start_prometheus(servers, tmp, prom, config)
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
    return Counter(alert_key(a["metric"]) for a in alerts)


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
        return alerts if {alert_key(a["labels"]) for a in alerts} >= EXPECTED else []

    alerts = wait_until("the alerts in Alertmanager", received)
    assert sorted(alert_key(a["labels"]) for a in alerts) == sorted(EXPECTED)


def test_requests_rejected_by_both_replicas_are_summed(replicas: Replicas) -> None:
    def rejected() -> list[str]:
        alerts = http("GET", f"{replicas.prometheus}/api/v1/alerts")[1]["data"]["alerts"]
        return [a["annotations"]["description"] for a in alerts
                if a["labels"]["alertname"] == "ClevertapExportWebhooksRejected"
                and "rejected 2 webhook(s) as invalid" in a["annotations"]["description"]]

    assert len(wait_until("one rejection alert counting both replicas", rejected)) == 1


def test_after_the_replica_caught_up_nothing_changes(replicas: Replicas) -> None:
    b = replicas.instances[1]
    _post(replicas.hooks[1], replicas.late)
    wait_until("the late completions scraped from B", lambda: prom_query(
        replicas.prometheus, f"clevertap_export_in_flight{_sel(*LATE_STUCK, b)} == 0"))
    _assert_exactly_expected(replicas.prometheus)


def test_dashboard_shows_each_export_once(replicas: Replicas) -> None:
    """Every panel but "Exporter up" aggregates the replicas away."""
    base = replicas.prometheus
    for title, expr in dashboard_targets():
        result = prom_query(base, expr)
        if title == "Exporter up":
            assert sorted(r["metric"]["instance"] for r in result) == sorted(replicas.instances)
        else:
            assert all("instance" not in r["metric"] for r in result), (title, expr, result)
    # Runs in flight: the healthy export's next run and the stuck one, not twice that.
    in_flight = next(e for t, e in dashboard_targets() if t == "Exports in flight")
    assert [float(r["value"][1]) for r in prom_query(base, in_flight)] == [2]


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
                          f'clevertap_export_in_flight{{instance="{a}"}}')) == 7
