"""The per-series exposition: the ``clevertap_export_*`` families of every series, kept
rendered and compressed between scrapes.

These families are the bulk of a scrape (a histogram alone is 14 samples a series), so they are
rendered here rather than as prometheus-client metric objects: each series' lines are cached
with its revision, and the series are grouped in chunks of ``CHUNK_SERIES`` whose text and
deflated text are kept per family. A scrape re-renders and re-compresses only the chunks in
which a series changed since the last one; the rest of the body is joined from the cache. Every
chunk is deflated on its own and ended with a full flush (byte-aligned, no reference to earlier
data), so the pieces concatenate into one valid gzip member, the way pigz builds its output.
Label values are normalized slugs and validated account names, which never need escaping.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from exporter.domain.keys import SeriesKey
from exporter.domain.model import DURATION_BUCKETS, Series
from exporter.domain.tracker import ExportTracker


@dataclass(frozen=True, slots=True)
class _Family:
    name: str  # as samples carry it, ``_total`` included for counters
    kind: str
    doc: str

    def header(self, openmetrics: bool) -> str:
        # OpenMetrics names a counter family without its ``_total`` suffix.
        name = self.name.removesuffix("_total") if openmetrics else self.name
        return f"# HELP {name} {self.doc}\n# TYPE {name} {self.kind}\n"


EVENTS: Final = _Family("clevertap_export_status_events_total", "counter",
                        "Accepted export status events (redeliveries excluded), by status.")
LAST_INITIATED: Final = _Family("clevertap_export_last_initiated_timestamp_seconds", "gauge",
                                "Event time (Unix seconds) of the newest Initiated status.")
LAST_COMPLETED: Final = _Family("clevertap_export_last_completed_timestamp_seconds", "gauge",
                                "Event time (Unix seconds) of the newest Completed status.")
LAST_FAILED: Final = _Family("clevertap_export_last_failed_timestamp_seconds", "gauge",
                             "Event time (Unix seconds) of the newest Failed status.")
IN_FLIGHT: Final = _Family("clevertap_export_in_flight", "gauge",
                           "Exports initiated and not yet completed, failed or abandoned.")
OLDEST: Final = _Family("clevertap_export_in_flight_oldest_start_timestamp_seconds", "gauge",
                        "Event time (Unix seconds) at which the oldest in-flight export "
                        "started; absent when none is in flight.")
DURATION: Final = _Family("clevertap_export_duration_seconds", "histogram",
                          "Seconds from an export run's Initiated to its Completed event time.")
LAST_DURATION: Final = _Family("clevertap_export_last_duration_seconds", "gauge",
                               "Duration in seconds of the most recently completed run.")
INTERVAL: Final = _Family("clevertap_export_expected_interval_seconds", "gauge",
                          "Schedule interval in seconds of a recurring export, and its source: "
                          "declared (interval in --config.file), clevertap (the Frequency) or "
                          "learned (from the run history); absent when none is known.")
USUAL_MEDIAN: Final = _Family("clevertap_export_usual_duration_median_seconds", "gauge",
                              "Median duration in seconds of the export's last completed runs; "
                              "absent while the history is too short.")
USUAL_HIGH: Final = _Family("clevertap_export_usual_duration_high_seconds", "gauge",
                            "High quantile in seconds of the export's usual duration (median + "
                            "k x MAD, at least a margin above the median).")
USUAL_RUNS: Final = _Family("clevertap_export_usual_duration_runs", "gauge",
                            "Completed runs the usual duration rests on.")
ABANDONED: Final = _Family("clevertap_export_abandoned_total", "counter",
                           "In-flight exports given up: past the in-flight timeout, or "
                           "started again unfinished.")
SERIES_FAMILIES: Final = (EVENTS, LAST_INITIATED, LAST_COMPLETED, LAST_FAILED, IN_FLIGHT, OLDEST,
                          DURATION, LAST_DURATION, INTERVAL, ABANDONED, USUAL_MEDIAN, USUAL_HIGH,
                          USUAL_RUNS)

_LE: Final = [f"{float(b)!r}" for b in DURATION_BUCKETS] + ["+Inf"]
_Lines = tuple[str, ...]  # one string of sample lines per family of SERIES_FAMILIES


def _series_lines(key: SeriesKey, s: Series) -> _Lines:
    account, partner, export_type, frequency = key
    lbl = (f'account="{account}",partner="{partner}",export_type="{export_type}",'
           f'frequency="{frequency}"')

    def gauge(family: _Family, value: float | None) -> str:
        return "" if value is None else f"{family.name}{{{lbl}}} {float(value)!r}\n"

    events = "".join(f'{EVENTS.name}{{{lbl},status="{status}"}} {float(n)!r}\n'
                     for status, n in s.status_counts.items())
    hist, acc = [], 0
    for le, n in zip(_LE, s.duration_buckets, strict=True):
        acc += n
        hist.append(f'{DURATION.name}_bucket{{{lbl},le="{le}"}} {float(acc)!r}\n')
    hist.append(f"{DURATION.name}_count{{{lbl}}} {float(acc)!r}\n")
    hist.append(f"{DURATION.name}_sum{{{lbl}}} {float(s.duration_sum)!r}\n")
    interval = (f'{INTERVAL.name}{{{lbl},source="{s.expected.source}"}} '
                f"{float(s.expected.seconds)!r}\n" if s.expected else "")
    usual = s.usual
    return (
        events,
        gauge(LAST_INITIATED, s.last_initiated),
        gauge(LAST_COMPLETED, s.last_completed),
        gauge(LAST_FAILED, s.last_failed),
        gauge(IN_FLIGHT, len(s.running)),
        gauge(OLDEST, min(s.running.values()) if s.running else None),
        "".join(hist),
        gauge(LAST_DURATION, s.last_duration),
        interval,
        gauge(ABANDONED, s.abandoned),
        gauge(USUAL_MEDIAN, usual.median if usual else None),
        gauge(USUAL_HIGH, usual.high if usual else None),
        gauge(USUAL_RUNS, usual.runs if usual else None),
    )


#: Series keys per chunk: about 190 KB of text at 22 series a key, compressed in about a
#: millisecond; smaller chunks compress noticeably worse, each restarting without a dictionary.
CHUNK_SERIES: Final = 64
_LEVEL: Final = 6  # zlib's and Go's default, what node_exporter and Prometheus's own use
# A gzip member header (RFC 1952): deflate, no name, no mtime, unknown OS.
_GZIP_HEADER: Final = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


def _deflate(raw: bytes) -> bytes:
    """``raw`` as raw deflate blocks that end byte-aligned and are not the last of the stream."""
    if not raw:
        return b""
    c = zlib.compressobj(_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    return c.compress(raw) + c.flush(zlib.Z_FULL_FLUSH)


#: Each family's HELP/TYPE header as (text, deflated), for Prometheus text and for OpenMetrics.
_HEADERS: Final = {
    om: tuple((h, _deflate(h)) for h in (f.header(om).encode() for f in SERIES_FAMILIES))
    for om in (False, True)
}


@dataclass(frozen=True, slots=True)
class SeriesBody:
    """The series part of one scrape's body, at one model version."""

    pieces: Sequence[bytes]  # the text, in order
    fragments: Sequence[bytes]  # the same text, each piece deflated on its own
    crc: int  # CRC-32 of the text, continued over the tail for the gzip trailer
    size: int

    def text(self, tail: bytes) -> bytes:
        """The uncompressed body: this text, then ``tail``."""
        return b"".join((*self.pieces, tail))

    def gzip(self, tail: bytes) -> bytes:
        """The body as one gzip member: the cached fragments, then ``tail`` ending the stream."""
        c = zlib.compressobj(_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        end = c.compress(tail) + c.flush(zlib.Z_FINISH)
        trailer = struct.pack("<II", zlib.crc32(tail, self.crc), (self.size + len(tail)) % 2**32)
        return b"".join((_GZIP_HEADER, *self.fragments, end, trailer))


#: The body of a process without a model (state not loaded): only the tail.
NO_SERIES: Final = SeriesBody((), (), 0, 0)


@dataclass(frozen=True, slots=True)
class _Chunk:
    series: tuple[Series, ...]  # which objects, at which revisions, the text was rendered from
    revs: tuple[int, ...]
    text: tuple[bytes, ...]  # one per family of SERIES_FAMILIES
    deflated: tuple[bytes, ...]

    def current(self, series: tuple[Series, ...]) -> bool:
        return (len(series) == len(self.series)
                and all(a is b for a, b in zip(series, self.series, strict=True))
                and tuple(s.rev for s in series) == self.revs)


class SeriesExposition:
    """Renders the per-series families of one model, incrementally (see the module's doc)."""

    def __init__(self, model: ExportTracker) -> None:
        self.model = model
        self._lines: dict[SeriesKey, tuple[Series, int, _Lines]] = {}
        self._chunks: list[_Chunk] = []
        self._snapshots: dict[bool, tuple[int, SeriesBody]] = {}

    def snapshot(self, openmetrics: bool = False) -> SeriesBody:
        """Every series' families, as Prometheus text or OpenMetrics (without ``# EOF``)."""
        version = self.model.version
        cached = self._snapshots.get(openmetrics)
        if cached is not None and cached[0] == version:
            return cached[1]
        items = list(self.model.series.items())
        if len(self._lines) > len(items):  # series went away (a reload): forget their lines
            self._lines = {k: v for k, v in self._lines.items() if k in self.model.series}
        self._chunks = [self._chunk(i // CHUNK_SERIES, items[i:i + CHUNK_SERIES])
                        for i in range(0, len(items), CHUNK_SERIES)]
        pieces: list[bytes] = []
        fragments: list[bytes] = []
        for f, (text, deflated) in enumerate(_HEADERS[openmetrics]):
            pieces.append(text)
            fragments.append(deflated)
            for chunk in self._chunks:
                pieces.append(chunk.text[f])
                fragments.append(chunk.deflated[f])
        crc = 0
        for piece in pieces:
            crc = zlib.crc32(piece, crc)
        snap = SeriesBody(pieces, fragments, crc, sum(map(len, pieces)))
        self._snapshots[openmetrics] = (version, snap)
        return snap

    def _chunk(self, index: int, items: list[tuple[SeriesKey, Series]]) -> _Chunk:
        series = tuple(s for _, s in items)
        if index < len(self._chunks) and self._chunks[index].current(series):
            return self._chunks[index]
        lines = [self._lines_of(key, s) for key, s in items]
        text = tuple("".join(ls[f] for ls in lines).encode() for f in range(len(SERIES_FAMILIES)))
        return _Chunk(series, tuple(s.rev for s in series), text, tuple(map(_deflate, text)))

    def _lines_of(self, key: SeriesKey, s: Series) -> _Lines:
        cached = self._lines.get(key)
        if cached is not None and cached[0] is s and cached[1] == s.rev:
            return cached[2]
        lines = _series_lines(key, s)
        self._lines[key] = (s, s.rev, lines)
        return lines
