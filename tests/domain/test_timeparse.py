"""Every accepted 'Date and Time' form, time zones, and refusals."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from exporter.domain.timeparse import TimeParseError, parse_event_time

UTC_ZONE = ZoneInfo("UTC")


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("raw", "want"), [
    ("25/07/2023 4:50:52 PM", ts(2023, 7, 25, 16, 50, 52)),
    ("25/07/2023 4:50:52 pm", ts(2023, 7, 25, 16, 50, 52)),
    ("01/12/2023 12:05:00 AM", ts(2023, 12, 1, 0, 5, 0)),
    ("01/12/2023 12:05:00 PM", ts(2023, 12, 1, 12, 5, 0)),
    ("01/12/2023 8:41:17AM", ts(2023, 12, 1, 8, 41, 17)),
    ("25/07/2023 16:50:52", ts(2023, 7, 25, 16, 50, 52)),
    ("25/07/2023 16:50", ts(2023, 7, 25, 16, 50, 0)),
    ("5/7/2023 09:05:02", ts(2023, 7, 5, 9, 5, 2)),
    ("25/07/\u0662\u0660\u0662\u0663 16:50:52", ts(2023, 7, 25, 16, 50, 52)),  # Arabic-Indic
    ("2023-07-25T16:50:52Z", ts(2023, 7, 25, 16, 50, 52)),
    ("2023-07-25T18:50:52+02:00", ts(2023, 7, 25, 16, 50, 52)),
    ("2023-07-25 16:50:52", ts(2023, 7, 25, 16, 50, 52)),
    (1690303852, 1690303852.0),
    (1690303852.5, 1690303852.5),
    ("1690303852", 1690303852.0),
    (1690303852123, 1690303852.123),
    ("1690303852123", 1690303852.123),
])
def test_formats_in_utc(raw: str | int | float, want: float) -> None:
    assert parse_event_time(raw, UTC_ZONE) == pytest.approx(want)


def test_naive_times_read_in_the_configured_zone() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")  # UTC+05:30, CleverTap's home zone
    assert parse_event_time("25/07/2023 4:50:52 PM", kolkata) == ts(2023, 7, 25, 11, 20, 52)
    assert parse_event_time("2023-07-25T16:50:52", kolkata) == ts(2023, 7, 25, 11, 20, 52)
    # An explicit offset wins over the configured zone.
    assert parse_event_time("2023-07-25T16:50:52Z", kolkata) == ts(2023, 7, 25, 16, 50, 52)
    # Epoch seconds have no zone.
    assert parse_event_time(1690303852, kolkata) == 1690303852.0


def test_daylight_saving_zone() -> None:
    ny = ZoneInfo("America/New_York")
    assert parse_event_time("15/01/2024 9:00:00 AM", ny) == ts(2024, 1, 15, 14, 0, 0)
    assert parse_event_time("15/07/2024 9:00:00 AM", ny) == ts(2024, 7, 15, 13, 0, 0)


@pytest.mark.parametrize("raw", [
    "", "yesterday", "31/02/2023 1:00:00 PM", "25/13/2023 4:50:52 PM", "25/07/2023 13:00:00 PM",
    "25/07/2023 0:10:00 AM", -5, float("nan"), float("inf"), 10**30, "1e999", True,
])
def test_refused(raw: object) -> None:
    with pytest.raises(TimeParseError):
        parse_event_time(raw, UTC_ZONE)  # type: ignore[arg-type]
