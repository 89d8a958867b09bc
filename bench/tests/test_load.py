"""Simultaneous wrk runs, one per replica, reported as one."""

from __future__ import annotations

from bench.load import WrkResult, combine

ERRS = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}


def test_combined_runs_add_requests_and_keep_the_worse_latency() -> None:
    a = WrkResult(1000, 2.0, 1.0, 9.0, {**ERRS, "timeout": 1}, 0.02)
    b = WrkResult(600, 2.5, 3.0, 4.0, {**ERRS, "read": 2}, 0.02)
    c = combine([a, b])
    assert (c.requests, c.seconds, c.p50_ms, c.p99_ms) == (1600, 2.5, 3.0, 9.0)
    assert c.rps == 640  # over the longer run: never more than the sum of the two
    assert c.errors == {**ERRS, "timeout": 1, "read": 2}
    assert c.foreign_cpu == 0.02 and not c.stalled


def test_one_run_combined_is_itself() -> None:
    a = WrkResult(10, 1.0, 1.0, 2.0, dict(ERRS))
    assert combine([a]) == a
