"""The SQLite file's guards on its identity: the lock follows the file, not a path, and a
write-ahead log removed or cut while running stops every acknowledgement."""

from __future__ import annotations

import logging
import os
import signal
import urllib.error
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from exporter.store import StoreError
from exporter.store.sqlite import SQLiteStore
from tests.conftest import Exporter, ExporterProcess, event

Start = Callable[..., Awaitable[Exporter]]
Process = Callable[..., ExporterProcess]


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


@pytest.mark.parametrize("damage", ["deleted", "truncated"])
async def test_a_lost_write_ahead_log_answers_503_and_logs_once(
        start_exporter: Start, caplog: pytest.LogCaptureFixture, damage: str) -> None:
    exp = await start_exporter()
    assert (await exp.post(event(1, "Initiated")))[0] == 200
    wal = Path(f"{exp.state}-wal")
    if damage == "deleted":
        wal.unlink()
    else:
        os.truncate(wal, 0)
    caplog.set_level(logging.ERROR, logger="exporter.store.sqlite")
    for i in (2, 3, 4):
        status, answer = await exp.post(event(i, "Initiated"))
        assert (status, answer["status"]) == (503, "unavailable")
    assert (await exp.client.get("/readyz")).status == 503
    lost = [r for r in caplog.records if r.name == "exporter.store.sqlite"]
    assert len(lost) == 1 and lost[0].levelno == logging.ERROR
    assert f"write-ahead log state.db-wal {damage}" in lost[0].getMessage()


def test_no_acknowledged_event_is_lost_when_the_log_is_deleted_and_the_process_killed(
        exporter_process: Process) -> None:
    proc = exporter_process()
    proc.start()

    def accepted(i: int) -> bool:
        try:
            return proc.post(event(i, "Initiated"))[0] == 200
        except urllib.error.HTTPError as exc:
            assert exc.code == 503
            return False

    acked = [i for i in range(1, 21) if accepted(i)]
    Path(f"{proc.state}-wal").unlink()
    acked += [i for i in range(21, 61) if accepted(i)]
    assert proc.proc is not None and proc.state is not None
    os.kill(proc.proc.pid, signal.SIGKILL)
    proc.proc.wait()
    store = SQLiteStore(proc.state)
    try:
        stored = {int(r.export_id) for r in store.load().runs}
    finally:
        store.close()
    assert acked == list(range(1, 21))  # nothing acknowledged after the log was gone ...
    assert set(acked) <= stored  # ... and everything acknowledged before it is on disk
