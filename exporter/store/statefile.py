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
from typing import IO, Final

import orjson

from exporter.store.base import StoreError

#: Files beside the database that prove one existed there.
TRACES: Final = ("-wal", "-shm", ".lock")
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
}
#: Key columns are text except these.
_NUMERIC_KEYS: Final = frozenset({("deliveries", "event_time")})


def identity(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


def traces(path: Path) -> list[str]:
    return [f"{path.name}{s}" for s in TRACES if Path(f"{path}{s}").exists()]


def tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def acquire_lock(lock_path: Path, db: Path) -> IO[str]:
    """Hold an exclusive OS lock on ``lock_path`` (released when the process ends), with this
    process's pid in it; refuses when another process holds it."""
    fh = open(lock_path, "a+")  # held for the process's lifetime
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        pid = fh.read().strip()
        fh.close()
        holder = f"process {pid}" if pid.isdigit() else "another process"
        raise StoreError(
            f"state database {db} is in use by {holder}, which holds the lock {lock_path}: "
            "two exporters must not share one state file (stop the other one, or give this "
            "one its own --state-path)") from None
    except OSError:
        fh.close()
        raise
    fh.seek(0)
    fh.truncate()
    fh.write(f"{os.getpid()}\n")
    fh.flush()
    return fh


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
