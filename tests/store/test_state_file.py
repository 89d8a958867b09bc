"""The state file's safety: a deleted or replaced file or write-ahead log, a second process by
any path, a foreign or newer or damaged database, and readiness that means "would be stored"."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sqlite3
import time
import urllib.error
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from exporter.store import StoreError
from exporter.store.base import Changes, RunRow, SeriesRow
from exporter.store.sqlite import SQLiteStore
from tests.helpers import Exporter, ExporterProcess, event

Start = Callable[..., Awaitable[Exporter]]
Process = Callable[..., ExporterProcess]


def _remove_state(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def test_deleted_state_file_answers_503_and_is_not_recreated(
    start_exporter: Start, caplog: pytest.LogCaptureFixture, exporter_process: Process,
) -> None:
    exp = await start_exporter()
    assert (await exp.post(event(1, "Initiated")))[0] == 200
    _remove_state(exp.state)
    caplog.set_level(logging.ERROR, logger="exporter.store.sqlite")
    for i in (2, 3, 4):
        status, answer = await exp.post(event(i, "Initiated"))
        assert (status, answer["status"]) == (503, "unavailable")
    assert (await exp.client.get("/readyz")).status == 503
    assert not exp.state.exists()  # neither the webhook nor readiness made an empty one
    lost = [r for r in caplog.records if r.name == "exporter.store.sqlite"]
    assert len(lost) == 1 and lost[0].levelno == logging.ERROR
    assert "was deleted while the exporter was running" in lost[0].getMessage()
    await exp.client.close()

    # A restart refuses to begin empty where a store existed ...
    proc = exporter_process(state=exp.state)
    with pytest.raises(RuntimeError, match="--state-init") as err:
        proc.start()
    assert "Traceback" not in str(err.value)
    assert not exp.state.exists()
    # ... unless told to.
    exporter_process("--state-init", state=exp.state).start()
    assert exp.state.exists()


async def test_replaced_state_file_is_refused(start_exporter: Start, tmp_path: Path) -> None:
    exp = await start_exporter()
    assert (await exp.post(event(1, "Initiated")))[0] == 200
    other = tmp_path / "other.db"
    SQLiteStore(other).close()
    os.replace(other, exp.state)
    assert (await exp.post(event(2, "Initiated")))[0] == 503
    assert (await exp.client.get("/readyz")).status == 503


def test_first_start_creates_the_store_in_a_new_directory(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "new" / "dir" / "state.db")
    store.close()
    assert (tmp_path / "new" / "dir" / "state.db").exists()


def test_second_process_on_one_state_file_is_refused(exporter_process: Process) -> None:
    first = exporter_process()
    first.start()
    second = exporter_process(state=first.state)
    with pytest.raises(RuntimeError) as err:
        second.start()
    assert first.proc is not None
    message = str(err.value)
    assert f"in use by process {first.proc.pid}" in message
    assert "whatever path reaches it" in message and "Traceback" not in message
    # The first one is untouched and keeps serving.
    assert first.post(event(1, "Initiated")) == (200, "accepted")


def test_foreign_sqlite_file_is_refused_untouched(tmp_path: Path,
                                                  exporter_process: Process) -> None:
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    before = path.read_bytes()
    proc = exporter_process(state=path)
    with pytest.raises(RuntimeError, match="is not a clevertap-export-exporter state database") \
            as err:
        proc.start()
    assert "Traceback" not in str(err.value)
    assert path.read_bytes() == before
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert tables == {"users"}


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreError, match="schema_version 99, written by a newer exporter"):
        SQLiteStore(path)


def test_dropped_table_is_not_recreated_silently(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    SQLiteStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE runs")
    with pytest.raises(StoreError, match=r"lacks the table\(s\) runs"):
        SQLiteStore(path)
    SQLiteStore(path, init=True).close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM runs").fetchone() == (0,)


async def _store_with_rows(path: Path) -> None:
    store = SQLiteStore(path)
    await store.commit(Changes(
        series=[SeriesRow("acme", "amazon_s3", "events", "4h", b"[null]")],
        runs=[RunRow("acme", "17", "amazon_s3", "events", "4h", 1.7e9, None, 1.7e9),
              RunRow("acme", "18", "amazon_s3", "events", "4h", 1.7e9, None, 1.7e9)],
    ))
    store.close()


async def test_corrupt_rows_are_named_and_can_be_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, exporter_process: Process,
) -> None:
    path = tmp_path / "state.db"
    await _store_with_rows(path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE runs SET started = 'garbage' WHERE export_id = '17'")
        db.execute("UPDATE series SET data = X'00FF'")
    with pytest.raises(StoreError) as err:
        SQLiteStore(path)
    message = str(err.value)
    assert "2 corrupt row(s)" in message and "--state-skip-corrupt" in message
    assert "runs ('acme', '17'): started is 'garbage', not a number" in message
    assert "series ('acme', 'amazon_s3', 'events', '4h')" in message
    # A real start-up says so in one line, not a traceback.
    proc = exporter_process(state=path)
    with pytest.raises(RuntimeError, match="corrupt row") as perr:
        proc.start()
    assert "Traceback" not in str(perr.value)

    caplog.set_level(logging.WARNING, logger="exporter.store")
    store = SQLiteStore(path, skip_corrupt=True)
    snap = store.load()
    store.close()
    assert [r.export_id for r in snap.runs] == ["18"] and snap.series == []
    assert sum("deleting corrupt row" in r.getMessage() for r in caplog.records) == 2


async def test_readyz_is_not_ready_while_every_write_fails(start_exporter: Start) -> None:
    exp = await start_exporter()
    assert (await exp.post(event(1, "Initiated")))[0] == 200
    # Triggers make every write fail inside SQLite with an operational error (a table that is
    # not there), as a full disk does.
    with sqlite3.connect(exp.state) as db:
        for table in ("runs", "meta"):
            db.execute(f"CREATE TRIGGER full_{table} BEFORE INSERT ON {table} "  # noqa: S608
                       "BEGIN INSERT INTO database_or_disk_is_full VALUES (1); END")
    assert (await exp.post(event(2, "Initiated")))[0] == 503
    assert (await exp.client.get("/readyz")).status == 503
    with sqlite3.connect(exp.state) as db:
        db.execute("DROP TRIGGER full_runs")
        db.execute("DROP TRIGGER full_meta")
    assert (await exp.client.get("/readyz")).status == 200
    assert (await exp.post(event(2, "Initiated")))[0] == 200


@pytest.mark.parametrize("reach", ["symlink", "hardlink", "lock file deleted"])
def test_a_second_store_on_the_same_file_is_refused_by_any_path(tmp_path: Path,
                                                               reach: str) -> None:
    first = SQLiteStore(tmp_path / "state.db")
    try:
        other = tmp_path / "other.db"
        if reach == "symlink":
            other.symlink_to(first.path)
        elif reach == "hardlink":
            os.link(first.path, other)
        else:
            Path(f"{first.path}.lock").unlink()
            other = first.path
        with pytest.raises(StoreError, match=f"in use by (process {os.getpid()}|another)"):
            SQLiteStore(other)
    finally:
        first.close()
    SQLiteStore(tmp_path / "state.db").close()  # released with the first store


@pytest.mark.parametrize("damage", ["deleted", "replaced", "truncated"])
async def test_a_lost_write_ahead_log_answers_503_and_logs_once(
        start_exporter: Start, caplog: pytest.LogCaptureFixture, damage: str) -> None:
    exp = await start_exporter()
    assert (await exp.post(event(1, "Initiated")))[0] == 200
    wal = Path(f"{exp.state}-wal")
    if damage == "deleted":
        wal.unlink()
    elif damage == "truncated":  # `: > state.db-wal`: SQLite writes on at its offsets
        os.truncate(wal, 0)
    else:
        replacement = wal.with_name("other-wal")
        replacement.write_bytes(wal.read_bytes())
        os.replace(replacement, wal)
    caplog.set_level(logging.ERROR, logger="exporter.store.sqlite")
    for i in (2, 3, 4):
        status, answer = await exp.post(event(i, "Initiated"))
        assert (status, answer["status"]) == (503, "unavailable")
    assert (await exp.client.get("/readyz")).status == 503
    lost = [r for r in caplog.records if r.name == "exporter.store.sqlite"]
    assert len(lost) == 1 and lost[0].levelno == logging.ERROR
    assert f"write-ahead log state.db-wal {damage}" in lost[0].getMessage()


def test_what_was_acknowledged_before_an_idle_second_survives_a_cut_log_and_kill(
        exporter_process: Process) -> None:
    proc = exporter_process()
    proc.start()
    assert all(proc.post(event(i, "Initiated"))[0] == 200 for i in range(1, 21))
    assert proc.state is not None and proc.proc is not None
    wal = Path(f"{proc.state}-wal")
    copy = proc.state.with_name("copy.db")  # the database file alone, as a cut log leaves it

    def in_database_file() -> int:
        shutil.copyfile(proc.state, copy)  # type: ignore[arg-type]
        with contextlib.closing(sqlite3.connect(copy)) as db:
            try:
                return int(db.execute("SELECT count(*) FROM runs").fetchone()[0])
            except sqlite3.DatabaseError:  # copied in the middle of a checkpoint
                return 0

    deadline = time.monotonic() + 10
    while in_database_file() < 20 and time.monotonic() < deadline:
        time.sleep(0.2)  # the writer checkpoints once idle for IDLE_CHECKPOINT_SECONDS
    assert in_database_file() == 20
    os.truncate(wal, 0)
    os.kill(proc.proc.pid, signal.SIGKILL)
    proc.proc.wait()
    store = SQLiteStore(proc.state)
    try:
        assert {int(r.export_id) for r in store.load().runs} == set(range(1, 21))
    finally:
        store.close()


@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_nothing_is_acknowledged_after_the_log_is_lost_and_the_process_killed(
        exporter_process: Process, damage: str) -> None:
    proc = exporter_process()
    proc.start()

    def accepted(i: int) -> bool:
        try:
            return proc.post(event(i, "Initiated"))[0] == 200
        except urllib.error.HTTPError as exc:
            assert exc.code == 503
            return False

    acked = [i for i in range(1, 21) if accepted(i)]
    wal = Path(f"{proc.state}-wal")
    if damage == "deleted":
        wal.unlink()
    else:
        os.truncate(wal, 0)
    acked += [i for i in range(21, 61) if accepted(i)]
    assert proc.proc is not None and proc.state is not None
    os.kill(proc.proc.pid, signal.SIGKILL)
    proc.proc.wait()
    store = SQLiteStore(proc.state)
    try:
        stored = {int(r.export_id) for r in store.load().runs}
    finally:
        store.close()
    assert acked == list(range(1, 21))  # nothing acknowledged after the log was lost ...
    if damage == "deleted":  # ... and what was before is on disk (checkpointed from the log)
        assert set(acked) <= stored
    # A log cut in place took what it held since the last checkpoint with it; SQLite ignores
    # it, and the state file opens.
