"""Destinations: parsing with errors naming the field, the listing prefix of a run, matching."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from exporter.domain.declared import ConfigError, parse_config
from exporter.domain.destination import (
    Destination,
    DestinationError,
    LandingRun,
    Names,
    StoreKind,
    parse_destination,
)

# 2023-07-25 11:11:32 UTC, 16:41 in Kolkata, 2023-07-26 01:11 in Kiritimati (UTC+14).
STARTED = 1690283492.0
EVENTS = LandingRun("1690283492", STARTED, "events", export_id="77", zone=ZoneInfo("Asia/Kolkata"))
PROFILES = LandingRun("1690283492", STARTED, "profiles")


@pytest.mark.parametrize(("url", "kwargs", "expected"), [
    ("s3://my-bucket", {}, Destination(StoreKind.S3, "my-bucket", "")),
    ("s3://my.bucket-1/ct/exports/", {"region": "eu-west-1"},
     Destination(StoreKind.S3, "my.bucket-1", "ct/exports/", region="eu-west-1")),
    ("gs://lake_raw/clevertap", {}, Destination(StoreKind.GCS, "lake_raw", "clevertap/")),
    ("az://exports/ct", {"account": "mystore1"},
     Destination(StoreKind.AZURE, "exports", "ct/", account="mystore1")),
    ("https://mystore1.blob.core.windows.net/exports/ct/x", {},
     Destination(StoreKind.AZURE, "exports", "ct/x/", account="mystore1")),
    ("S3://b12", {"endpoint": "http://127.0.0.1:9000/", "names": "custom"},
     Destination(StoreKind.S3, "b12", "", names=Names.CUSTOM, endpoint="http://127.0.0.1:9000")),
])
def test_valid_destinations(url: str, kwargs: dict[str, str], expected: Destination) -> None:
    assert parse_destination(url, **kwargs) == expected


@pytest.mark.parametrize(("url", "kwargs", "field", "words"), [
    ("ftp://bucket/x", {}, "url", "scheme must be s3://"),
    ("bucket/x", {}, "url", "scheme must be"),
    ("s3:///prefix", {}, "url", "bucket is empty"),
    ("s3://My_Bucket", {}, "url", "not a valid bucket name"),
    ("s3://ab", {}, "url", "not a valid bucket name"),
    ("s3://a..b", {}, "url", "not a valid bucket name"),
    ("s3://192.168.1.1", {}, "url", "not a valid bucket name"),
    ("gs://-bucket", {}, "url", "not a valid bucket name"),
    ("gs://" + "a" * 64, {}, "url", "not a valid bucket name"),
    ("az://a--b", {"account": "acct"}, "url", "not a valid container name"),
    ("az://exports", {}, "account", "needs the storage account"),
    ("az://exports", {"account": "My-Account"}, "account", "3 to 24 lowercase"),
    ("https://bad_host.blob.core.windows.net/c1/x", {}, "url", "not an Azure Blob Storage"),
    ("https://acct1.blob.core.windows.net/c1", {"account": "acct2"}, "account", "differs"),
    ("https://acct1.blob.core.windows.net/c1?sv=2020&sig=x", {}, "url", "SAS token"),
    ("s3://bucket/a//b", {}, "url", "empty, '.' or '..' segment"),
    ("s3://bucket/a/../b", {}, "url", "'..' segment"),
    ("s3://bucket", {"account": "acct"}, "account", "has none"),
    ("gs://bucket", {"region": "eu-west-1"}, "region", "only an S3 destination"),
    ("s3://bucket", {"region": "Frankfurt"}, "region", "such as 'eu-west-1'"),
    ("s3://bucket", {"endpoint": "ftp://127.0.0.1"}, "endpoint", "http:// or https://"),
    ("s3://bucket", {"endpoint": "127.0.0.1:9000"}, "endpoint", "http:// or https://"),
    ("s3://bucket", {"endpoint": "http://u:p@127.0.0.1"}, "endpoint", "no credentials"),
    ("s3://bucket", {"endpoint": "http://127.0.0.1:99999"}, "endpoint", "port"),
    ("s3://bucket", {"folder": "{{Date}}/{{Run-id}}"}, "folder", "unknown placeholder {{Run-id}}"),
    ("s3://bucket", {"folder": "{{date}}"}, "folder", "unknown placeholder {{date}}"),
    ("s3://bucket", {"folder": "{{Date}"}, "folder", "unbalanced"),
    ("s3://bucket", {"folder": "a\nb"}, "folder", "control character"),
    ("s3://bucket", {"names": "mine"}, "names", "'default'"),
    ("s3://bucket", {"clevertap_account_id": "a b"}, "clevertap_account_id", "letters"),
])
def test_malformed_destinations_name_their_field(url: str, kwargs: dict[str, str], field: str,
                                                 words: str) -> None:
    with pytest.raises(DestinationError) as caught:
        parse_destination(url, **kwargs)
    assert caught.value.field == field
    assert words in caught.value.message
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize(("folder", "run", "expected"), [
    # CleverTap's folder options: the bucket root, by data type, by run date, by export id.
    ("", EVENTS, "ct/1690283492-"),
    ("events/", EVENTS, "ct/events/1690283492-"),
    ("{{Date}}", EVENTS, "ct/2023-07-25/1690283492-"),
    ("{{Export-id}}/", EVENTS, "ct/77/1690283492-"),
    # Custom templates: an unknown value ends the prefix where it stands.
    ("{{Account-id}}/{{Date}}", EVENTS, "ct/acc-1/2023-07-25/1690283492-"),
    ("runs/{{Timestamp}}/x", EVENTS, "ct/runs/"),
    ("{{Date}}-{{Instance-id}}", EVENTS, "ct/2023-07-25-"),
    ("{{Export-id}}", PROFILES, "ct/"),
    ("profile/", PROFILES, "ct/profile/acc-1-1690283492-"),
])
def test_listing_prefix(folder: str, run: LandingRun, expected: str) -> None:
    dest = parse_destination("s3://bucket/ct", folder=folder, clevertap_account_id="acc-1")
    assert dest.listing_prefix(run) == expected


def test_the_date_is_the_run_start_in_the_accounts_zone() -> None:
    dest = parse_destination("gs://bucket", folder="{{Date}}/", names="custom")
    for zone, day in (("UTC", "2023-07-25"), ("Pacific/Kiritimati", "2023-07-26"),
                      ("America/Los_Angeles", "2023-07-25")):
        run = LandingRun("1", STARTED, zone=ZoneInfo(zone))
        assert dest.listing_prefix(run) == f"{day}/"
    known = LandingRun("1", STARTED, timestamp=1690283500)
    assert parse_destination("gs://bucket", folder="t{{Timestamp}}").listing_prefix(known) == \
        "t1690283500/"
    assert datetime.fromtimestamp(STARTED, UTC).hour == 11


def test_default_names_match_the_request_id_where_the_layout_has_it() -> None:
    dest = parse_destination("s3://bucket")
    events = "1690283492-1690283500-App_Launched-20230725-0-db1.json"
    profiles = "acc-1690283492-1690283500-db1-json.gz"
    other = "1690283493-1690283492-App_Launched-20230725-0-db1.json"
    assert dest.matches(EVENTS, f"x/{events}", 0, 0, 0)
    assert not dest.matches(EVENTS, profiles, 0, 0, 0)
    # The other request's run timestamp equals our request id: not ours.
    assert not dest.matches(EVENTS, other, 0, 0, 0)
    assert dest.matches(PROFILES, f"2023-07-25/{profiles}", 0, 0, 0)
    assert not dest.matches(PROFILES, events, 0, 0, 0)
    unknown = LandingRun("1690283492", STARTED)
    assert dest.matches(unknown, events, 0, 0, 0) and dest.matches(unknown, profiles, 0, 0, 0)
    assert not dest.matches(unknown, "16902834920-x.json", 0, 0, 0)
    # CleverTap's account ids have dashes: known, the name must start with it.
    dashed = parse_destination("s3://bucket", clevertap_account_id="W9R-486-4W5Z")
    assert dashed.matches(PROFILES, "W9R-486-4W5Z-1690283492-1690283500-db1-csv.gz", 0, 0, 0)
    assert not dashed.matches(PROFILES, "W9R-486-1690283492-1690283500-db1-csv.gz", 0, 0, 0)
    assert dest.matches(PROFILES, "W9R-486-4W5Z-1690283492-1690283500-db1-csv.gz", 0, 0, 0)


def test_custom_names_match_by_modification_time_in_the_run_window() -> None:
    dest = parse_destination("s3://bucket", names="custom")
    checked = STARTED + 600
    assert dest.matches(EVENTS, "anything.gz", STARTED - 60, checked, lead=300)
    assert dest.matches(EVENTS, "anything.gz", checked, checked, lead=300)
    assert not dest.matches(EVENTS, "anything.gz", STARTED - 301, checked, lead=300)
    assert not dest.matches(EVENTS, "anything.gz", checked + 1, checked, lead=300)


ENTRY = "exports:\n  - partner: Amazon S3\n    type: Events\n    frequency: 4h\n"


def test_the_config_file_takes_a_destination_per_export() -> None:
    config = parse_config(ENTRY + "    destination: s3://bucket/ct\n" + ENTRY.split("\n", 1)[1]
                          .replace("4h", "24h") + "    destination:\n      url: az://c12/p\n"
                          "      account: store1\n      folder: '{{Date}}/'\n")
    first, second = config.exports.values()
    assert first.destination == Destination(StoreKind.S3, "bucket", "ct/")
    assert second.destination == Destination(StoreKind.AZURE, "c12", "p/", folder="{{Date}}/",
                                             account="store1")


@pytest.mark.parametrize(("destination", "message"), [
    ("destination: gs://B", "exports[0].destination.url: 'B' is not a valid bucket name"),
    ("destination: {url: az://c12}", "exports[0].destination.account: an az:// destination"),
    ("destination: {url: s3://b12, folder: '{{X}}'}",
     "exports[0].destination.folder: unknown placeholder {{X}}"),
    ("destination: {url: s3://b12, key: secret}", "exports[0].destination.key: unknown key"),
    ("destination: {folder: x}", "exports[0].destination.url: required key is missing"),
])
def test_the_config_file_refuses_a_malformed_destination(destination: str,
                                                         message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(ENTRY + f"    {destination}\n", "exports.yml")
    assert f"exports.yml: {message}" in str(caught.value)


def test_the_example_file_has_destinations_and_is_shown_whole_in_the_operator_guide() -> None:
    from tests.helpers import ROOT

    example = (ROOT / "docs" / "exports.example.yml").read_text()
    kinds = [e.destination.kind for e in parse_config(example).exports.values() if e.destination]
    assert kinds == [StoreKind.S3, StoreKind.GCS, StoreKind.AZURE]
    assert f"```yaml\n{example}```" in (ROOT / "docs" / "operator.md").read_text()
