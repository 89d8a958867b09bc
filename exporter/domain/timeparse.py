"""Parsing of CleverTap's "Date and Time" field into Unix seconds.

CleverTap documents ``DD/MM/YYYY h:mm:ss AM/PM`` in the account's time zone, with no offset. We
also accept ``DD/MM/YYYY HH:MM:SS``, ISO 8601 and epoch seconds or milliseconds. The common
forms are matched with one regular expression instead of ``strptime``, which is several times
slower and sits on the hot path of every webhook.

Daylight-saving time: a local time without an offset can be ambiguous (the repeated hour when
clocks fall back: 01:30 in ``America/New_York`` on the first Sunday of November is 05:30 or 06:30
UTC) or nonexistent (the skipped hour when they spring forward: 02:30 on the second Sunday of
March). An ambiguous time is read as its first occurrence (daylight time), and
``parse_event_readings`` also returns the second one, so the caller can pick it when only that
reading keeps a run's completion after its start. A nonexistent time is read with the offset in
force before the change, as ``zoneinfo`` does: 02:30 is taken as 02:30 EST, which is 03:30 EDT
(07:30 UTC), the moment a clock that was not moved forward would show 02:30.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, tzinfo
from typing import Final

_DMY = re.compile(
    r"(\d{1,2})/(\d{1,2})/(\d{4})[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?\s*([AaPp][Mm])?"
)
# Epoch values above this are milliseconds: 1e11 s is the year 5138, 1e11 ms is 1973.
_MS_THRESHOLD: Final = 1e11
# Refuse times outside years 1970..9999 rather than feed absurd values to Prometheus.
_MAX_EPOCH: Final = 253402300799.0


class TimeParseError(ValueError):
    """The value is present but is not a date and time we understand."""


Readings = tuple[float, float | None]  # the time, and its later reading when ambiguous


def parse_event_time(value: str | int | float, zone: tzinfo) -> float:
    """Return Unix seconds for ``value``; naive date-times are read in ``zone``.

    Raises ``TimeParseError`` for anything unparseable or out of range.
    """
    return parse_event_readings(value, zone)[0]


def parse_event_readings(value: str | int | float, zone: tzinfo) -> Readings:
    """Unix seconds for ``value``, and the later reading of an ambiguous local time (None when
    the time is not ambiguous). Raises ``TimeParseError`` like ``parse_event_time``."""
    if isinstance(value, bool):
        raise TimeParseError("a boolean is not a time")
    if isinstance(value, int | float):
        return _from_epoch(float(value)), None
    text = value.strip()
    if not text:
        raise TimeParseError("empty")
    m = _DMY.fullmatch(text)
    if m:
        return _from_dmy(m, zone)
    if _looks_numeric(text):
        try:
            return _from_epoch(float(text)), None
        except ValueError as exc:
            raise TimeParseError(str(exc)) from exc
    return _from_iso(text, zone)


def _looks_numeric(text: str) -> bool:
    return text.replace(".", "", 1).isdigit()


def _from_epoch(seconds: float) -> float:
    if not math.isfinite(seconds) or seconds < 0:
        raise TimeParseError("epoch value out of range")
    if seconds > _MS_THRESHOLD:
        seconds /= 1000.0
    if seconds > _MAX_EPOCH:
        raise TimeParseError("epoch value out of range")
    return seconds


def _from_dmy(m: re.Match[str], zone: tzinfo) -> Readings:
    day, month, year, hour, minute = map(int, m.group(1, 2, 3, 4, 5))
    second = int(m.group(6) or 0)
    meridiem = m.group(7)
    if meridiem:
        if not 1 <= hour <= 12:
            raise TimeParseError("hour out of range for AM/PM")
        hour = hour % 12 + (12 if meridiem.lower() == "pm" else 0)
    try:
        dt = datetime(year, month, day, hour, minute, second, tzinfo=zone)
    except ValueError as exc:
        raise TimeParseError(str(exc)) from exc
    return _readings(dt)


def _readings(dt: datetime) -> Readings:
    """Both readings of a local time: ``fold=1`` is later only in a repeated hour (in a
    skipped one it is earlier, and not a reading anyone means)."""
    first = dt.timestamp()
    second = dt.replace(fold=1).timestamp()
    return first, (second if second > first else None)


def _from_iso(text: str, zone: tzinfo) -> Readings:
    try:
        dt = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError as exc:
        raise TimeParseError("not a recognized date format") from exc
    try:
        if dt.tzinfo is None:
            return _readings(dt.replace(tzinfo=zone))
        return dt.timestamp(), None
    except (OverflowError, ValueError) as exc:
        raise TimeParseError(str(exc)) from exc
