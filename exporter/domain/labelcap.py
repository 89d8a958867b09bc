"""The cardinality cap: at most so many values per label, and so many export series.

Values beyond the cap fold into ``other`` and are counted per label (``series`` for the series
limit), so an event is never dropped and the overflow alert can see the folding.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Final

from exporter.domain import normalize
from exporter.domain.keys import SeriesKey

#: Labels whose distinct values are capped, in the order events carry them.
CAPPED_LABELS: Final = ("account", "partner", "export_type", "frequency", "status")
#: What ``clevertap_export_label_overflow_total`` counts: each capped label, and ``series`` for
#: whole series folded by ``max_series``.
OVERFLOW_LABELS: Final = (*CAPPED_LABELS, "series")
#: The series every event folds into once ``max_series`` series exist.
OTHER_SERIES: Final[SeriesKey] = (normalize.OTHER,) * 4

Labels = tuple[str, str, str, str, str]  # account, partner, export_type, frequency, status


class LabelCap:
    """Admitted values per label (persisted by the owner), pinned values, overflow counts."""

    def __init__(self, max_values: int, max_series: int) -> None:
        self.max_values = max_values
        self.max_series = max_series
        self.admitted: dict[str, set[str]] = {label: set() for label in CAPPED_LABELS}
        #: Label values of declared exports: always admitted, outside the cap.
        self.pinned: dict[str, set[str]] = {}
        #: Process counter of folded values per label, and ``series`` for the series limit.
        self.overflow: dict[str, int] = {}

    def restore(self, label_values: list[tuple[str, str]]) -> None:
        self.admitted = {label: set() for label in CAPPED_LABELS}
        for label, value in label_values:
            self.admitted.setdefault(label, set()).add(value)

    def fold(self, values: Labels, series: Container[SeriesKey], series_count: int,
             admitted_now: list[tuple[str, str]]) -> Labels:
        """The labels ``values`` are counted under; newly admitted values go to ``admitted_now``."""
        account, partner, export_type, frequency, status = values
        known = self.admitted
        # The usual event, answered without the loop: a known series, every value admitted.
        if ((account, partner, export_type, frequency) in series
                and account in known["account"] and partner in known["partner"]
                and export_type in known["export_type"]
                and frequency in known["frequency"] and status in known["status"]):
            return values
        out: list[str] = []
        for label, value in zip(CAPPED_LABELS, values, strict=True):
            admitted = self.admitted[label]
            if (value in admitted or value == normalize.OTHER
                    or value in self.pinned.get(label, ())):
                out.append(value)
            elif len(admitted) < self.max_values:
                admitted.add(value)
                admitted_now.append((label, value))
                out.append(value)
            else:
                self._count(label)
                out.append(normalize.OTHER)
        key = (out[0], out[1], out[2], out[3])
        if key not in series and key != OTHER_SERIES and series_count >= self.max_series:
            self._count("series")
            key = OTHER_SERIES
        return key[0], key[1], key[2], key[3], out[4]

    def _count(self, label: str) -> None:
        self.overflow[label] = self.overflow.get(label, 0) + 1
