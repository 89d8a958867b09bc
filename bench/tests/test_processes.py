"""Servers, the state-building client, scrapes and wrk, against a real exporter."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import servers
from bench.backends import SqliteBackend, commit_delta
from bench.common import HOST, SMOKE, HarnessError
from bench.load import Wrk, post_many, scrape
from bench.phases import CEILING, DURABLE, Run, measure
from bench.servers import UNPINNED, Server, ServerExited
from bench.workload import count_samples, event, in_flight_total, series_wave

pytestmark = pytest.mark.process

T0 = 1_780_000_000


def test_client_counts_outcomes_and_the_store_commits(exporter: Server,
                                                      backend: SqliteBackend) -> None:
    before = backend.commits()
    counts = post_many(exporter.port, series_wave(0, 20, 7_000_000, "Initiated", T0), 8)
    assert counts == {"accepted": 20}
    again = post_many(exporter.port, series_wave(0, 3, 7_000_000, "Initiated", T0), 1)
    assert again == {"duplicate": 3}
    commits = commit_delta(before, backend.commits())
    assert commits is not None and 1 <= commits <= 23
    body = scrape(exporter).body
    assert in_flight_total(body) == 20
    assert count_samples(body) > 20


def test_a_rejected_delivery_is_a_harness_error(exporter: Server) -> None:
    path, _ = event("acct0000", 0, 1, "Initiated", T0)
    with pytest.raises(HarnessError, match="unexpected responses"):
        post_many(exporter.port, [(path, b"{not json")], 1)


def test_wrk_runs_are_parsed_with_batch_sizes(exporter: Server, backend: SqliteBackend,
                                              tmp_path: Path) -> None:
    run = Run(SMOKE, UNPINNED, tmp_path, T0, count_instructions=False)
    row = measure(run, exporter, DURABLE, 4, 1, backend)
    assert row["requests"] > 0 and 0 < row["p50_ms"] <= row["p99_ms"]
    assert row["requests_per_commit"] >= 1
    noop = Wrk(UNPINNED, T0).run(exporter, CEILING.path, CEILING.mode, 2, 1)
    assert noop.rps > 0 and noop.errors["status"] == 0


def test_exit_before_ready_is_reported_with_the_log(tmp_path: Path) -> None:
    s = servers.exporter("bad", UNPINNED, tmp_path, ["--no-such-flag"])
    with pytest.raises(ServerExited) as e:
        s.start(timeout=30)
    assert "--no-such-flag" in e.value.log_tail
    assert s.proc is None


def test_rss_of_a_running_server(exporter: Server) -> None:
    assert 10 < servers.rss_mb(exporter.pid) < 1000


def test_a_server_that_never_answers_gives_a_stalled_run(tmp_path: Path) -> None:
    port = servers.free_port()
    code = ("import socket, time\ns = socket.socket()\n"
            f"s.bind(('127.0.0.1', {port}))\ns.listen(64)\ntime.sleep(30)")
    silent = Server("silent", [sys.executable, "-c", code], port, "/", tmp_path / "log")
    silent.proc = subprocess.Popen(silent.cmd)
    try:
        for _ in range(100):  # until it listens, at most 10 s
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), 1):
                break
            time.sleep(0.1)
        r = Wrk(UNPINNED, T0).run(silent, DURABLE.path, DURABLE.mode, 2, 1)
    finally:
        silent.stop(signal.SIGKILL)
    assert r.stalled and r.p99_ms == r.seconds * 1000
