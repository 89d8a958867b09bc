"""Each documented normalization rule, and the invariants every label value keeps."""

import pytest

from exporter.domain import normalize


@pytest.mark.parametrize(("raw", "want"), [
    ("Amazon S3", "amazon_s3"), ("AWS S3", "amazon_s3"), ("S3", "amazon_s3"),
    ("  amazon   s3 ", "amazon_s3"),
    ("Google Cloud Storage", "google_cloud_storage"), ("GCS", "google_cloud_storage"),
    ("Google Cloud Platform (GCP)", "google_cloud_storage"),
    ("Microsoft Azure", "azure_blob_storage"), ("Azure", "azure_blob_storage"),
    ("AZURE", "azure_blob_storage"),
    ("Snowflake Stage", "snowflake_stage"),
])
def test_partner(raw: str, want: str) -> None:
    assert normalize.partner(raw) == want


@pytest.mark.parametrize(("raw", "want"), [
    ("Events", "events"), ("event", "events"), ("Profiles", "profiles"),
    ("Profile", "profiles"), (None, "unknown"), ("Custom Thing", "custom_thing"),
])
def test_export_type(raw: str | None, want: str) -> None:
    assert normalize.export_type(raw) == want


@pytest.mark.parametrize(("raw", "want"), [
    ("Initiated", "initiated"), ("COMPLETED", "completed"), ("Failed", "failed"),
    ("Failure", "failed"), ("Error", "failed"), (" completed ", "completed"),
    ("Cancelled", "cancelled"),
])
def test_status(raw: str, want: str) -> None:
    assert normalize.status(raw) == want


@pytest.mark.parametrize(("raw", "want"), [
    ("One Time", "one_time"), ("one-time", "one_time"), ("ONETIME", "one_time"),
    ("Every 4 hours", "4h"), ("4 Hours", "4h"), ("4 hrs", "4h"), ("every 8 hours", "8h"),
    ("Recurring - every 12 hours", "12h"), ("Every 24 Hours", "24h"), ("Daily", "24h"),
    ("12h", "12h"), (None, "unknown"), ("Weekly", "weekly"), ("Every 0 hours", "every_0_hours"),
])
def test_frequency(raw: str | None, want: str) -> None:
    assert normalize.frequency(raw) == want


@pytest.mark.parametrize(("freq", "seconds"), [
    ("4h", 14400.0), ("8h", 28800.0), ("12h", 43200.0), ("24h", 86400.0),
    ("one_time", None), ("unknown", None), ("weekly", None),
])
def test_interval_seconds(freq: str, seconds: float | None) -> None:
    assert normalize.interval_seconds(freq) == seconds


@pytest.mark.parametrize("raw", [
    "", "   ", "!!!", "Ünïcödé Pärtner", "x" * 500, "a\x00b\nc", "Every 4 hours", "日本",
])
@pytest.mark.parametrize("fn", [normalize.partner, normalize.export_type, normalize.status,
                                normalize.frequency, normalize.slug])
def test_always_a_valid_label_and_idempotent(raw: str, fn: object) -> None:
    assert callable(fn)
    once = fn(raw)
    assert normalize.LABEL_VALUE_RE.fullmatch(once), once
    assert fn(once) == once
