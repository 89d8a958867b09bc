"""The webhook payload: validation of CleverTap's JSON and its normalization into an event.

``parse_body`` is the single entry point: raw bytes in, a ``StatusEvent``, a ``TestPing`` or a
``PayloadError`` out. It never raises for anything a client can send.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import tzinfo
from typing import Annotated, Any, Final

import orjson
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from exporter.domain import normalize
from exporter.domain.timeparse import TimeParseError, parse_event_time

#: Why an event's time fell back to its receipt time.
TIME_MISSING: Final = "missing"
TIME_UNPARSEABLE: Final = "unparseable"
TIME_PROBLEMS: Final = (TIME_MISSING, TIME_UNPARSEABLE)
MAX_ID_LENGTH: Final = 128
MAX_TEXT_LENGTH: Final = 256
_UTF8_BOM: Final = b"\xef\xbb\xbf"


def _number_to_text(value: Any) -> Any:
    """Let a JSON number stand where text is expected; leave everything else to validation."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else str(value)
    return value


Text = Annotated[
    str,
    BeforeValidator(_number_to_text),
    Field(min_length=1, max_length=MAX_TEXT_LENGTH, strict=True),
]
ExportId = Annotated[
    str,
    BeforeValidator(_number_to_text),
    Field(min_length=1, max_length=MAX_ID_LENGTH, strict=True),
]


class ExportStatusPayload(BaseModel):
    """One "Export Status Alerts" body as CleverTap sends it; extra fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    export_request_id: ExportId = Field(alias="Export Request Id")
    partner: Text = Field(alias="Partner")
    status: Text = Field(alias="Status")
    type: Text | None = Field(default=None, alias="Type")
    frequency: Text | None = Field(default=None, alias="Frequency")
    # Any type: an unreadable time must not cost the event, it falls back to the receipt time.
    date_and_time: Any = Field(default=None, alias="Date and Time")


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """A validated, normalized export status event.

    ``event_time`` is Unix seconds; when CleverTap's time was missing or unparseable it is the
    receipt time and ``time_problem`` says why (``missing`` or ``unparseable``).
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


@dataclass(frozen=True, slots=True)
class TestPing:
    """CleverTap's sample body, sent when a webhook is saved; it must be acknowledged."""

    __test__ = False  # not a pytest class, whatever its name says


@dataclass(frozen=True, slots=True)
class PayloadError:
    """Why a body was refused: ``http_status`` 400 (not a JSON object) or 422 (bad fields)."""

    http_status: int
    message: str
    fields: dict[str, str]


def parse_body(body: bytes, account: str, received: float, zone: tzinfo) -> (
    StatusEvent | TestPing | PayloadError
):
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
    try:
        payload = ExportStatusPayload.model_validate(doc)
    except ValidationError as exc:
        fields = _field_errors(exc)
        detail = "; ".join(f"{k}: {v}" for k, v in fields.items())
        return PayloadError(422, f"invalid export status event: {detail}", fields)
    return _to_event(payload, account, received, zone)


def _to_event(
    payload: ExportStatusPayload, account: str, received: float, zone: tzinfo
) -> StatusEvent:
    raw_time = payload.date_and_time
    problem: str | None = None
    if raw_time is None or raw_time == "":
        event_time, problem = received, TIME_MISSING
    elif not isinstance(raw_time, str | int | float):
        event_time, problem = received, TIME_UNPARSEABLE
    else:
        try:
            event_time = parse_event_time(raw_time, zone)
        except TimeParseError:
            event_time, problem = received, TIME_UNPARSEABLE
    return StatusEvent(
        account=account,
        export_id=payload.export_request_id,
        partner=normalize.partner(payload.partner),
        export_type=normalize.export_type(payload.type),
        frequency=normalize.frequency(payload.frequency),
        status=normalize.status(payload.status),
        event_time=event_time,
        received=received,
        time_problem=problem,
    )


def _field_errors(exc: ValidationError) -> dict[str, str]:
    out: dict[str, str] = {}
    for err in exc.errors(include_url=False, include_input=False):
        loc = err["loc"]
        name = str(loc[0]) if loc else "body"
        if name in out:
            continue
        if err["type"] == "missing":
            out[name] = "required field is missing"
        elif err["type"] in ("string_too_short", "too_short"):
            out[name] = "must not be empty"
        elif err["type"] in ("string_too_long", "too_long"):
            limit = MAX_ID_LENGTH if name == "Export Request Id" else MAX_TEXT_LENGTH
            out[name] = f"must be at most {limit} characters"
        else:
            out[name] = "must be a string or a number"
    return out


def _json_kind(doc: object) -> str:
    if isinstance(doc, list):
        return "an array"
    if isinstance(doc, str):
        return "a string"
    if doc is None:
        return "null"
    return "a number" if not isinstance(doc, bool) else "a boolean"
