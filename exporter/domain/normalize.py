"""Normalization of CleverTap's free-text fields into stable Prometheus label values.

Every function here is pure and idempotent: feeding a normalized value back in returns it
unchanged, and the result always matches ``LABEL_VALUE_RE`` (lower-case ``[a-z0-9_]``, at most
``MAX_LABEL_LENGTH`` characters, never empty). The field functions memoize, since CleverTap sends
the same few spellings over and over; the cache is bounded, so random spellings cannot grow it.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from typing import Final

MAX_LABEL_LENGTH: Final = 64
UNKNOWN: Final = "unknown"
OTHER: Final = "other"
LABEL_VALUE_RE: Final = re.compile(r"[a-z0-9_]{1,64}")

_NON_WORD = re.compile(r"[^a-z0-9]+")

# Keys are slugs, so "AWS S3", "aws-s3" and "  Aws  S3 " all meet the same entry.
_PARTNERS: Final[dict[str, str]] = {
    "amazon_s3": "amazon_s3",
    "aws_s3": "amazon_s3",
    "s3": "amazon_s3",
    "amazon_web_services_s3": "amazon_s3",
    "amazon_s3_bucket": "amazon_s3",
    "google_cloud_storage": "google_cloud_storage",
    "gcs": "google_cloud_storage",
    "google_cloud_platform_gcp": "google_cloud_storage",
    "google_cloud_platform": "google_cloud_storage",
    "gcp": "google_cloud_storage",
    "azure_blob_storage": "azure_blob_storage",
    "microsoft_azure": "azure_blob_storage",
    "azure": "azure_blob_storage",
    "microsoft_azure_blob_storage": "azure_blob_storage",
    "azure_blob": "azure_blob_storage",
}

_TYPES: Final[dict[str, str]] = {
    "events": "events",
    "event": "events",
    "profiles": "profiles",
    "profile": "profiles",
    "user_profiles": "profiles",
}

STATUS_INITIATED: Final = "initiated"
STATUS_COMPLETED: Final = "completed"
STATUS_FAILED: Final = "failed"

_STATUSES: Final[dict[str, str]] = {
    "initiated": STATUS_INITIATED,
    "initiate": STATUS_INITIATED,
    "started": STATUS_INITIATED,
    "in_progress": STATUS_INITIATED,
    "completed": STATUS_COMPLETED,
    "complete": STATUS_COMPLETED,
    "success": STATUS_COMPLETED,
    "succeeded": STATUS_COMPLETED,
    "failed": STATUS_FAILED,
    "failure": STATUS_FAILED,
    "error": STATUS_FAILED,
}

ONE_TIME: Final = "one_time"
_ONE_TIME_SLUGS: Final = frozenset({"one_time", "onetime", "once", "one_off", "adhoc", "ad_hoc"})
_DAILY_SLUGS: Final = frozenset({"daily", "every_day", "once_a_day", "recurring_daily"})
# "Every 4 hours", "4 Hours", "4 hrs", "Recurring - every 12 hours", "4h" after slugging.
_HOURS = re.compile(r"(?:^|_)(\d{1,3})_?(?:h|hr|hrs|hour|hours)(?:_|$)")
_INTERVAL = re.compile(r"(\d{1,3})h")


def slug(value: str) -> str:
    """Lower-case ``value`` and collapse every run of other characters into one ``_``.

    Returns ``unknown`` for text with no letters or digits, and truncates to the label length.
    """
    out = _NON_WORD.sub("_", value.strip().lower()).strip("_")
    return out[:MAX_LABEL_LENGTH].rstrip("_") or UNKNOWN


@lru_cache(maxsize=1024)
def partner(value: str) -> str:
    """Normalize the "Partner" field: ``amazon_s3``, ``google_cloud_storage``,
    ``azure_blob_storage``, or the slug of anything else."""
    s = slug(value)
    return _PARTNERS.get(s, s)


@lru_cache(maxsize=1024)
def export_type(value: str | None) -> str:
    """Normalize the "Type" field: ``events``, ``profiles``, ``unknown`` when absent, or a slug."""
    if value is None:
        return UNKNOWN
    s = slug(value)
    return _TYPES.get(s, s)


@lru_cache(maxsize=1024)
def status(value: str) -> str:
    """Normalize the "Status" field: ``initiated``, ``completed``, ``failed``, or a slug."""
    s = slug(value)
    return _STATUSES.get(s, s)


@lru_cache(maxsize=1024)
def frequency(value: str | None) -> str:
    """Normalize the "Frequency" field: ``one_time``, an interval such as ``4h`` or ``24h``,
    ``unknown`` when absent, or the slug of unrecognized text."""
    if value is None:
        return UNKNOWN
    s = slug(value)
    if s in _ONE_TIME_SLUGS:
        return ONE_TIME
    if s in _DAILY_SLUGS:
        return "24h"
    m = _HOURS.search(s)
    if m and int(m.group(1)) > 0:
        return f"{int(m.group(1))}h"
    return s


#: The values CleverTap is known to send, per label (``frequency``: ``one_time`` or ``<N>h``).
KNOWN: Final[dict[str, tuple[str, ...]]] = {
    "partner": tuple(dict.fromkeys(_PARTNERS.values())),
    "export_type": tuple(dict.fromkeys(_TYPES.values())),
    "frequency": (ONE_TIME, "4h", "24h"),
}
_SPELLINGS: Final[dict[str, dict[str, str]]] = {
    "partner": _PARTNERS,
    "export_type": _TYPES,
    "frequency": {**dict.fromkeys(_ONE_TIME_SLUGS, ONE_TIME), **dict.fromkeys(_DAILY_SLUGS, "24h")},
}


def is_known(label: str, value: str) -> bool:
    """Whether a normalized ``partner``, ``export_type`` or ``frequency`` is one CleverTap is
    known to send. ``unknown`` (the field was absent) and ``other`` (the cap) are not typos."""
    if value in (UNKNOWN, OTHER):
        return True
    if label == "frequency":
        return value == ONE_TIME or interval_seconds(value) is not None
    return value in KNOWN.get(label, (value,))


@lru_cache(maxsize=1024)
def unknown_labels(partner: str, export_type: str, frequency: str) -> tuple[str, ...]:
    """The labels among these normalized values that are not known values (memoized: asked
    for every webhook, of the same few combinations)."""
    return tuple(label for label, value in (("partner", partner), ("export_type", export_type),
                                            ("frequency", frequency))
                 if not is_known(label, value))


def nearest_known(label: str, value: str) -> str | None:
    """The known value whose spelling is closest to ``value`` (a typo's likely intent)."""
    spellings = _SPELLINGS.get(label, {})
    match = difflib.get_close_matches(slug(value), list(spellings), n=1, cutoff=0.6)
    return spellings[match[0]] if match else None


def interval_seconds(freq: str) -> float | None:
    """Schedule interval in seconds of a normalized frequency, or None when not recurring."""
    m = _INTERVAL.fullmatch(freq)
    hours = int(m.group(1)) if m else 0
    return float(hours * 3600) if hours > 0 else None
