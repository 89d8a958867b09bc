"""Hypothesis strategies for webhook bodies: valid, near-valid and hostile.

``hostile_bodies`` yields ``(kind, bytes)`` pairs so a test can report how many of each kind it
tried: valid and near-valid CleverTap payloads, wrong types, huge numbers, NaN and Infinity,
deep nesting, unicode and control characters, duplicated keys, a byte order mark, empty
bodies, other encodings and arbitrary bytes. ``change_sets`` yields what the domain hands a
store to write.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from exporter.domain.model import Series
from exporter.store.base import Changes, DeliveryRow, RunRow, SeriesRow

FIELDS = ["Export Request Id", "Partner", "Type", "Status", "Frequency", "Date and Time"]

PARTNERS = ["Amazon S3", "AWS S3", "Google Cloud Storage", "GCS", "Microsoft Azure", "Azure"]
STATUSES = ["Initiated", "Completed", "Failed", "Failure", "Error"]
FREQUENCIES = ["One Time", "Every 4 hours", "8 Hours", "12 hrs", "Daily",
               "Recurring - every 12 hours"]
TIMES = ["25/07/2023 4:50:52 PM", "25/07/2023 16:50:52", "2023-07-25T16:50:52Z",
         1690283452, 1690283452000, "1690283452"]

# Text that exercises normalization: control characters, surrogates excluded (not encodable),
# combining marks, wide characters, look-alikes of ASCII letters.
nasty_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"]), max_size=80
) | st.sampled_from(["", " ", "\x00", "\u202e", "İ", "ß", "\u212a", "\ufeff", "\u0000S3",
                     "Amazon\u00a0S3", "😀", "\uff33\uff13", "a" * 300])

# What the payload model accepts as text: 1 to 256 characters, none of them U+0000.
label_text = nasty_text.filter(lambda s: 0 < len(s) <= 256 and "\x00" not in s)

json_scalars = (
    st.none() | st.booleans() | st.integers() | nasty_text
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(min_value=-(10**400), max_value=10**400)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(nasty_text, inner, max_size=4),
    max_leaves=12,
)


@st.composite
def valid_payloads(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "Export Request Id": draw(st.integers(1, 2**53) | st.text(
            alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=40)),
        "Partner": draw(st.sampled_from(PARTNERS) | label_text),
        "Status": draw(st.sampled_from(STATUSES)),
    }
    if draw(st.booleans()):
        doc["Type"] = draw(st.sampled_from(["Events", "Profiles"]) | label_text)
    if draw(st.booleans()):
        doc["Frequency"] = draw(st.sampled_from(FREQUENCIES) | label_text)
    if draw(st.booleans()):
        # Any JSON value but numbers beyond a double, which make the whole body invalid JSON.
        doc["Date and Time"] = draw(st.sampled_from(TIMES) | st.none() | st.booleans()
                                    | st.integers(-(10**300), 10**300) | nasty_text
                                    | st.floats(allow_nan=False, allow_infinity=False))
    return doc


@st.composite
def near_valid_payloads(draw: st.DrawFn) -> dict[str, Any]:
    """A valid payload with some fields dropped or replaced by values of any JSON type."""
    doc = draw(valid_payloads())
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        if draw(st.booleans()):
            doc.pop(name, None)
        else:
            doc[name] = draw(json_values)
    if draw(st.booleans()):
        doc.update(draw(st.dictionaries(nasty_text, json_values, max_size=3)))
    return doc


def _dumps(doc: Any) -> bytes:
    # allow_nan (the default) writes NaN and Infinity, which JSON does not have.
    return json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def _duplicated_keys(draw: st.DrawFn) -> bytes:
    doc = draw(valid_payloads())
    name = draw(st.sampled_from(list(doc)))
    other = json.dumps(draw(json_values))
    inner = _dumps(doc).decode()[1:-1]
    return ("{" + f"{json.dumps(name)}: {other}, " + inner + "}").encode()


@st.composite
def _deep(draw: st.DrawFn) -> bytes:
    depth = draw(st.integers(1, 3000))
    open_, close = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    return (open_ * depth + "1" + close * draw(st.sampled_from([depth, 0, depth - 1]))).encode()


@st.composite
def _special_numbers(draw: st.DrawFn) -> bytes:
    doc = draw(valid_payloads())
    field = draw(st.sampled_from(FIELDS))
    token = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", "1e400", "-1e400",
                                  "9" * 500, "1" + "0" * 40, "-0", "1e-400", "0.1e309"]))
    return _dumps({**doc, field: "__TOKEN__"}).replace(b'"__TOKEN__"', token.encode())


@st.composite
def _encoded(draw: st.DrawFn) -> bytes:
    doc = draw(valid_payloads())
    text = json.dumps(doc, ensure_ascii=False)
    encoding = draw(st.sampled_from(["utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252"]))
    return text.encode(encoding, "replace")


hostile_bodies = st.one_of(
    valid_payloads().map(lambda d: ("valid", _dumps(d))),
    near_valid_payloads().map(lambda d: ("near_valid", _dumps(d))),
    json_values.map(lambda v: ("any_json", _dumps(v))),
    _duplicated_keys().map(lambda b: ("duplicated_keys", b)),
    _deep().map(lambda b: ("deep_nesting", b)),
    _special_numbers().map(lambda b: ("special_numbers", b)),
    _encoded().map(lambda b: ("other_encoding", b)),
    valid_payloads().map(lambda d: ("bom", b"\xef\xbb\xbf" + _dumps(d))),
    st.sampled_from([b"", b" ", b"\n\t", b"\xef\xbb\xbf", b"null", b"[]", b"{}", b'""',
                     b"\x00", b"{", b'{"is_test": true}', b'{"is_test": "true"}'])
    .map(lambda b: ("edge", b)),
    st.binary(max_size=200).map(lambda b: ("bytes", b)),
)


# Change sets as the domain hands them to a store, over a small key space so that rows recur,
# are deleted and written again within a batch (``base.net``).
_accounts = st.sampled_from(["a", "b"])
_ids = st.sampled_from(["1", "2", "3"])
_times = st.sampled_from([10.0, 20.0, 30.0])
_series_rows = st.builds(SeriesRow, _accounts, st.just("s3"), st.just("events"),
                         st.just("daily"),
                         st.sampled_from([Series().encode(), Series(abandoned=1).encode()]))
_run_rows = st.builds(RunRow, _accounts, _ids, st.just("s3"), st.just("events"),
                      st.just("daily"), st.none() | _times, st.none() | _times, _times)
_delivery_rows = st.builds(DeliveryRow, _accounts, _ids, st.just("Initiated"), _times, _times)
change_sets = st.builds(
    Changes,
    series=st.lists(_series_rows, max_size=3),
    runs=st.lists(_run_rows, max_size=3),
    deleted_runs=st.lists(st.tuples(_accounts, _ids), max_size=2),
    deliveries=st.lists(_delivery_rows, max_size=3),
    deleted_deliveries=st.lists(st.tuples(_accounts, _ids, st.just("Initiated"), _times),
                                max_size=2),
    deliveries_received_before=st.none() | _times,
    label_values=st.lists(st.tuples(st.just("partner"), st.sampled_from(["x", "y"])),
                          max_size=2),
    gauges=st.lists(st.tuples(st.sampled_from(["last_received", "delay:a"]), _times),
                    max_size=3),
    # A forget now and then (by hand and rare in use): it deletes after its change's writes.
    deleted_series=st.lists(st.tuples(_accounts, st.just("s3"), st.just("events"),
                                      st.just("daily")), max_size=1),
    deleted_gauges=st.lists(st.tuples(st.just("delay:a")), max_size=1),
)
