"""Parsing of CleverTap's "Date and Time" field into Unix seconds.

CleverTap documents ``DD/MM/YYYY h:mm:ss AM/PM`` in the account's time zone, with no offset. We
also accept ``DD/MM/YYYY HH:MM:SS``, ISO 8601 and epoch seconds or milliseconds. The common
forms are matched with one regular expression instead of ``strptime``, which is several times
slower and sits on the hot path of every webhook.
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


def parse_event_time(value: str | int | float, zone: tzinfo) -> float:
    """Return Unix seconds for ``value``; naive date-times are read in ``zone``.

    Raises ``TimeParseError`` for anything unparseable or out of range.
    """
    if isinstance(value, bool):
        raise TimeParseError("a boolean is not a time")
    if isinstance(value, int | float):
        return _from_epoch(float(value))
    text = value.strip()
    if not text:
        raise TimeParseError("empty")
    m = _DMY.fullmatch(text)
    if m:
        return _from_dmy(m, zone)
    if _looks_numeric(text):
        try:
            return _from_epoch(float(text))
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


def _from_dmy(m: re.Match[str], zone: tzinfo) -> float:
    day, month, year, hour, minute = (int(g) for g in m.group(1, 2, 3, 4, 5))
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
    return dt.timestamp()


def _from_iso(text: str, zone: tzinfo) -> float:
    try:
        dt = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError as exc:
        raise TimeParseError("not a recognized date format") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=zone)
    try:
        return dt.timestamp()
    except (OverflowError, ValueError) as exc:
        raise TimeParseError(str(exc)) from exc
