"""The requests the harness sends itself: CleverTap webhook bodies and Pushgateway groups."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

PARTNERS = ("Amazon S3", "Google Cloud Storage", "Microsoft Azure", "Partner Four", "Partner Five")
PARTNER_SLUGS = ("amazon_s3", "google_cloud_storage", "azure_blob_storage", "partner_four",
                 "partner_five")
TYPES = ("Events", "Profiles")
FREQS = ("One Time", "Every 4 hours", "Every 8 hours", "Every 12 hours", "Every 24 hours")
FREQ_SLUGS = ("one_time", "4h", "8h", "12h", "24h")
COMBOS = len(PARTNERS) * len(TYPES) * len(FREQS)  # 50 series keys per account
# Sizes count exposed time series, as Prometheus does. One exporter series key exposes about 22
# (14 of them the duration histogram), one Pushgateway push line exposes one; so a size of
# 10,000 series is about 455 exporter keys against 10,000 Pushgateway lines.
SERIES_PER_KEY = 22

Request = tuple[str, bytes]


def clevertap_time(t: int) -> str:
    """The documented ``DD/MM/YYYY h:mm:ss AM/PM`` form (UTC)."""
    d = datetime.fromtimestamp(t, UTC)
    return f"{d:%d/%m/%Y} {int(d.strftime('%I'))}:{d:%M:%S %p}"


def event(account: str, key: int, rid: int, status: str, when: int) -> Request:
    """One webhook for series key ``key`` (0-49: partner x type x frequency) of ``account``."""
    body = json.dumps({"Export Request Id": rid, "Partner": PARTNERS[key % 5],
                       "Type": TYPES[(key // 5) % 2], "Status": status,
                       "Frequency": FREQS[(key // 10) % 5],
                       "Date and Time": clevertap_time(when)})
    return f"/webhook/{account}", body.encode()


def series_wave(start: int, stop: int, first_id: int, status: str, when: int
                ) -> Iterator[Request]:
    """Series keys [start, stop) as account ``acctNNNN`` x 50 combinations, one run each
    (ids ``first_id + key``). The Completed wave leaves every 10th key in flight; sending it
    after the whole Initiated wave keeps each pair in order."""
    for i in range(start, stop):
        if status == "Completed" and i % 10 == 0:
            continue
        yield event(f"acct{i // COMBOS:04d}", i % COMBOS, first_id + i, status,
                    when + (600 if status == "Completed" else 0))


def push_groups(start: int, stop: int, t0: int) -> Iterator[Request]:
    """The same series keys on the Pushgateway: one push group per account (grouping label
    ``account``), each one series per combination. One group per series key would take minutes
    to build at 10,000: the Pushgateway re-checks everything it holds on every push."""
    for acct in range(start // COMBOS, -(-stop // COMBOS)):
        lines = [
            f'clevertap_export_last_completed_timestamp_seconds{{partner="{PARTNER_SLUGS[k % 5]}"'
            f',export_type="{TYPES[(k // 5) % 2].lower()}",frequency="{FREQ_SLUGS[(k // 10) % 5]}"'
            f"}} {t0 - k}\n"
            for k in range(COMBOS)]
        yield f"/metrics/job/clevertap_export/account/acct{acct:04d}", "".join(lines).encode()


def restart_wave(pairs: int, inflight: int, first_id: int, status: str, when: int
                 ) -> Iterator[Request]:
    """Deliveries over four accounts: ``pairs + inflight`` Initiated, ``pairs`` Completed."""
    total = pairs if status == "Completed" else pairs + inflight
    for j in range(total):
        yield event(f"restart{j % 4}", j % COMBOS, first_id + j, status,
                    when + (300 if status == "Completed" else 0))


def count_samples(raw: bytes) -> int:
    return sum(1 for ln in raw.splitlines() if ln and not ln.startswith(b"#"))


def in_flight_total(raw: bytes) -> float:
    total = 0.0
    for ln in raw.splitlines():
        if ln.startswith(b"clevertap_export_in_flight{"):
            total += float(ln.rsplit(b"}", 1)[1].split()[0])
    return total
