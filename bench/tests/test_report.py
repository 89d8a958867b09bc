"""Verdicts and number formats of the report."""

from __future__ import annotations

from bench.report import Target, fmt_range


def test_verdict_says_by_how_much() -> None:
    assert Target("t", "", 1.0, 0.5, True).verdict() == "met (2.00x inside)"
    assert Target("t", "", 0.25, 0.5, True).verdict() == "**not met**: 2.00x away"
    assert Target("t", "", 6.0, 3.0, False).verdict() == "**not met**: 2.00x away"
    assert Target("t", "", 0.0, 3.0, False).verdict() == "n/a"


def test_ranges() -> None:
    assert fmt_range([]) == "n/a"
    assert fmt_range([1234.5]) == "1,234"
    assert fmt_range([3.0, 1.0, 2.0], 1) == "2.0 [1.0-3.0]"
