"""Durability: after SIGKILL, a restarted exporter exposes every acknowledged event again."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.helpers import ExporterProcess, Samples, event, labels, series

# Metrics that are part of the durable export state (process counters restart at zero).
DURABLE = (
    "clevertap_export_status_events_total",
    "clevertap_export_last_initiated_timestamp_seconds",
    "clevertap_export_last_completed_timestamp_seconds",
    "clevertap_export_last_failed_timestamp_seconds",
    "clevertap_export_in_flight",
    "clevertap_export_in_flight_oldest_start_timestamp_seconds",
    "clevertap_export_duration_seconds_bucket",
    "clevertap_export_duration_seconds_sum",
    "clevertap_export_duration_seconds_count",
    "clevertap_export_last_duration_seconds",
    "clevertap_export_expected_interval_seconds",
    "clevertap_export_abandoned_total",
    "clevertap_export_webhook_last_received_timestamp_seconds",
    "clevertap_export_last_delivery_delay_seconds",
)


def durable(m: Samples) -> Samples:
    return {k: v for k, v in m.items() if k in DURABLE}


def test_sigkill_after_acknowledged_posts(
    exporter_process: Callable[..., ExporterProcess],
) -> None:
    exp = exporter_process("--max-label-values", "4")
    exp.start()
    t0 = time.time() - 6 * 3600
    sent = [
        (event(1, "Initiated", t0), None),
        (event(1, "Completed", t0 + 900), None),
        (event(2, "Initiated", t0 + 3600), "acme"),  # stays in flight
        (event(3, "Initiated", t0 + 7200, partner="GCS", frequency="Daily"), None),
        (event(3, "Failed", t0 + 7300, partner="GCS", frequency="Daily"), None),
        (event(4, "Completed", t0, partner="Azure", frequency="One Time"), None),
    ]
    for body, account in sent:
        assert exp.post(body, account) == (200, "accepted")
    # Three partners above plus p0 fill the cap of 4; p1..p4 fold into "other".
    for i in range(5):
        assert exp.post(event(100 + i, "Completed", t0, partner=f"p{i}"))[0] == 200
    before = exp.metrics()
    exp.kill()

    exp.start()
    after = exp.metrics()
    assert durable(after) == durable(before)
    assert after["clevertap_export_in_flight"][series(account="acme")] == 1
    # The duplicate memory survived: a redelivery is still recognised.
    assert exp.post(sent[2][0], "acme") == (200, "duplicate")
    assert exp.post(sent[1][0]) == (200, "duplicate")
    # The late partner values still fold into "other" after the restart.
    assert exp.post(event(200, "Completed", t0, partner="p9"))[0] == 200
    m = exp.metrics()
    assert m["clevertap_export_label_overflow_total"][labels(label="partner")] == 1
    assert m["clevertap_export_status_events_total"][
        series(partner="other", status="completed")] == 5  # p1..p4 before, p9 after
