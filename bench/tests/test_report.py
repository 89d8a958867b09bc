"""Verdicts and number formats of the report."""

from __future__ import annotations

from typing import Any

from bench.report import Report, Target, fmt_range


def test_verdict_says_by_how_much() -> None:
    assert Target("t", "", 1.0, 0.5, True).verdict() == "met (2.00x inside)"
    assert Target("t", "", 0.25, 0.5, True).verdict() == "**not met**: 2.00x away"
    assert Target("t", "", 6.0, 3.0, False).verdict() == "**not met**: 2.00x away"
    assert Target("t", "", 0.0, 3.0, False).verdict() == "n/a"


def test_ranges() -> None:
    assert fmt_range([]) == "n/a"
    assert fmt_range([1234.5]) == "1,234"
    assert fmt_range([3.0, 1.0, 2.0], 1) == "2.0 [1.0-3.0]"


def _row(rps: float, p99: float, rpc: float | None = None) -> dict[str, Any]:
    row: dict[str, Any] = {"rps": rps, "p50_ms": p99 / 2, "p99_ms": p99, "foreign_cpu": 0.01}
    if rpc is not None:
        row["requests_per_commit"] = rpc
    return row


def test_postgresql_section_sets_two_replicas_beside_one_and_prices_the_commit() -> None:
    res: dict[str, Any] = {
        "meta": {"profile": {"conns": [1, 8]}, "pinning": {"servers": 0, "load": 1}},
        "throughput": {"exporter": {"1": [_row(400, 5, 1.0)], "8": [_row(2000, 10, 4.0)]}},
        "postgresql": {"available": True,
                       "throughput": {"1": [_row(200, 8, 1.0)], "8": [_row(1000, 20, 5.0)]},
                       "two_replicas": {"8": [_row(1500, 30, 6.0)]}}}
    r = Report(res)
    r.postgresql()
    table = [ln for ln in r.lines if ln.startswith("| 8 |") or ln.startswith("| 1 |")]
    assert table == [
        "| 1 | 1 | 200 | 4.00 | 8.00 | 1.0 | 0.50 | 1.00 | 1 |",
        "| 8 | 1 | 1,000 | 10.00 | 20.00 | 5.0 | 0.50 | 1.00 | 1 |",
        "| 8 | 2 | 1,500 | 15.00 | 30.00 | 6.0 | 0.75 | 1.50 | 1 |"]
    assert r.lines[-2] == (
        "What the database's commit costs, at 8 connections and one replica: 1,000 req/s, "
        "0.50x SQLite's 2,000; p99 20.00 ms vs 10.00 ms; 200 commits/s of 5.0 requests each, "
        "one every 5.00 ms (SQLite: 500 commits/s of 4.0 requests, one every 2.00 ms).")


def test_postgresql_section_says_why_not() -> None:
    res: dict[str, Any] = {"meta": {"profile": {"conns": [1]}}, "throughput": {},
                           "postgresql": {"available": False, "reason": "no cluster: x"}}
    r = Report(res)
    r.postgresql()
    assert "Not available: no cluster: x." in r.lines
