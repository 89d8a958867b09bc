"""The result of checking that a run's export landed: what the listing found, and how it ended.

Held by the model; produced by ``exporter.landing.check``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from exporter.domain.destination import Destination, LandingRun


class Outcome(StrEnum):
    """How a check ended: one label value each, a bounded set."""

    #: Objects of the run were found.
    LANDED = "landed"
    #: The listing worked and found none of the run's objects.
    EMPTY = "empty"
    #: Objects were found, far fewer bytes than the export's usual (``landing_small_fraction``).
    SMALLER_THAN_USUAL = "smaller_than_usual"
    #: The store refused the listing: the credential lacks the list permission, or is wrong.
    CANNOT_LIST_PERMISSION = "cannot_list_permission"
    #: The bucket (or container, or storage account) does not exist.
    NOT_FOUND = "not_found"
    #: Anything else: no answer in time, a connection refused, an unexpected answer.
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class LandingResult:
    """One check of one run's destination, after its retries."""

    destination: Destination
    run: LandingRun
    outcome: Outcome
    #: The run's objects and their bytes, counted as listed (never kept).
    objects: int
    bytes: int
    #: The listing stopped at its bound (pages or time): the counts are a lower bound.
    truncated: bool
    #: The prefix listed.
    prefix: str
    #: When the check's first listing started and its last one ended (epoch seconds).
    started: float
    finished: float
    attempts: int
    #: The newest modification time among the run's objects, None when there are none.
    newest: float | None = None
    #: Why, for cannot_list_permission, not_found and error: the store's words, no secrets.
    detail: str = ""


#: Outcomes of a listing that worked: a check that ends otherwise could not tell.
LISTED: Final = frozenset({Outcome.LANDED, Outcome.EMPTY, Outcome.SMALLER_THAN_USUAL})
