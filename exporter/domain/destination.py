"""Where an export lands: a bucket (or container), its prefix and CleverTap's folder template.

Pure: parsing, the listing prefix of a run and which listed objects belong to it; the listing
itself is ``exporter.landing``'s. CleverTap's documented layouts (docs/landing.md):

- file names as CleverTap makes them (``names: default``) start with the Export Request Id:
  events ``<request id>-<run ts>-<event>-<yyyymmdd>-<idx>-<db id>.json``, profiles
  ``<account id>-<request id>-<run ts>-<db id>-<format>.gz``; a run's objects are those whose
  name carries its request id there, and the listing prefix ends inside the name when it can
  (``exports/1690283492-``);
- custom names (``names: custom``) carry a timestamp and an instance id, not the request id:
  a run's objects are those modified within its window.

A placeholder whose value a run does not know (``{{Instance-id}}``, and ``{{Timestamp}}``,
CleverTap's own clock) ends the listing prefix there; the matching rule then tells the run's
objects from the others under it.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from enum import StrEnum
from typing import Final
from urllib.parse import urlsplit


class StoreKind(StrEnum):
    S3 = "s3"
    GCS = "gcs"
    AZURE = "azure"


class Names(StrEnum):
    """Whether the file names are CleverTap's (with the request id) or the user's own."""

    DEFAULT = "default"
    CUSTOM = "custom"


_SCHEMES: Final = {"s3": StoreKind.S3, "gs": StoreKind.GCS, "az": StoreKind.AZURE}
_AZURE_HOST: Final = re.compile(r"^([a-z0-9]{3,24})\.blob\.core\.windows\.net$")
#: S3: 3-63 of a-z 0-9 . -, a letter or digit at each end (no "..", not an IP address).
_S3_BUCKET: Final = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
#: GCS: 3-63 of a-z 0-9 . _ -, or up to 222 with dots and each part at most 63.
_GCS_BUCKET: Final = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
#: Azure: 3-63 of a-z 0-9 -, a letter or digit at each end, no "--".
_AZ_CONTAINER: Final = re.compile(r"^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$")
_AZ_ACCOUNT: Final = re.compile(r"^[a-z0-9]{3,24}$")
_REGION: Final = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_PLACEHOLDER: Final = re.compile(r"\{\{([^{}]*)\}\}")
_CLEVERTAP_ACCOUNT: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_PREFIX: Final = 512

ACCOUNT_ID: Final = "Account-id"
EXPORT_ID: Final = "Export-id"
TIMESTAMP: Final = "Timestamp"
INSTANCE_ID: Final = "Instance-id"
DATE: Final = "Date"
PLACEHOLDERS: Final = (ACCOUNT_ID, EXPORT_ID, TIMESTAMP, INSTANCE_ID, DATE)


class DestinationError(ValueError):
    """A destination that cannot be used; ``field`` names the key at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class LandingRun:
    """What a check knows of a run: its request id and start, from its webhooks."""

    request_id: str
    started: float
    #: ``events``, ``profiles`` or anything else (then either name layout is accepted).
    export_type: str = ""
    #: CleverTap's export id, for ``{{Export-id}}``; None when not known.
    export_id: str | None = None
    #: CleverTap's run timestamp (epoch seconds) for ``{{Timestamp}}``; None when not known.
    timestamp: int | None = None
    zone: tzinfo = UTC


@dataclass(frozen=True, slots=True)
class Destination:
    """A parsed destination; ``bucket`` is the S3/GCS bucket or the Azure container."""

    kind: StoreKind
    bucket: str
    #: The path of the URL, "" or ending in "/".
    prefix: str
    folder: str = ""
    names: Names = Names.DEFAULT
    #: The Azure storage account (None for S3 and GCS).
    account: str | None = None
    endpoint: str | None = None
    region: str | None = None
    #: CleverTap's account id, for ``{{Account-id}}`` and the profile file names.
    clevertap_account_id: str | None = None

    @property
    def url(self) -> str:
        """The store URL, as shown to people (no secrets: a destination holds none)."""
        scheme = {StoreKind.S3: "s3", StoreKind.GCS: "gs", StoreKind.AZURE: "az"}[self.kind]
        return f"{scheme}://{self.bucket}/{self.prefix}"

    @property
    def client_key(self) -> tuple[str, str | None, str | None, str | None]:
        """Destinations with the same key share one client (and its credentials)."""
        return (self.kind.value, self.account, self.endpoint, self.region)

    def listing_prefix(self, run: LandingRun) -> str:
        """The prefix to list for ``run``: the folder rendered up to the first placeholder the
        run has no value for, then, with CleverTap's names, the start of the file name."""
        values = {ACCOUNT_ID: self.clevertap_account_id, EXPORT_ID: run.export_id,
                  TIMESTAMP: None if run.timestamp is None else str(run.timestamp),
                  INSTANCE_ID: None,
                  DATE: datetime.fromtimestamp(run.started, run.zone).strftime("%Y-%m-%d")}
        out = [self.prefix]
        pos = 0
        for m in _PLACEHOLDER.finditer(self.folder):
            out.append(self.folder[pos:m.start()])
            value = values[m.group(1)]
            if value is None:
                return "".join(out)
            out.append(value)
            pos = m.end()
        out.append(self.folder[pos:])
        if self.names is Names.DEFAULT:
            out.append(_name_start(run, self.clevertap_account_id))
        return "".join(out)

    def matches(self, run: LandingRun, name: str, modified: float, checked: float,
                lead: float) -> bool:
        """Whether the listed object ``name`` is one of ``run``'s: its request id in the name
        (CleverTap's names), else modified within ``lead`` before the start and the check."""
        if self.names is Names.CUSTOM:
            return run.started - lead <= modified <= checked
        base = name.rpartition("/")[2]
        events = base.startswith(f"{run.request_id}-")
        # A CleverTap account id has dashes of its own (W9R-486-4W5Z).
        profiles = (base.startswith(f"{self.clevertap_account_id}-{run.request_id}-")
                    if self.clevertap_account_id else f"-{run.request_id}-" in base)
        if run.export_type == "events":
            return events
        if run.export_type == "profiles":
            return profiles
        return events or profiles


def _name_start(run: LandingRun, clevertap_account_id: str | None) -> str:
    if run.export_type == "events":
        return f"{run.request_id}-"
    if run.export_type == "profiles" and clevertap_account_id:
        return f"{clevertap_account_id}-{run.request_id}-"
    return ""


def parse_destination(url: str, *, account: str | None = None, endpoint: str | None = None,
                      region: str | None = None, folder: str = "", names: str = "default",
                      clevertap_account_id: str | None = None) -> Destination:
    """The destination the fields describe; raises ``DestinationError`` naming the field."""
    kind, bucket, prefix, account = _parse_url(url, account)
    if kind is not StoreKind.AZURE and account is not None:
        raise DestinationError("account", "is the Azure storage account; an S3 or GCS "
                               "destination has none (the bucket names it)")
    if region is not None and (kind is not StoreKind.S3 or not _REGION.fullmatch(region)):
        raise DestinationError("region", f"{region!r}: only an S3 destination has a region, "
                               "such as 'eu-west-1'")
    if names not in Names.__members__.values():
        raise DestinationError("names", f"{names!r}: must be 'default' (CleverTap's file "
                               "names, which start with the request id) or 'custom'")
    if clevertap_account_id is not None and not _CLEVERTAP_ACCOUNT.fullmatch(
            clevertap_account_id):
        raise DestinationError("clevertap_account_id", f"{clevertap_account_id!r}: 1 to 64 "
                               "letters, digits, '-' or '_'")
    return Destination(kind, bucket, prefix, _folder(folder), Names(names), account,
                       _endpoint(endpoint), region, clevertap_account_id)


def _parse_url(url: str, account: str | None) -> tuple[StoreKind, str, str, str | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "https" and parts.hostname and parts.hostname.endswith(".windows.net"):
        m = _AZURE_HOST.fullmatch(parts.hostname)
        if m is None:
            raise DestinationError("url", f"{parts.hostname!r} is not an Azure Blob Storage "
                                   "host: ACCOUNT.blob.core.windows.net")
        if account is not None and account != m.group(1):
            raise DestinationError("account", f"{account!r} differs from the URL's account "
                                   f"{m.group(1)!r}")
        container, _, path = parts.path.lstrip("/").partition("/")
        kind, bucket, account = StoreKind.AZURE, container, m.group(1)
    elif scheme in _SCHEMES:
        kind, bucket, path = _SCHEMES[scheme], parts.netloc, parts.path.lstrip("/")
    else:
        raise DestinationError("url", f"{url!r}: the scheme must be s3://, gs://, az:// or "
                               "https://ACCOUNT.blob.core.windows.net/")
    if parts.query or parts.fragment:
        raise DestinationError("url", "must have no query or fragment (a SAS token goes in "
                               "the environment, never in the configuration)")
    _check_bucket(kind, bucket)
    if kind is StoreKind.AZURE:
        if account is None:
            raise DestinationError("account", "an az:// destination needs the storage "
                                   "account ('account: mystorageaccount')")
        if not _AZ_ACCOUNT.fullmatch(account):
            raise DestinationError("account", f"{account!r}: 3 to 24 lowercase letters and "
                                   "digits")
    return kind, bucket, _path(path, "url"), account


def _check_bucket(kind: StoreKind, bucket: str) -> None:
    noun = "container" if kind is StoreKind.AZURE else "bucket"
    if not bucket:
        raise DestinationError("url", f"the {noun} is empty")
    if kind is StoreKind.S3:
        ok = _S3_BUCKET.fullmatch(bucket) is not None and ".." not in bucket
        try:
            ipaddress.IPv4Address(bucket)
            ok = False
        except ValueError:
            pass
        rule = "3 to 63 of a-z, 0-9, '.' and '-', a letter or digit at each end"
    elif kind is StoreKind.GCS:
        ok = (_GCS_BUCKET.fullmatch(bucket) is not None
              and all(0 < len(p) <= 63 for p in bucket.split("."))
              and ("." in bucket or len(bucket) <= 63))
        rule = "3 to 63 of a-z, 0-9, '.', '_' and '-' (222 with dots), a letter or digit at " \
               "each end"
    else:
        ok = _AZ_CONTAINER.fullmatch(bucket) is not None
        rule = "3 to 63 of a-z, 0-9 and '-', a letter or digit at each end, no '--'"
    if not ok:
        raise DestinationError("url", f"{bucket!r} is not a valid {noun} name: {rule}")


def _path(path: str, field: str) -> str:
    """A folder path: no empty, '.' or '..' segment, no control character; "" or ending '/'."""
    path = path.strip("/")
    if not path:
        return ""
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise DestinationError(field, "contains a control character")
    if any(seg in ("", ".", "..") for seg in path.split("/")):
        raise DestinationError(field, f"{path!r} has an empty, '.' or '..' segment")
    if len(path) > MAX_PREFIX:
        raise DestinationError(field, f"longer than {MAX_PREFIX} characters")
    return f"{path}/"


def _folder(folder: str) -> str:
    unknown = [m.group(1) for m in _PLACEHOLDER.finditer(folder)
               if m.group(1) not in PLACEHOLDERS]
    if unknown:
        raise DestinationError("folder", f"unknown placeholder {{{{{unknown[0]}}}}}: known "
                               f"are {', '.join('{{' + p + '}}' for p in PLACEHOLDERS)}")
    if "{{" in _PLACEHOLDER.sub("", folder) or "}}" in _PLACEHOLDER.sub("", folder):
        raise DestinationError("folder", f"{folder!r} has an unbalanced '{{{{' or '}}}}'")
    return _path(folder, "folder")


def _endpoint(endpoint: str | None) -> str | None:
    if endpoint is None:
        return None
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DestinationError("endpoint", f"{endpoint!r}: must be an http:// or https:// URL "
                               "with a host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise DestinationError("endpoint", "must have no credentials, query or fragment")
    try:
        parts.port  # noqa: B018 (urlsplit checks the port only when asked)
    except ValueError:
        raise DestinationError("endpoint", f"{endpoint!r}: the port is not a number from 0 "
                               "to 65535") from None
    return endpoint.rstrip("/")
