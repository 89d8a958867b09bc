"""The last webhooks and what became of them, for the status page and ``/api/v1/events``.

A bounded, in-memory log filled by the HTTP layer: it starts empty with the process (the
durable record of an export is the model in the state store, not this log).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from datetime import tzinfo
from typing import Any, Final, NamedTuple

from exporter.domain.timefmt import iso_time

MAX_EVENTS: Final = 100


class WebhookRecord(NamedTuple):
    """One webhook as the status page shows it; a named tuple, as ``StatusEvent`` is."""

    received: float
    account: str
    outcome: str  # an ``outcomes.Outcome``, or ``outcomes.UNCOUNTED`` (a 404, 405, 500)
    http_status: int
    export_id: str | None = None
    partner: str | None = None
    export_type: str | None = None
    frequency: str | None = None
    status: str | None = None
    event_time: float | None = None
    message: str | None = None

    def to_json(self, zone: tzinfo) -> dict[str, Any]:
        out = self._asdict()
        out["received_time"] = iso_time(self.received, zone)
        out["event_time_iso"] = iso_time(self.event_time, zone)
        return out


class EventLog:
    """The newest ``size`` webhook records."""

    def __init__(self, size: int = MAX_EVENTS) -> None:
        self._records: deque[WebhookRecord] = deque(maxlen=size)

    def add(self, record: WebhookRecord) -> None:
        self._records.append(record)

    def newest_first(self) -> Iterator[WebhookRecord]:
        return reversed(self._records)

    def __len__(self) -> int:
        return len(self._records)
