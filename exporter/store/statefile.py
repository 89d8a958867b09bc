"""The SQLite state file's guards: its lock, its identity, and rows of the wrong type.

``sqlite.SQLiteStore`` uses them to refuse, rather than lose or mix up state: a second process
on the file, a file replaced under it, and rows it cannot read.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import orjson

from exporter.store.base import StoreError

#: Files beside the database that prove one existed there.
TRACES: Final = ("-wal", "-shm", ".lock")
#: The first four bytes of a write-ahead log SQLite wrote (either byte order of checksums).
_WAL_MAGIC: Final = (bytes.fromhex("377f0682"), bytes.fromhex("377f0683"))
#: What ``wal_problem`` says of a log cut in place (the one problem a checkpoint cannot mend).
WAL_TRUNCATED: Final = "truncated or overwritten"
Corrupt = tuple[str, tuple[object, ...], str]  # table, key, what is wrong

#: Per table: its key columns, then the other columns, each with the types SQLite may hold in
#: it ("number" is REAL or INTEGER; a trailing "?" allows NULL; "json" is a JSON array blob).
_COLUMNS: Final[dict[str, tuple[tuple[str, ...], tuple[tuple[str, str], ...]]]] = {
    "series": (("account", "partner", "export_type", "frequency"), (("data", "json"),)),
    "runs": (("account", "export_id"), (
        ("partner", "text"), ("export_type", "text"), ("frequency", "text"),
        ("started", "number?"), ("last_finished", "number?"), ("updated", "number"))),
    "deliveries": (("account", "export_id", "status", "event_time"), (("received", "number"),)),
    "label_values": (("label", "value"), ()),
    "gauges": (("key",), (("value", "number"),)),
    "checks": (("account", "export_id", "started"), (
        ("partner", "text"), ("export_type", "text"), ("frequency", "text"),
        ("completed", "number"))),
}
#: Key columns are text except these.
_NUMERIC_KEYS: Final = frozenset({("deliveries", "event_time"), ("checks", "started")})


def identity(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


def wal_path(db: Path) -> Path:
    return Path(f"{db}-wal")


def wal_problem(db: Path, opened: tuple[int, int]) -> str | None:
    """What is wrong with the write-ahead log of ``db`` that was ``opened``, or None.

    SQLite keeps writing to a log deleted or replaced under it (the old inode), and to a log
    cut in place at the offsets it had, behind a header of zeros that a restart ignores: a
    commit it reports is then in no file a restart reads. The store writes once at start-up,
    so the log exists while the store runs; it is empty only until SQLite's next write.
    """
    wal = wal_path(db)
    try:
        if identity(wal) != opened:
            return f"has had its write-ahead log {wal.name} replaced by another file"
        with open(wal, "rb") as fh:
            head = fh.read(4)
    except FileNotFoundError:
        return f"has had its write-ahead log {wal.name} deleted"
    except OSError as exc:
        return f"has a write-ahead log {wal.name} that cannot be checked ({exc})"
    if head and head not in _WAL_MAGIC:
        return f"has had its write-ahead log {wal.name} {WAL_TRUNCATED}"
    return None


def traces(path: Path) -> list[str]:
    return [f"{path.name}{s}" for s in TRACES if Path(f"{path}{s}").exists()]


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def acquire_lock(db: Path) -> int:
    """Hold an exclusive OS lock on the database file itself (created empty if missing) for the
    process's lifetime, and note this process's pid in ``<db>.lock``; refuses when another
    process holds it.

    The lock is on the file, not on a path beside it, so a second exporter reaching the same
    file through a symlink or a hard link, or after ``<db>.lock`` was deleted, is refused too.
    It is an ``flock``, which SQLite's own byte-range locks do not see. The descriptor must stay
    open until the database is closed: closing any descriptor of the file would drop SQLite's
    POSIX locks of this process.
    """
    fd = os.open(db, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    note = Path(f"{db}.lock")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        try:
            pid = note.read_text().strip()
        except OSError:
            pid = ""
        holder = f"process {pid}" if pid.isdigit() else "another process"
        raise StoreError(
            f"state database {db} is in use by {holder}, which holds its lock: two exporters "
            "must not share one state file, whatever path reaches it (stop the other one, or "
            "give this one its own --state-path)") from None
    except OSError:
        os.close(fd)
        raise
    try:
        note.write_text(f"{os.getpid()}\n")
    except OSError:
        os.close(fd)
        raise
    return fd


def key_columns(table: str) -> tuple[str, ...]:
    return _COLUMNS[table][0]


def corrupt_rows(conn: sqlite3.Connection) -> Iterator[Corrupt]:
    """Rows whose values do not have the types of their columns."""
    for table, (keys, others) in _COLUMNS.items():
        columns = [*keys, *(c for c, _ in others)]
        kinds = [("number" if (table, k) in _NUMERIC_KEYS else "text") for k in keys]
        kinds += [kind for _, kind in others]
        sql = f"SELECT {', '.join(columns)} FROM {table}"  # noqa: S608
        for row in conn.execute(sql):
            for column, kind, value in zip(columns, kinds, row, strict=True):
                why = _type_problem(kind, value)
                if why is not None:
                    yield table, tuple(row[: len(keys)]), f"{column} {why}"
                    break


def _type_problem(kind: str, value: object) -> str | None:
    if value is None:
        return None if kind.endswith("?") else "is NULL"
    kind = kind.rstrip("?")
    if kind == "text":
        return None if isinstance(value, str) else f"is {value!r}, not text"
    if kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return None if ok else f"is {value!r}, not a number"
    try:
        ok = isinstance(value, bytes) and isinstance(orjson.loads(value), list)
    except orjson.JSONDecodeError:
        ok = False
    return None if ok else "is not the series' JSON encoding"
