"""Property tests of the pure parts: normalization, time parsing and ``parse_body``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.domain import normalize
from exporter.domain.payload import PayloadError, StatusEvent, TestPing, TimeWindow, parse_body
from exporter.domain.timeparse import TimeParseError, parse_event_time
from tests.strategies import hostile_bodies, nasty_text, valid_payloads

pytestmark = pytest.mark.slow

ZONES = [ZoneInfo(z) for z in ("UTC", "Asia/Kolkata", "America/New_York", "Pacific/Chatham")]
MAX_EPOCH = 253402300799.0
NORMALIZERS = [normalize.slug, normalize.partner, normalize.export_type, normalize.status,
               normalize.frequency]

ANY_TIME = TimeWindow(max_ahead=float("inf"), earliest=float("-inf"))


@pytest.mark.parametrize("fn", NORMALIZERS, ids=lambda f: f.__name__)
@given(value=nasty_text)
@settings(max_examples=300)
def test_normalization_is_valid_and_idempotent(fn: object, value: str) -> None:
    assert callable(fn)
    once = fn(value)
    assert normalize.LABEL_VALUE_RE.fullmatch(once), (value, once)
    assert fn(once) == once


@given(value=nasty_text)
def test_interval_only_for_recurring_frequencies(value: str) -> None:
    freq = normalize.frequency(value)
    seconds = normalize.interval_seconds(freq)
    assert seconds is None or (seconds > 0 and freq == f"{int(seconds // 3600)}h")


@given(value=st.one_of(nasty_text, st.integers(), st.floats(), st.booleans()),
       zone=st.sampled_from(ZONES))
@settings(max_examples=300)
def test_time_parsing_returns_a_sane_time_or_says_why(value: object, zone: ZoneInfo) -> None:
    try:
        seconds = parse_event_time(value, zone)  # type: ignore[arg-type]
    except TimeParseError as exc:
        assert str(exc)
    else:
        assert 0 <= seconds <= MAX_EPOCH


@given(moment=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9998, 1, 1)),
       zone=st.sampled_from(ZONES))
def test_documented_format_round_trips(moment: datetime, zone: ZoneInfo) -> None:
    moment = moment.replace(microsecond=0, tzinfo=zone)
    hour12 = moment.hour % 12 or 12
    text = (f"{moment.day:02d}/{moment.month:02d}/{moment.year} {hour12}:"
            f"{moment.minute:02d}:{moment.second:02d} {'PM' if moment.hour >= 12 else 'AM'}")
    assert parse_event_time(text, zone) == moment.timestamp()
    assert parse_event_time(moment.isoformat(), UTC) == moment.timestamp()


@given(seconds=st.integers(0, 10**11 - 1))
def test_epoch_seconds_and_milliseconds(seconds: int) -> None:
    assert parse_event_time(seconds, UTC) == seconds
    if seconds > 10**8:
        assert parse_event_time(seconds * 1000, UTC) == seconds


@given(case=hostile_bodies)
@settings(max_examples=300)
def test_parse_body_never_raises_and_names_its_reason(case: tuple[str, bytes]) -> None:
    _, raw = case
    result = parse_body(raw, "acct", 1_700_000_000.0, UTC)
    if isinstance(result, PayloadError):
        assert result.http_status in (400, 422)
        assert result.message
        if result.http_status == 422:
            assert result.fields and all(result.fields.values())
    elif isinstance(result, StatusEvent):
        for value in (result.partner, result.export_type, result.frequency, result.status):
            assert normalize.LABEL_VALUE_RE.fullmatch(value)
        assert result.export_id and 0 <= result.event_time <= MAX_EPOCH
        # Inside the default window of event times.
        assert 1420070400.0 <= result.event_time <= 1_700_000_000.0 + 86400
    else:
        assert isinstance(result, TestPing)


@given(doc=valid_payloads())
def test_valid_payloads_are_events(doc: dict[str, object]) -> None:
    # Any event time: the window is tested on its own (tests/domain/test_webhook_body.py).
    result = parse_body(json.dumps(doc).encode(), "acct", 1_700_000_000.0, UTC, ANY_TIME)
    assert isinstance(result, StatusEvent), result
    assert result.export_id == str(doc["Export Request Id"])
    assert result.partner == normalize.partner(str(doc["Partner"]))


@pytest.mark.parametrize(("partner", "reason"), [
    ("", "must not be empty"),
    ("x" * 300, "must be at most 256 characters"),
    ([1], "must be a string or a number"),
])
def test_field_errors_say_what_is_wrong(partner: object, reason: str) -> None:
    # Found by the fuzzer: length errors used to read "must be a string or a number".
    raw = json.dumps({"Export Request Id": 1, "Partner": partner, "Status": "Initiated"})
    result = parse_body(raw.encode(), "acct", 1_700_000_000.0, UTC)
    assert isinstance(result, PayloadError)
    assert result.fields == {"Partner": reason}
