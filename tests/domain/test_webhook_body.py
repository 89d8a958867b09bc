"""What a webhook body may say: event times in a window, exact ids, unknown values counted and
marked, near-miss field names, and the DST fall-back hour."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from exporter.domain.payload import PayloadError, StatusEvent, parse_body
from exporter.domain.timeparse import parse_event_readings, parse_event_time
from exporter.tools import main as tools_main
from tests.helpers import Exporter, event, labels, series

Start = Callable[..., Awaitable[Exporter]]
UTC = ZoneInfo("UTC")
NY = ZoneInfo("America/New_York")


async def test_far_future_completion_is_refused_and_counted(start_exporter: Start) -> None:
    exp = await start_exporter()
    status, answer = await exp.post(event(1, "Completed", "31/12/9999 11:59:59 PM"))
    assert status == 422
    assert "years after its receipt; at most 24 hours ahead is accepted" in answer["error"]
    assert "--event-time-max-ahead" in answer["fields"]["Date and Time"]
    status, answer = await exp.post(event(2, "Initiated", "01/01/0001 12:00:00 AM"))
    assert status == 422 and "before 2015-01-01" in answer["error"]
    m = await exp.metrics()
    assert m["clevertap_export_event_time_refused_total"] == {
        labels(reason="too_far_ahead"): 1, labels(reason="too_early"): 1}
    assert m["clevertap_export_webhook_requests_total"][labels(outcome="invalid")] == 2
    # Nothing of either reached the model: the overdue alert still sees the real completion.
    assert series() not in m.get("clevertap_export_last_completed_timestamp_seconds", {})
    now = time.time()
    assert (await exp.post(event(3, "Completed", now - 60)))[0] == 200
    m = await exp.metrics()
    assert m["clevertap_export_last_completed_timestamp_seconds"][series()] == \
        pytest.approx(now - 60)


async def test_event_time_window_is_configurable(start_exporter: Start) -> None:
    exp = await start_exporter("--event-time-max-ahead", "2h", "--event-time-min", "2024-01-01")
    assert (await exp.post(event(1, "Initiated", time.time() + 3 * 3600)))[0] == 422
    assert (await exp.post(event(2, "Initiated", time.time() + 3600)))[0] == 200
    assert (await exp.post(event(3, "Initiated", "31/12/2023 11:00:00 PM")))[0] == 422


def test_ids_beyond_64_bits_are_kept_exact() -> None:
    ids = []
    for literal in ("18446744073709551616", "18446744073709551617", "-9223372036854775809",
                    "123456789012345678901234567890", "9007199254740993"):
        body = ('{"Export Request Id": ' + literal + ', "Partner": "S3", "Status": '
                '"Initiated", "Date and Time": 1700000000.5}').encode()
        ev = parse_body(body, "acme", 1_700_000_000.0, UTC)
        assert isinstance(ev, StatusEvent)
        assert ev.export_id == literal and ev.event_time == 1700000000.5
        ids.append(ev.export_id)
    assert len(set(ids)) == len(ids)


async def test_ids_beyond_64_bits_are_not_duplicates(start_exporter: Start) -> None:
    exp = await start_exporter()
    for literal in ("18446744073709551616", "18446744073709551617"):
        body = ('{"Export Request Id": ' + literal + ', "Partner": "S3", "Status": '
                '"Initiated"}').encode()
        assert await exp.post(body) == (200, {"status": "accepted"})


async def test_unknown_values_are_accepted_counted_and_marked(start_exporter: Start) -> None:
    exp = await start_exporter()
    body = event(1, "Initiated", partner="Dropbx", type_="Evnts", frequency="Weekly")
    assert await exp.post(body) == (200, {"status": "accepted"})
    assert (await exp.post(event(2, "Initiated")))[0] == 200  # known values: not counted
    m = await exp.metrics()
    assert m["clevertap_export_unknown_values_total"] == {
        labels(label="partner"): 1, labels(label="export_type"): 1,
        labels(label="frequency"): 1}
    page = await (await exp.client.get("/?refresh=0")).text()
    assert 'data-unknown="partner"' in page and 'data-unknown="frequency"' in page
    assert "did you mean events?" in page  # "Evnts"


def test_missing_field_names_a_near_match() -> None:
    body = json.dumps({"export request id": 1, "partner": "S3", "status": "Completed"})
    result = parse_body(body.encode(), "acme", 1_700_000_000.0, UTC)
    assert isinstance(result, PayloadError) and result.http_status == 422
    assert result.fields["Status"] == \
        "required field is missing (found 'status', did you mean 'Status'?)"
    assert "found 'export request id'" in result.fields["Export Request Id"]
    typo = parse_body(b'{"Export Request Id": 1, "Partner": "S3", "Staus": "Completed"}',
                      "acme", 1_700_000_000.0, UTC)
    assert isinstance(typo, PayloadError)
    assert "found 'Staus', did you mean 'Status'?" in typo.fields["Status"]


def test_check_config_warns_with_the_nearest_known_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "exports.yml"
    path.write_text("exports:\n  - partner: Dropbx\n    type: Evnts\n    frequency: 4h\n")
    assert tools_main(["check-config", str(path)], env={}) == 0
    err = capsys.readouterr().err
    assert "exports[0].type: 'Evnts' is not a type CleverTap is known to send (did you " \
        "mean 'events'?)" in err
    assert "exports[0].partner: 'Dropbx'" in err and "known: amazon_s3" in err


def test_fall_back_hour_has_two_readings_and_spring_forward_gap_is_documented() -> None:
    # 3 November 2024: 01:00-02:00 happens twice in New York (EDT, then EST).
    first, second = parse_event_readings("03/11/2024 1:10:00 AM", NY)
    assert first == 1730610600.0  # 01:10 EDT = 05:10 UTC
    assert second == 1730614200.0  # 01:10 EST = 06:10 UTC
    assert parse_event_readings("03/11/2024 2:10:00 AM", NY)[1] is None
    # 10 March 2024: 02:30 does not exist; it is read with the offset before the change (EST),
    # i.e. 03:30 EDT = 07:30 UTC.
    assert parse_event_time("10/03/2024 2:30:00 AM", NY) == 1710055800.0
    assert parse_event_readings("10/03/2024 2:30:00 AM", NY)[1] is None


async def test_completion_in_the_repeated_hour_closes_the_run(start_exporter: Start) -> None:
    exp = await start_exporter("--timezone", "America/New_York")
    assert (await exp.post(event(1, "Initiated", "03/11/2024 1:50:00 AM")))[0] == 200
    # 20 minutes later by the clock on the wall: 01:10 after the clocks went back.
    assert (await exp.post(event(1, "Completed", "03/11/2024 1:10:00 AM")))[0] == 200
    m = await exp.metrics()
    assert m["clevertap_export_in_flight"][series()] == 0
    assert m["clevertap_export_last_duration_seconds"][series()] == 20 * 60
    assert m["clevertap_export_last_completed_timestamp_seconds"][series()] == 1730614200.0
