"""parse_body: from raw bytes to an event, a test ping, or a precise refusal."""

import json
from zoneinfo import ZoneInfo

import pytest

from exporter.domain.payload import PayloadError, StatusEvent, TestPing, parse_body
from tests.helpers import SAMPLES

UTC = ZoneInfo("UTC")
NOW = 1_800_000_000.0


def parse(body: bytes | dict[str, object]) -> StatusEvent | TestPing | PayloadError:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_body(raw, "acme", NOW, UTC)


def test_documented_sample() -> None:
    ev = parse((SAMPLES / "completed-one-time-gcs.json").read_bytes())
    assert ev == StatusEvent(
        account="acme", export_id="1690283492", partner="google_cloud_storage",
        export_type="events", frequency="one_time", status="completed",
        event_time=1690303852.0, received=NOW, time_problem=None,
    )


def test_test_ping_sample() -> None:
    assert isinstance(parse((SAMPLES / "clevertap-test-ping.json").read_bytes()), TestPing)


def test_id_as_string_and_extra_fields_ignored() -> None:
    ev = parse({"Export Request Id": "abc-1", "Partner": "S3", "Status": "Initiated",
                "Extra": {"nested": [1, 2]}})
    assert isinstance(ev, StatusEvent)
    assert (ev.export_id, ev.export_type, ev.frequency) == ("abc-1", "unknown", "unknown")
    assert ev.time_problem == "missing" and ev.event_time == NOW


def test_unparseable_time_falls_back_to_receipt() -> None:
    for value in ("soon", {"a": 1}, [1], True):
        ev = parse({"Export Request Id": 1, "Partner": "S3", "Status": "Completed",
                    "Date and Time": value})
        assert isinstance(ev, StatusEvent)
        assert (ev.event_time, ev.time_problem) == (NOW, "unparseable")


@pytest.mark.parametrize(("body", "message"), [
    (b"", "empty"),
    (b"   ", "empty"),
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object, got an array"),
    (b'"text"', "got a string"),
    (b"null", "got null"),
    (b"42", "got a number"),
    (b"NaN", "not valid JSON"),
])
def test_not_a_json_object_is_400(body: bytes, message: str) -> None:
    err = parse(body)
    assert isinstance(err, PayloadError)
    assert err.http_status == 400
    assert message in err.message


@pytest.mark.parametrize(("body", "fields"), [
    ({}, {"Export Request Id", "Partner", "Status"}),
    ({"Export Request Id": 1, "Partner": "S3"}, {"Status"}),
    ({"Export Request Id": None, "Partner": "S3", "Status": "Completed"}, {"Export Request Id"}),
    ({"Export Request Id": True, "Partner": "S3", "Status": "Completed"}, {"Export Request Id"}),
    ({"Export Request Id": 1, "Partner": ["S3"], "Status": {"x": 1}}, {"Partner", "Status"}),
    ({"Export Request Id": "", "Partner": "S3", "Status": "Completed"}, {"Export Request Id"}),
    ({"Export Request Id": "x" * 500, "Partner": "S3", "Status": "Completed"},
     {"Export Request Id"}),
    ({"Export Request Id": 1, "Partner": "S3", "Status": "Completed", "Type": {"a": 1}},
     {"Type"}),
])
def test_invalid_fields_are_422_and_named(body: dict[str, object], fields: set[str]) -> None:
    err = parse(body)
    assert isinstance(err, PayloadError)
    assert err.http_status == 422
    assert set(err.fields) == fields
    for name in fields:
        assert name in err.message


def test_bom_and_numeric_partner_accepted() -> None:
    body = b"\xef\xbb\xbf" + json.dumps({"Export Request Id": 7, "Partner": 123,
                                         "Status": "Completed"}).encode()
    ev = parse(body)
    assert isinstance(ev, StatusEvent)
    assert ev.partner == "123"


def test_every_failing_field_is_reported_once_in_field_order() -> None:
    err = parse({"Frequency": "", "Type": True, "Status": None, "Partner": "x" * 257,
                 "export request id": 1})
    assert isinstance(err, PayloadError)
    assert err.fields == {
        "Export Request Id":
            "required field is missing (found 'export request id', did you mean "
            "'Export Request Id'?)",
        "Partner": "must be at most 256 characters",
        "Status": "must be a string or a number",
        "Type": "must be a string or a number",
        "Frequency": "must not be empty",
    }
    assert err.message == "invalid export status event: " + "; ".join(
        f"{k}: {v}" for k, v in err.fields.items())


@pytest.mark.parametrize(("literal", "problem"), [
    ("1" * 128, None),
    ("1" * 129, "must be at most 128 characters"),
    ('"' + "x" * 129 + '"', "must be at most 128 characters"),
    ("12.0", None),
    ("[1]", "must be a string or a number"),
    ("{}", "must be a string or a number"),
    ("false", "must be a string or a number"),
])
def test_export_id_limits_and_kinds(literal: str, problem: str | None) -> None:
    result = parse(('{"Export Request Id": ' + literal
                    + ', "Partner": "S3", "Status": "Initiated"}').encode())
    if problem is None:
        assert isinstance(result, StatusEvent)
        assert result.export_id == literal.removesuffix(".0")
    else:
        assert isinstance(result, PayloadError)
        assert result.fields == {"Export Request Id": problem}


def test_numbers_stand_for_text_and_optional_fields_may_be_null() -> None:
    ev = parse(b'{"Export Request Id": 1.5, "Partner": 2.0, "Status": "Initiated", '
               b'"Type": null, "Frequency": null}')
    assert isinstance(ev, StatusEvent)
    assert (ev.export_id, ev.partner, ev.export_type, ev.frequency) == \
        ("1.5", "2", "unknown", "unknown")
