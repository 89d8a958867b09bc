"""The webhook payload: validation of CleverTap's JSON and its normalization into an event.

``parse_body`` is the single entry point: raw bytes in, a ``StatusEvent``, a ``TestPing`` or a
``PayloadError`` out. It never raises for anything a client can send.

Export Request Ids are kept as the exact text of the JSON number: orjson reads integers beyond
64 bits as floats, so such a body is read again with the standard library, whose integers are
exact. Event times outside ``TimeWindow`` are refused (422): one Completed dated 9999 would
otherwise be the export's last completion for ever, and no overdue alert could fire again.

The fields are checked by hand (``_TEXT_FIELDS``), not by a pydantic model: this runs for every
webhook, and a model would cost every server pydantic's import and the model's schema (about
8 MB of RSS) and every request the building of a model, and of error objects for a refused one.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Any, Final, NamedTuple, cast

import orjson

from exporter.domain import normalize
from exporter.domain.timeparse import TimeParseError, parse_event_readings

#: Why an event's time fell back to its receipt time.
TIME_MISSING: Final = "missing"
TIME_UNPARSEABLE: Final = "unparseable"
TIME_PROBLEMS: Final = (TIME_MISSING, TIME_UNPARSEABLE)
MAX_ID_LENGTH: Final = 128
MAX_TEXT_LENGTH: Final = 256
_UTF8_BOM: Final = b"\xef\xbb\xbf"
_ID_FIELD: Final = "Export Request Id"
_NUL: Final = "contains a NUL character (\\u0000), which PostgreSQL cannot store in text"
_TIME_FIELD: Final = "Date and Time"
#: Why an event time was refused, as counted by ``clevertap_export_event_time_refused_total``.
TOO_FAR_AHEAD: Final = "too_far_ahead"
TOO_EARLY: Final = "too_early"
TIME_REFUSALS: Final = (TOO_FAR_AHEAD, TOO_EARLY)


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Event times accepted around the receipt time (``--event-time-max-ahead``,
    ``--event-time-min``): a day ahead allows for a wrong ``--timezone`` (at most 14 h)."""

    max_ahead: float = 86400.0
    earliest: float = 1420070400.0  # 2015-01-01T00:00:00Z, before CleverTap's exports


DEFAULT_WINDOW: Final = TimeWindow()


def _number_to_text(value: object) -> object:
    """Let a JSON number stand where text is expected; leave everything else to validation."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal) and value.is_finite():
        # Integral values as integers ("12.0" is id 12), as a float id always was; the
        # exponent bound keeps int() of "1e999999" from building a huge number.
        if value == value.to_integral_value() and value.adjusted() < MAX_ID_LENGTH:
            return str(int(value))
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else str(value)
    return value


_MISSING: Final = object()
_NOT_TEXT: Final = "must be a string or a number"
_EMPTY: Final = "must not be empty"
#: The text fields of a body, in the order their problems are reported: (key, required,
#: longest accepted text, the problem of a longer one). Extra keys are ignored; "Date and
#: Time" takes any value, as an unreadable time falls back to the receipt time.
_TEXT_FIELDS: Final = tuple(
    (name, required, limit, f"must be at most {limit} characters")
    for name, required, limit in (
        (_ID_FIELD, True, MAX_ID_LENGTH),
        ("Partner", True, MAX_TEXT_LENGTH),
        ("Status", True, MAX_TEXT_LENGTH),
        ("Type", False, MAX_TEXT_LENGTH),
        ("Frequency", False, MAX_TEXT_LENGTH),
    )
)
#: export id, partner, status, type and frequency, as the body gives them.
_Texts = tuple[str, str, str, str | None, str | None]


class StatusEvent(NamedTuple):
    """A validated, normalized export status event.

    ``event_time`` is Unix seconds; when CleverTap's time was missing or unparseable it is the
    receipt time and ``time_problem`` says why (``missing`` or ``unparseable``).

    A named tuple rather than a frozen dataclass: as immutable, and built three times faster
    (a frozen dataclass sets each field through ``object.__setattr__``), once per webhook.
    """

    account: str
    export_id: str
    partner: str
    export_type: str
    frequency: str
    status: str
    event_time: float
    received: float
    time_problem: str | None = None
    #: The later reading of an ambiguous local time (the repeated hour of a fall-back day).
    other_time: float | None = None

    def time_after(self, start: float | None) -> float:
        """The event time of a run's end started at ``start``: the later reading of an
        ambiguous time when only that one does not precede the start."""
        if (self.other_time is not None and start is not None
                and self.event_time < start <= self.other_time):
            return self.other_time
        return self.event_time

    @property
    def unknown_labels(self) -> tuple[str, ...]:
        """Which of partner, export_type and frequency are not values CleverTap is known to
        send (accepted all the same, but counted and marked)."""
        return normalize.unknown_labels(self.partner, self.export_type, self.frequency)


@dataclass(frozen=True, slots=True)
class TestPing:
    """CleverTap's sample body, sent when a webhook is saved; it must be acknowledged."""

    __test__ = False  # not a pytest class, whatever its name says


@dataclass(frozen=True, slots=True)
class PayloadError:
    """Why a body was refused: ``http_status`` 400 (not a JSON object) or 422 (bad fields);
    ``time_refused`` is ``too_far_ahead`` or ``too_early`` for an event time outside the window."""

    http_status: int
    message: str
    fields: dict[str, str]
    time_refused: str | None = None


def parse_body(body: bytes, account: str, received: float, zone: tzinfo,
               window: TimeWindow = DEFAULT_WINDOW) -> StatusEvent | TestPing | PayloadError:
    """Decode, validate and normalize one webhook body received at ``received`` (Unix s)."""
    if body.startswith(_UTF8_BOM):
        body = body[len(_UTF8_BOM) :]
    if not body.strip():
        return PayloadError(400, "request body is empty; expected a JSON object", {})
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return PayloadError(400, f"request body is not valid JSON: {exc}", {})
    if not isinstance(doc, dict):
        return PayloadError(
            400, f"request body must be a JSON object, got {_json_kind(doc)}", {}
        )
    if doc.get("is_test") is True:
        return TestPing()
    if isinstance(doc.get(_ID_FIELD), float):
        # orjson made a float of it: an integer beyond 64 bits, or a fraction. Read the body
        # again with exact integers and decimals (it is valid JSON: orjson just read it).
        try:
            doc = json.loads(body, parse_float=Decimal)
        except (ValueError, RecursionError) as exc:
            return PayloadError(400, f"request body is not valid JSON: {exc}", {})
    texts = _text_fields(doc)
    if isinstance(texts, dict):
        detail = "; ".join(f"{k}: {v}" for k, v in texts.items())
        return PayloadError(422, f"invalid export status event: {detail}", texts)
    return _to_event(texts, doc.get(_TIME_FIELD), account, received, zone, window)


def _text_fields(doc: dict[str, Any]) -> _Texts | dict[str, str]:
    """The values of ``_TEXT_FIELDS``, or the problem of each field that has one."""
    values: list[str | None] = []
    problems: dict[str, str] = {}
    for name, required, limit, too_long in _TEXT_FIELDS:
        value = doc.get(name, _MISSING)
        if value is _MISSING or (value is None and not required):
            if required:
                problems[name] = "required field is missing" + _near_match(name, doc)
            else:
                values.append(None)
            continue
        if type(value) is not str:
            value = _number_to_text(value)
            if not isinstance(value, str):
                problems[name] = _NOT_TEXT
                continue
        if not value:
            problems[name] = _EMPTY
        elif len(value) > limit:
            problems[name] = too_long
        elif "\x00" in value:  # PostgreSQL's text cannot hold it: refused before any batch
            problems[name] = _NUL
        else:
            values.append(value)
    if problems:
        return problems
    # Without problems, each required field holds text.
    return cast(_Texts, tuple(values))


def _to_event(texts: _Texts, raw_time: object, account: str, received: float, zone: tzinfo,
              window: TimeWindow) -> StatusEvent | PayloadError:
    export_id, partner, status, export_type, frequency = texts
    if isinstance(raw_time, Decimal):  # a fraction in a body read again for its exact id
        raw_time = float(raw_time)
    problem: str | None = None
    other: float | None = None
    if raw_time is None or raw_time == "":
        event_time, problem = received, TIME_MISSING
    elif not isinstance(raw_time, str | int | float):
        event_time, problem = received, TIME_UNPARSEABLE
    else:
        try:
            event_time, other = parse_event_readings(raw_time, zone)
        except TimeParseError:
            event_time, problem = received, TIME_UNPARSEABLE
        else:
            refusal = _outside(event_time, raw_time, received, window)
            if refusal is not None:
                return refusal
    return StatusEvent(
        account=account,
        export_id=export_id,
        partner=normalize.partner(partner),
        export_type=normalize.export_type(export_type),
        frequency=normalize.frequency(frequency),
        status=normalize.status(status),
        event_time=event_time,
        received=received,
        time_problem=problem,
        other_time=other,
    )


def _outside(event_time: float, raw: object, received: float,
             window: TimeWindow) -> PayloadError | None:
    """The refusal of an event time outside ``window``, or None when it is inside."""
    if event_time > received + window.max_ahead:
        why = (f"is {_span(event_time - received)} after its receipt; at most "
               f"{_span(window.max_ahead)} ahead is accepted (--event-time-max-ahead)")
        reason = TOO_FAR_AHEAD
    elif event_time < window.earliest:
        earliest = datetime.fromtimestamp(window.earliest, UTC).strftime("%Y-%m-%d")
        why = f"is before {earliest}, the earliest accepted (--event-time-min)"
        reason = TOO_EARLY
    else:
        return None
    message = f"'{_TIME_FIELD}' {str(raw)[:64]!r} {why}"
    return PayloadError(422, f"invalid export status event: {message}",
                        {_TIME_FIELD: message}, time_refused=reason)


def _span(seconds: float) -> str:
    for unit, size in (("years", 365.25 * 86400), ("days", 86400.0), ("hours", 3600.0)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s" if seconds < 7200 else f"{seconds / 3600:.1f} hours"


def _near_match(name: str, doc: dict[str, Any]) -> str:
    """``(found 'status', did you mean 'Status'?)`` when the body has a key like ``name``."""
    keys = [k for k in doc if isinstance(k, str)]
    same = [k for k in keys if k.strip().lower() == name.lower()]
    found = same or difflib.get_close_matches(name, keys, n=1, cutoff=0.75)
    return f" (found {found[0]!r}, did you mean {name!r}?)" if found else ""


def _json_kind(doc: object) -> str:
    if isinstance(doc, list):
        return "an array"
    if isinstance(doc, str):
        return "a string"
    if doc is None:
        return "null"
    return "a number" if not isinstance(doc, bool) else "a boolean"
