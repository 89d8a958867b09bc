"""End to end on loopback: exporter -> real Prometheus (shipped rules) -> real Alertmanager.

Prometheus runs a temporary copy of prometheus/prometheus.yml with 1 s scrape and evaluation
intervals and loopback targets; the rule files and alertmanager/alertmanager.yml are used as
shipped. Webhooks describe a healthy recurring export, an overdue one, a stuck one, a failed
one and a one-time export completed long ago, plus one invalid request, and two the exporter
learns from (learned_history): one overdue on its learned schedule, one slower than usual.
The exporter also reads a --config.file declaring one recurring export that never reports: its
series reach Prometheus from start-up, but it cannot become overdue within the test (its
declaration time is the exporter's first start, and no schedule is shorter than 4h), so no
alert fires for it.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bundle.config import RUNBOOK_URL
from tests.bundle.conftest import (
    AZURE,
    EXPECTED_ALERTS,
    FOUR_HOURLY,
    GCS,
    HOUR,
    S3,
    Server,
    alert_key,
    dashboard_targets,
    dashboards,
    export_event,
    export_history,
    http,
    prom_query,
    prometheus_config,
    start_alertmanager,
    start_exporter,
    start_prometheus,
    substitute,
    wait_until,
)
from tests.helpers import SAMPLES, free_port

ACCOUNT = "acme"
# The declared export that never reports (labels as the exporter normalizes them).
DECLARED = ("amazon_s3", "profiles", "8h")
DECLARED_CONFIG = f"""\
defaults:
  grace: 10m
exports:
  - name: Declared, never seen
    account: {ACCOUNT}
    partner: Amazon S3
    type: Profiles
    frequency: Every 8 hours
    min_runtime: 1m
"""


def learned_history(now: int) -> list[dict[str, Any]]:
    """What the exporter learns from: a One Time profile export re-run every 6h, last started
    10h ago (overdue on its learned schedule: 6h x 1.5 + 30m = 9h30m); exports whose runs take
    10 minutes (a usual high quantile of 15m): one in flight for an hour now (past twice
    that), one whose last run took 30 s (under a tenth of its median), one 2000 s."""
    bodies = []
    for k in range(5, -1, -1):
        start = now - 10 * HOUR - 6 * HOUR * k
        bodies += [export_event(7000 + k, "Initiated", start, S3, "Profiles", "One Time"),
                   export_event(7000 + k, "Completed", start + 600, S3, "Profiles", "One Time")]
    for k in range(5, 0, -1):
        start = now - HOUR - 12 * HOUR * k
        bodies += [export_event(8000 + k, "Initiated", start, AZURE, "Events", "Every 12 hours"),
                   export_event(8000 + k, "Completed", start + 600, AZURE, "Events",
                                "Every 12 hours")]
    # Runs of 10 minutes, then a last one of 30 s (24-hourly) and of 2000 s (12-hourly).
    for first, partner, every, last in ((8100, S3, 24, 30), (8200, GCS, 12, 2000)):
        for k in range(5, -1, -1):
            start = now - 3 * HOUR - every * HOUR * k
            end = start + (last if k == 0 else 600)
            frequency = f"Every {every} hours"
            bodies += [export_event(first + k, "Initiated", start, partner, "Events", frequency),
                       export_event(first + k, "Completed", end, partner, "Events", frequency)]
    return [*bodies, export_event(8000, "Initiated", now - HOUR, AZURE, "Events",
                                  "Every 12 hours")]


EXPECTED = EXPECTED_ALERTS | {
    ("ClevertapExportOverdueOnLearnedSchedule", ("amazon_s3", "profiles", "one_time")),
    ("ClevertapExportRunLongerThanUsual", ("azure_blob_storage", "events", "12h")),
    ("ClevertapExportLastRunShorterThanUsual", ("amazon_s3", "events", "24h")),
    ("ClevertapExportLastRunLongerThanUsual", ("google_cloud_storage", "events", "12h")),
}


@dataclass
class Stack:
    prometheus: str
    alertmanager: str
    exporter: str
    now: int
    tmp: Path
    started: float


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory,
          servers: Callable[..., Server]) -> Stack:
    tmp = tmp_path_factory.mktemp("bundle-e2e")
    ports = {name: free_port() for name in ("exporter", "prometheus", "alertmanager")}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}

    alertmanager = start_alertmanager(servers, tmp, ports["alertmanager"])
    exports_file = tmp / "exports.yml"
    exports_file.write_text(DECLARED_CONFIG)
    started = time.time()
    exporter = start_exporter(servers, "exporter", tmp, ports["exporter"],
                              "--config.file", str(exports_file))
    alertmanager.wait_ready()
    exporter.wait_ready()

    now = int(time.time())
    hook = f"{urls['exporter']}/webhook/{ACCOUNT}"
    history = export_history(now, *learned_history(now))
    for body in history:
        status, answer = http("POST", hook, body)
        assert (status, answer) == (200, {"status": "accepted"}), body
    ping = json.loads((SAMPLES / "clevertap-test-ping.json").read_text())
    assert http("POST", hook, ping)[0] == 200

    config = prometheus_config(tmp, {"clevertap-export": [ports["exporter"]],
                                     "prometheus": [ports["prometheus"]],
                                     "alertmanager": [ports["alertmanager"]]},
                               ports["alertmanager"])
    prometheus = start_prometheus(servers, tmp, ports["prometheus"], config)
    prometheus.wait_ready()
    base = urls["prometheus"]
    # Let Prometheus see the counters before they move, so increase() sees the change.
    wait_until("three scrapes of the exporter", lambda: prom_query(
        base, 'count_over_time(up{job="clevertap-export"}[1m]) >= 3'))

    # Now: the healthy run completes, and one invalid webhook is rejected.
    completed = export_event(1002, "Completed", time.time() - 2, S3, "Events", FOUR_HOURLY)
    assert http("POST", hook, completed)[1] == {"status": "accepted"}
    assert http("POST", hook, raw=b"{not json")[0] == 400
    return Stack(base, urls["alertmanager"], urls["exporter"], now, tmp, started)


def _value(base: str, expr: str) -> float:
    result = prom_query(base, expr)
    assert len(result) == 1, f"{expr}: {result}"
    return float(result[0]["value"][1])


def _firing(base: str) -> set[tuple[str, tuple[str, ...]]]:
    result = prom_query(base, 'ALERTS{alertstate="firing"}')
    return {alert_key(r["metric"]) for r in result}


def test_series_have_the_posted_values(stack: Stack) -> None:
    base, now = stack.prometheus, stack.now

    def sel(partner: str, export_type: str, frequency: str) -> str:
        return (f'{{job="clevertap-export", account="{ACCOUNT}", partner="{partner}", '
                f'export_type="{export_type}", frequency="{frequency}"}}')

    healthy = sel("amazon_s3", "events", "4h")
    overdue = sel("google_cloud_storage", "profiles", "4h")
    stuck = sel("azure_blob_storage", "events", "4h")
    failed = sel("azure_blob_storage", "profiles", "8h")
    one_time = sel("google_cloud_storage", "events", "one_time")
    wait_until("the healthy run's completion scraped", lambda: prom_query(
        base, f"clevertap_export_in_flight{healthy} == 0"))

    assert _value(base, "up{job=\"clevertap-export\"}") == 1
    assert _value(base, f"clevertap_export_last_completed_timestamp_seconds{overdue}") == (
        now - 7 * HOUR - 1800)
    assert _value(base, f"clevertap_export_expected_interval_seconds{overdue}") == 4 * HOUR
    assert _value(base, f"clevertap_export:overdue_threshold_seconds{overdue}") == 23400
    assert _value(base, f"clevertap_export_in_flight{stuck}") == 1
    assert _value(base, f"clevertap_export_in_flight_oldest_start_timestamp_seconds{stuck}") == (
        now - 5 * HOUR)
    assert _value(base, f"clevertap_export:max_runtime_seconds{stuck}") == 4 * HOUR
    assert _value(base, f"clevertap_export_last_failed_timestamp_seconds{failed}") == now - HOUR
    assert _value(
        base, f'clevertap_export_status_events_total{failed[:-1]}, status="failed"}}') == 1
    assert _value(base, f"clevertap_export_in_flight{failed}") == 0
    assert prom_query(base, f"clevertap_export_expected_interval_seconds{one_time}") == []
    assert _value(base, f"clevertap_export:max_runtime_seconds{one_time}") == 6 * HOUR
    assert _value(base, f"clevertap_export_last_completed_timestamp_seconds{one_time}") == (
        now - 29 * HOUR)
    assert _value(base, f"clevertap_export_duration_seconds_count{healthy}") == 2
    assert 1190 <= _value(base, f"clevertap_export_last_duration_seconds{healthy}") <= 1260
    assert abs(_value(base, f'clevertap_export_last_delivery_delay_seconds{{account="{ACCOUNT}"}}')
               ) < 60
    assert _value(base, 'clevertap_export_webhook_requests_total{outcome="invalid"}') == 1
    assert _value(base, 'clevertap_export_webhook_requests_total{outcome="accepted"}') == (
        len(export_history(now, *learned_history(now))) + 1)
    assert _value(base, 'clevertap_export_webhook_requests_total{outcome="test"}') == 1
    # The longest schedule known (the 24-hourly export of learned_history) plus the margin.
    assert _value(base, "clevertap_export:webhook_silence_threshold_seconds") == 24 * HOUR + 7200


def test_declared_export_reaches_prometheus_without_alerting(stack: Stack) -> None:
    base = stack.prometheus
    partner, export_type, frequency = DECLARED
    sel = (f'{{job="clevertap-export", account="{ACCOUNT}", partner="{partner}", '
           f'export_type="{export_type}", frequency="{frequency}"}}')
    info = wait_until("the declared export's info series", lambda: prom_query(
        base, f"clevertap_export_declared_info{sel}"))
    assert [r["metric"]["name"] for r in info] == ["Declared, never seen"]
    assert float(info[0]["value"][1]) == 1
    assert _value(base, f"clevertap_export_in_flight{sel}") == 0
    assert _value(base, f"clevertap_export_expected_interval_seconds{sel}") == 8 * HOUR
    assert prom_query(base, f"clevertap_export_last_completed_timestamp_seconds{sel}") == []
    declared_at = _value(base, f"clevertap_export_declared_timestamp_seconds{sel}")
    assert stack.started - 1 <= declared_at <= time.time()
    # Its own grace (from defaults:) and min_runtime reach the recording rules.
    assert _value(base, f"clevertap_export_grace_seconds{sel}") == 600
    assert _value(base, f"clevertap_export_min_runtime_seconds{sel}") == 60
    assert _value(base, f"clevertap_export:overdue_threshold_seconds{sel}") == 12 * HOUR + 600
    # Never completed: counted from its declaration, seconds ago, far below the threshold.
    since = wait_until("the declared export's time since completion", lambda: prom_query(
        base, f"clevertap_export:time_since_last_completion_seconds{sel}"))
    assert 0 <= float(since[0]["value"][1]) < 300
    assert _value(base, "clevertap_export_config_last_reload_successful") == 1
    wait_until("the expected alerts to fire", lambda: _firing(base) >= EXPECTED)
    alerts = prom_query(base, f"ALERTS{sel}")
    assert alerts == [], alerts


def test_exactly_the_expected_alerts_fire(stack: Stack) -> None:
    base = stack.prometheus
    wait_until("the expected alerts to fire", lambda: _firing(base) >= EXPECTED)
    # Give every rule a few more evaluations to raise anything unexpected.
    time.sleep(3)
    assert _firing(base) == EXPECTED
    pending = prom_query(base, 'ALERTS{alertstate="pending"}')
    assert pending == [], pending


def test_alerts_arrive_in_alertmanager(stack: Stack) -> None:
    def received() -> list[dict[str, Any]]:
        status, alerts = http("GET", f"{stack.alertmanager}/api/v2/alerts")
        assert status == 200
        return alerts if {alert_key(a["labels"]) for a in alerts} >= EXPECTED else []

    alerts = wait_until("the alerts in Alertmanager", received)
    assert {alert_key(a["labels"]) for a in alerts} == EXPECTED
    for alert in alerts:
        assert alert["status"]["state"] == "active", alert
        assert [r["name"] for r in alert["receivers"]] == ["clevertap-webhook"]
        assert alert["labels"]["severity"] in {"critical", "warning"}
        name = alert["labels"]["alertname"]
        assert alert["annotations"]["runbook_url"] == f"{RUNBOOK_URL}#{name.lower()}"
        assert alert["annotations"]["summary"] and alert["annotations"]["description"]
    overdue = next(a for a in alerts if a["labels"]["alertname"] == "ClevertapExportOverdue")
    assert overdue["labels"]["account"] == ACCOUNT
    assert "has not completed for 7h 30m" in overdue["annotations"]["description"]


def test_every_dashboard_query_returns_data(stack: Stack) -> None:
    wait_until("the expected alerts to fire", lambda: _firing(stack.prometheus) >= EXPECTED)
    checked = 0
    for title, expr in dashboard_targets():
        result = prom_query(stack.prometheus, expr)
        values = [float(r["value"][1]) for r in result]
        assert values, f"panel {title!r} query returned nothing: {expr}"
        assert any(not math.isnan(v) for v in values), f"panel {title!r} returned only NaN: {expr}"
        checked += 1
    assert checked >= 20


def test_every_template_variable_query_returns_data(stack: Stack) -> None:
    for dashboard in dashboards():
        for var in dashboard["templating"]["list"]:
            if var["type"] != "query":
                continue
            query = var["query"] if isinstance(var["query"], str) else var["query"]["query"]
            match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query, re.S)
            assert match, f"variable {var['name']}: unsupported query {query}"
            metric, label = substitute(match.group(1)), match.group(2)
            result = prom_query(stack.prometheus, metric)
            values = {r["metric"].get(label) for r in result} - {None}
            assert values, f"variable {var['name']}: {metric} has no {label} label values"
            # The declared export, which never reported, can be picked too.
            declared = dict(zip(("partner", "export_type", "frequency"), DECLARED, strict=True))
            assert declared.get(label, ACCOUNT) in values, (var["name"], values)


def _post_alert(stack: Stack, name: str, **labels: str) -> None:
    alert = [{"labels": {"alertname": name, "job": "clevertap-export", "severity": "critical",
                         **labels}, "annotations": {"summary": "test"}}]
    assert http("POST", f"{stack.alertmanager}/api/v2/alerts", alert)[0] == 200


def _export_alerts(stack: Stack) -> list[dict[str, Any]]:
    alerts = http("GET", f"{stack.alertmanager}/api/v2/alerts")[1]
    return [a for a in alerts if not a["labels"]["alertname"].startswith("ClevertapExporter")]


def test_alertmanager_inhibition_of_export_alerts(stack: Stack) -> None:
    """A (synthetic) ClevertapExporterAbsent mutes the export alerts of the same job; a
    ClevertapExporterDown of one replica does not, since the other replicas still see them."""
    wait_until("the alerts in Alertmanager", lambda: {
        alert_key(a["labels"]) for a in _export_alerts(stack)} >= EXPECTED)
    _post_alert(stack, "ClevertapExporterDown", instance="127.0.0.1:1")
    wait_until("the Down alert in Alertmanager", lambda: any(
        a["labels"]["alertname"] == "ClevertapExporterDown"
        for a in http("GET", f"{stack.alertmanager}/api/v2/alerts")[1]))
    time.sleep(1)
    assert all(a["status"]["state"] == "active" for a in _export_alerts(stack))
    _post_alert(stack, "ClevertapExporterAbsent")

    def inhibited() -> list[dict[str, Any]]:
        exports = _export_alerts(stack)
        done = all(a["status"]["state"] == "suppressed" and a["status"]["inhibitedBy"]
                   for a in exports)
        return exports if done else []

    assert len(wait_until("inhibition of the export alerts", inhibited)) == len(EXPECTED)
