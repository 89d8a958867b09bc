"""The webhook's behaviour end to end: real aiohttp server, real SQLite file, metrics read back."""

from __future__ import annotations

import asyncio
import base64
import gzip
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from tests.helpers import SAMPLES, Exporter, event, labels, parse_metrics, series

Start = Callable[..., Awaitable[Exporter]]
S3_4H = series()
HOUR = 3600.0


async def test_documented_sample_and_metrics(exporter: Exporter) -> None:
    status, body = await exporter.post((SAMPLES / "completed-one-time-gcs.json").read_bytes(),
                                       headers={"Content-Type": "text/plain"})
    assert (status, body) == (200, {"status": "accepted"})
    m = await exporter.metrics()
    gcs = series(partner="google_cloud_storage", frequency="one_time")
    assert m["clevertap_export_last_completed_timestamp_seconds"][gcs] == 1690303852.0
    gcs_completed = series(partner="google_cloud_storage", frequency="one_time",
                           status="completed")
    assert m["clevertap_export_status_events_total"][gcs_completed] == 1
    assert m["clevertap_export_in_flight"][gcs] == 0
    # One-time exports have no schedule, so no expected interval.
    assert gcs not in m.get("clevertap_export_expected_interval_seconds", {})
    assert m["clevertap_export_webhook_requests_total"][labels(outcome="accepted")] == 1
    assert m["clevertap_export_exporter_build_info"]
    assert m["clevertap_export_webhook_last_received_timestamp_seconds"][()] > 1.7e9


async def test_recurring_run_in_flight_then_completed(exporter: Exporter) -> None:
    assert (await exporter.post((SAMPLES / "initiated-recurring-s3.json").read_bytes()))[0] == 200
    m = await exporter.metrics()
    assert m["clevertap_export_in_flight"][S3_4H] == 1
    assert m["clevertap_export_in_flight_oldest_start_timestamp_seconds"][S3_4H] == 1701417603.0
    assert m["clevertap_export_expected_interval_seconds"][series(source="clevertap")] == 4 * HOUR

    assert (await exporter.post((SAMPLES / "completed-recurring-s3.json").read_bytes()))[0] == 200
    m = await exporter.metrics()
    assert m["clevertap_export_in_flight"][S3_4H] == 0
    assert S3_4H not in m.get("clevertap_export_in_flight_oldest_start_timestamp_seconds", {})
    assert m["clevertap_export_duration_seconds_count"][S3_4H] == 1
    assert m["clevertap_export_duration_seconds_sum"][S3_4H] == 2474.0
    assert m["clevertap_export_duration_seconds_bucket"][series(le="1800.0")] == 0
    assert m["clevertap_export_duration_seconds_bucket"][series(le="3600.0")] == 1
    assert m["clevertap_export_last_duration_seconds"][S3_4H] == 2474.0


async def test_test_ping_changes_no_export_metric(exporter: Exporter) -> None:
    before = await exporter.metrics()
    status, body = await exporter.post((SAMPLES / "clevertap-test-ping.json").read_bytes())
    assert status == 200 and body["status"] == "test"
    after = await exporter.metrics()
    for name in ("clevertap_export_status_events_total", "clevertap_export_in_flight",
                 "clevertap_export_last_completed_timestamp_seconds"):
        assert after.get(name, {}) == before.get(name, {})
    assert after["clevertap_export_webhook_requests_total"][labels(outcome="test")] == 1


async def test_redelivery_counts_once(exporter: Exporter) -> None:
    t0 = time.time() - 600
    assert (await exporter.post(event(5, "Initiated", t0)))[1] == {"status": "accepted"}
    assert (await exporter.post(event(5, "Initiated", t0)))[1] == {"status": "duplicate"}
    assert (await exporter.post(event(5, "Completed", t0 + 60)))[1] == {"status": "accepted"}
    assert (await exporter.post(event(5, "Completed", t0 + 60)))[1] == {"status": "duplicate"}
    m = await exporter.metrics()
    assert m["clevertap_export_status_events_total"][series(status="initiated")] == 1
    assert m["clevertap_export_status_events_total"][series(status="completed")] == 1
    assert m["clevertap_export_duration_seconds_count"][S3_4H] == 1
    assert m["clevertap_export_webhook_requests_total"][labels(outcome="duplicate")] == 2


async def test_three_deliveries_of_one_event_one_after_a_503_count_once(
        start_exporter: Start) -> None:
    """CleverTap's safe reading (docs/runbook.md): up to 3 deliveries of one event, retried after
    a 5xx too. The first is refused as overloaded while another request holds the only slot;
    the 2 retries are stored once."""
    exporter = await start_exporter("--max-concurrent-requests", "1")
    release = asyncio.Event()

    async def held_body() -> AsyncIterator[bytes]:
        yield b'{"Export Request Id": '
        await release.wait()
        yield b'"held"}'

    holder = asyncio.create_task(exporter.client.post("/webhook", data=held_body()))
    for _ in range(200):  # until the server is reading the held body (bounded: 2 s)
        m = await exporter.metrics()
        if m["clevertap_export_webhook_requests_in_progress"][()] == 1:
            break
        await asyncio.sleep(0.01)
    one = event("retried", "Completed", time.time() - 60)
    answers = [await exporter.post(one)]
    release.set()
    assert (await holder).status == 422  # the held body is not a whole event
    answers += [await exporter.post(one), await exporter.post(one)]
    assert [a[1]["status"] for a in answers] == ["overloaded", "accepted", "duplicate"]
    assert answers[0][0] == 503
    m = await exporter.metrics()
    assert m["clevertap_export_status_events_total"][series(status="completed")] == 1
    requests = m["clevertap_export_webhook_requests_total"]
    assert [requests[labels(outcome=o)] for o in ("overloaded", "accepted", "duplicate")] == [
        1, 1, 1]


async def test_completed_before_initiated_leaves_no_phantom(exporter: Exporter) -> None:
    t0 = time.time() - 3 * HOUR
    await exporter.post(event(9, "Completed", t0 + 1800))
    await exporter.post(event(9, "Initiated", t0))  # delivered late
    m = await exporter.metrics()
    assert m["clevertap_export_in_flight"][S3_4H] == 0
    assert m["clevertap_export_last_initiated_timestamp_seconds"][S3_4H] == t0
    assert m["clevertap_export_last_completed_timestamp_seconds"][S3_4H] == t0 + 1800


async def test_recurring_id_reuse_starts_new_runs(exporter: Exporter) -> None:
    t0 = time.time() - 10 * HOUR
    for run in range(2):
        start = t0 + run * 4 * HOUR
        await exporter.post(event(77, "Initiated", start))
        m = await exporter.metrics()
        assert m["clevertap_export_in_flight"][S3_4H] == 1
        assert m["clevertap_export_in_flight_oldest_start_timestamp_seconds"][S3_4H] == start
        await exporter.post(event(77, "Completed", start + 600 * (run + 1)))
    m = await exporter.metrics()
    assert m["clevertap_export_in_flight"][S3_4H] == 0
    assert m["clevertap_export_duration_seconds_count"][S3_4H] == 2
    assert m["clevertap_export_duration_seconds_sum"][S3_4H] == 600 + 1200
    assert m["clevertap_export_last_duration_seconds"][S3_4H] == 1200


async def test_timestamps_only_move_forward(exporter: Exporter) -> None:
    now = time.time()
    await exporter.post(event(1, "Completed", now - 60))
    await exporter.post(event(2, "Completed", now - 5 * HOUR))  # older, delayed delivery
    await exporter.post(event(3, "Initiated", now - 30))
    await exporter.post(event(4, "Initiated", now - 9 * HOUR))
    m = await exporter.metrics()
    assert m["clevertap_export_last_completed_timestamp_seconds"][S3_4H] == now - 60
    assert m["clevertap_export_last_initiated_timestamp_seconds"][S3_4H] == now - 30
    assert m["clevertap_export_in_flight"][S3_4H] == 2
    assert m["clevertap_export_in_flight_oldest_start_timestamp_seconds"][S3_4H] == now - 9 * HOUR


async def test_failed_status(exporter: Exporter) -> None:
    t0 = time.time() - HOUR
    await exporter.post(event(11, "Initiated", t0))
    await exporter.post(event(11, "Failure", t0 + 100))
    m = await exporter.metrics()
    assert m["clevertap_export_last_failed_timestamp_seconds"][S3_4H] == t0 + 100
    assert m["clevertap_export_in_flight"][S3_4H] == 0
    assert m["clevertap_export_status_events_total"][series(status="failed")] == 1
    assert m["clevertap_export_duration_seconds_count"][S3_4H] == 0


async def test_in_flight_series_stays_at_zero(exporter: Exporter) -> None:
    t0 = time.time() - HOUR
    await exporter.post(event(1, "Initiated", t0))
    await exporter.post(event(1, "Completed", t0 + 60))
    m = await exporter.metrics()
    assert m["clevertap_export_in_flight"][S3_4H] == 0


async def test_abandonment_after_timeout(start_exporter: Start) -> None:
    exp = await start_exporter("--in-flight-timeout", "2h")
    now = time.time()
    await exp.post(event(1, "Initiated", now - 3 * HOUR))  # past the timeout
    await exp.post(event(2, "Initiated", now - HOUR))  # still within it
    assert await exp.tracker.expire() == 1
    m = await exp.metrics()
    assert m["clevertap_export_in_flight"][S3_4H] == 1
    assert m["clevertap_export_abandoned_total"][S3_4H] == 1
    assert m["clevertap_export_in_flight_oldest_start_timestamp_seconds"][S3_4H] == now - HOUR


async def test_abandonment_checked_at_start_up(start_exporter: Start) -> None:
    first = await start_exporter("--in-flight-timeout", "48h")
    await first.post(event(1, "Initiated", time.time() - 3 * HOUR))
    await first.client.close()
    again = await start_exporter("--in-flight-timeout", "2h")
    m = await again.metrics()
    assert m["clevertap_export_in_flight"][S3_4H] == 0
    assert m["clevertap_export_abandoned_total"][S3_4H] == 1


async def test_accounts_in_path(exporter: Exporter) -> None:
    await exporter.post(event(1, "Initiated"), account="acme-prod.eu_1")
    await exporter.post(event(1, "Initiated"), account="other-team")
    m = await exporter.metrics()
    assert m["clevertap_export_in_flight"][series(account="acme-prod.eu_1")] == 1
    assert m["clevertap_export_in_flight"][series(account="other-team")] == 1
    assert set(m["clevertap_export_last_delivery_delay_seconds"]) == {
        labels(account="acme-prod.eu_1"), labels(account="other-team")}


async def test_bad_account_is_400(exporter: Exporter) -> None:
    status, body = await exporter.post(event(), account="x" * 65)
    assert status == 400 and "account" in body["error"]
    status, body = await exporter.post(event(), account="bad%20name")
    assert status == 400


async def test_delivery_delay_shows_time_zone_error(start_exporter: Start) -> None:
    exp = await start_exporter("--timezone", "UTC")
    # An account in India (UTC+05:30) reporting local wall-clock time, read as UTC.
    local_now = time.gmtime(time.time() + 5.5 * HOUR)
    text = time.strftime("%d/%m/%Y %I:%M:%S %p", local_now)
    await exp.post(event(1, "Initiated", text))
    delay = (await exp.metrics())["clevertap_export_last_delivery_delay_seconds"]
    assert -5.5 * HOUR - 5 < delay[labels(account="default")] < -5.5 * HOUR + 5


async def test_missing_time_uses_receipt_and_is_counted(exporter: Exporter) -> None:
    body = event(1, "Initiated")
    del body["Date and Time"]
    before = time.time()
    assert (await exporter.post(body))[0] == 200
    await exporter.post(event(2, "Initiated", "next tuesday"))
    m = await exporter.metrics()
    assert m["clevertap_export_last_initiated_timestamp_seconds"][S3_4H] >= before
    assert m["clevertap_export_event_time_unparsed_total"][labels(reason="missing")] == 1
    assert m["clevertap_export_event_time_unparsed_total"][labels(reason="unparseable")] == 1


async def test_error_statuses_name_the_problem(exporter: Exporter) -> None:
    cases = [
        (b"{oops", 400, "not valid JSON"),
        (b"[]", 400, "JSON object"),
        (b"", 400, "empty"),
        (b'{"Partner": "S3"}', 422, "Export Request Id"),
        (b'{"Export Request Id": 1, "Partner": "S3", "Status": []}', 422, "Status"),
    ]
    for body, status, text in cases:
        got, answer = await exporter.post(body)
        assert got == status, body
        assert answer["status"] == "invalid"
        assert text in answer["error"]
    m = await exporter.metrics()
    assert m["clevertap_export_webhook_requests_total"][labels(outcome="invalid")] == len(cases)


async def test_wrong_method_and_path_are_json(exporter: Exporter) -> None:
    resp = await exporter.client.get("/webhook")
    assert resp.status == 405
    assert (await resp.json())["error"]
    resp = await exporter.client.post("/nowhere", data=b"{}")
    assert resp.status == 404


async def test_only_the_webhook_paths_are_webhooks(start_exporter: Start) -> None:
    """A path that merely starts like the webhook's is any other unknown path: not among the
    last webhooks, not counted, no webhook credentials asked (issue 18: it was a prefix)."""
    exp = await start_exporter("--auth-token", "tok")
    statuses = [(await exp.client.request(method, path, data=b"{}")).status for method, path
                in (("GET", "/webhooksXYZ"), ("POST", "/webhookx"), ("POST", "/webhook/"))]
    events = (await (await exp.client.get("/api/v1/events")).json())["events"]
    assert events == []
    assert statuses == [404, 404, 404]
    # The webhook's own paths still are, whatever the method or the answer.
    bearer = {"Authorization": "Bearer tok"}
    assert (await exp.client.get("/webhook")).status == 401
    assert (await exp.client.get("/webhook", headers=bearer)).status == 405
    assert (await exp.client.post("/webhook/a%2Fb", data=b"{}", headers=bearer)).status == 400
    events = (await (await exp.client.get("/api/v1/events")).json())["events"]
    assert [(e["outcome"], e["http_status"]) for e in events] == [
        ("invalid", 400), ("error", 405), ("unauthorized", 401)]
    m = await exp.metrics()
    requests = m["clevertap_export_webhook_requests_total"]
    assert requests[labels(outcome="unauthorized")] == 1
    assert requests[labels(outcome="invalid")] == 1


async def test_body_limit(start_exporter: Start) -> None:
    exp = await start_exporter("--max-body-bytes", "1024")
    body = event()
    body["padding"] = "x" * 2000
    status, answer = await exp.post(body)
    assert status == 413
    assert "1024" in answer["error"]

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 200
    resp = await exp.client.post("/webhook", data=chunks())
    assert resp.status == 413
    m = await exp.metrics()
    assert m["clevertap_export_webhook_requests_total"][labels(outcome="too_large")] == 2
    assert (await exp.post(event()))[0] == 200


async def test_token_auth(start_exporter: Start) -> None:
    exp = await start_exporter("--auth-token", "s3cret", "--auth-header", "X-Webhook-Token")
    assert (await exp.post(event(1)))[0] == 401
    status, answer = await exp.post(event(1), headers={"Authorization": "Bearer wrong"})
    assert status == 401 and "invalid credentials" in answer["error"]
    assert (await exp.post(event(1), headers={"Authorization": "Bearer s3cret"}))[0] == 200
    assert (await exp.post(event(2), headers={"X-Webhook-Token": "s3cret"}))[0] == 200
    assert (await exp.post(event(3), headers={"X-Webhook-Token": "nope"}))[0] == 401
    resp = await exp.client.post("/webhook", data=b"{}")
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    # Scrapes and health checks need no webhook credentials.
    assert (await exp.client.get("/metrics")).status == 200
    assert (await exp.client.get("/healthz")).status == 200
    m = await exp.metrics()
    assert m["clevertap_export_webhook_requests_total"][labels(outcome="unauthorized")] == 4
    assert m["clevertap_export_webhook_requests_total"][labels(outcome="accepted")] == 2


async def test_basic_auth(start_exporter: Start) -> None:
    exp = await start_exporter("--basic-auth-user", "clevertap",
                               "--basic-auth-password", "pa:ss")

    def basic(user: str, password: str) -> dict[str, str]:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    assert (await exp.post(event(1), headers=basic("clevertap", "pa:ss")))[0] == 200
    assert (await exp.post(event(2), headers=basic("clevertap", "wrong")))[0] == 401
    assert (await exp.post(event(3), headers=basic("someone", "pa:ss")))[0] == 401
    assert (await exp.post(event(4), headers={"Authorization": "Basic !!!"}))[0] == 401
    status, answer = await exp.post(event(5))
    assert status == 401 and "missing credentials" in answer["error"]
    resp = await exp.client.post("/webhook", data=b"{}")
    assert resp.headers["WWW-Authenticate"].startswith("Basic")


async def test_cardinality_cap_folds_into_other(start_exporter: Start) -> None:
    exp = await start_exporter("--max-label-values", "3")
    for i in range(10):
        status, _ = await exp.post(event(i, "Completed", partner=f"Partner {i}"))
        assert status == 200
    m = await exp.metrics()
    partners = {dict(k)["partner"] for k in m["clevertap_export_last_completed_timestamp_seconds"]}
    assert partners == {"partner_0", "partner_1", "partner_2", "other"}
    assert m["clevertap_export_label_overflow_total"][labels(label="partner")] == 7
    # Admitted values survive a restart; new ones still fold.
    await exp.client.close()
    again = await start_exporter("--max-label-values", "3")
    await again.post(event(100, "Completed", partner="Partner 1"))
    await again.post(event(101, "Completed", partner="Partner 99"))
    m = await again.metrics()
    partners = {dict(k)["partner"] for k in m["clevertap_export_last_completed_timestamp_seconds"]}
    assert partners == {"partner_0", "partner_1", "partner_2", "other"}
    assert m["clevertap_export_label_overflow_total"][labels(label="partner")] == 1


async def test_openmetrics_and_gzip(exporter: Exporter) -> None:
    await exporter.post(event(1, "Completed"))
    resp = await exporter.client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
    text = await resp.text()
    assert text.rstrip().endswith("# EOF")
    assert "clevertap_export_status_events_total" in text
    resp = await exporter.client.get("/metrics", headers={"Accept-Encoding": "gzip"},
                                     auto_decompress=False)
    assert resp.headers["Content-Encoding"] == "gzip"
    text = gzip.decompress(await resp.read()).decode()
    assert parse_metrics(text)["clevertap_export_in_flight"][S3_4H] == 0


async def test_health_and_readiness(exporter: Exporter) -> None:
    resp = await exporter.client.get("/healthz")
    assert resp.status == 200
    resp = await exporter.client.get("/readyz")
    assert (resp.status, (await resp.json())["status"]) == (200, "ready")


async def test_request_outcomes_and_latency_histogram(exporter: Exporter) -> None:
    sample = (SAMPLES / "initiated-recurring-s3.json").read_bytes()
    for body in (sample, sample, b"not json"):
        await exporter.post(body)
    m = await exporter.metrics()
    requests = m["clevertap_export_webhook_requests_total"]
    assert requests[labels(outcome="accepted")] == 1
    assert requests[labels(outcome="duplicate")] == 1
    assert requests[labels(outcome="invalid")] == 1
    assert requests[labels(outcome="aborted")] == 0  # every outcome from zero
    # rate_limited too, though only a web config's rate_limit refuses so (issue 18: it was
    # left out, so it had no series until the first refusal, nor a word in the help).
    assert requests[labels(outcome="rate_limited")] == 0
    buckets = m["clevertap_export_webhook_request_duration_seconds_bucket"]
    counts = [buckets[labels(le=le)] for le in ("0.0005", "0.01", "1.0", "5.0", "+Inf")]
    assert counts == sorted(counts) and counts[-1] == 3  # cumulative, +Inf holds them all
    assert m["clevertap_export_webhook_request_duration_seconds_count"][()] == 3
    assert 0 < m["clevertap_export_webhook_request_duration_seconds_sum"][()] < 60
