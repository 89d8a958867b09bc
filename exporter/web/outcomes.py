"""What became of a webhook request: the one list of outcomes.

An outcome is the ``status`` of the webhook's JSON answer, the ``outcome`` label of
``clevertap_export_webhook_requests_total`` (every one counted from zero, and described in its
help from ``NOTES``), the outcome of its record in the event log, a value the OpenAPI document
states and the tools read. Standard library only: the tools import it without aiohttp.
"""

from __future__ import annotations

from enum import StrEnum, auto
from typing import Final


class Outcome(StrEnum):
    """A webhook outcome; its value is its lower-case name."""

    ACCEPTED = auto()
    DUPLICATE = auto()
    TEST = auto()
    INVALID = auto()
    UNAUTHORIZED = auto()
    FORBIDDEN = auto()
    TOO_LARGE = auto()
    UNAVAILABLE = auto()
    TIMEOUT = auto()
    OVERLOADED = auto()
    ABORTED = auto()
    RATE_LIMITED = auto()


#: What an outcome means where its name does not say it, for the metric's help.
NOTES: Final[dict[Outcome, str]] = {
    Outcome.DUPLICATE: "redelivery",
    Outcome.TEST: "CleverTap's ping",
    Outcome.FORBIDDEN: "source outside --allow-cidr",
    Outcome.UNAVAILABLE: "state store failed",
    Outcome.TIMEOUT: "body not received in time",
    Outcome.OVERLOADED: "too many in progress",
    Outcome.ABORTED: "client disconnected mid-body",
    Outcome.RATE_LIMITED: "over rate_limit of --web.config.file",
}

#: The outcomes answered 200: the webhook is stored, already was, or was CleverTap's ping.
STORED: Final = (Outcome.ACCEPTED, Outcome.DUPLICATE, Outcome.TEST)

#: The event log's outcome of a webhook answered with none of the above (a 404, 405 or 500).
UNCOUNTED: Final = "error"


def described() -> dict[str, str]:
    """Every outcome as plain text, with its note (empty when the name says it all)."""
    return {o.value: NOTES.get(o, "") for o in Outcome}
