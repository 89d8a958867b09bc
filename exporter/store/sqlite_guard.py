"""Whether the SQLite state file and its write-ahead log are still the ones the store opened.

SQLite keeps writing to a file or log deleted or replaced under it (the old inode), and to a
log cut in place behind a header of zeros: a commit it then reports is in no file a restart
reads. The guard compares device and inode (and the log's header) before and after every
commit and readiness probe, refuses every write once either is lost, and copies into the
database file what is safe to copy: a lost log's committed frames at once, a good log's after
each idle second.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Final

from exporter.store import statefile
from exporter.store.base import StoreError

log = logging.getLogger("exporter.store.sqlite")  # the store's own lines, as before

_WAL_HEADER_BYTES: Final = 32


class FileGuard:
    """The identity of a state file and its log at ``path``, opened on ``conn``."""

    def __init__(self, path: Path, conn: sqlite3.Connection, conn_lock: threading.Lock,
                 identity: tuple[int, int]) -> None:
        self.path = path
        self._conn = conn
        self._conn_lock = conn_lock
        self._identity = identity
        self._wal_identity = statefile.identity(statefile.wal_path(path))
        #: Why the file at the path is no longer ours, once it is not.
        self.lost: str | None = None
        self._lost_lock = threading.Lock()

    def intact(self) -> bool:
        """Whether the file at the path is still the database opened; logs once when not."""
        if self.lost is not None:
            return False
        try:
            now = statefile.identity(self.path)
        except FileNotFoundError:
            problem = "was deleted"
        except OSError as exc:
            problem = f"cannot be checked ({exc})"
        else:
            wal = statefile.wal_problem(self.path, self._wal_identity)
            if now == self._identity and wal is None:
                return True
            problem = "was replaced by another file" if wal is None else wal
            # A checkpoint copies a lost log's frames into the intact file; frames cut off in
            # place would be copied as zeros, so those are left for the restart to ignore.
            if wal is not None and now == self._identity and statefile.WAL_TRUNCATED not in wal:
                problem += self._rescue()
        with self._lost_lock:
            if self.lost is None:
                self.lost = (f"the state database {self.path} {problem} while the exporter "
                             "was running; refusing every write (restore the file and "
                             "restart)")
                log.error("%s", self.lost)
        return False

    def checkpoint(self) -> None:
        """What is acknowledged, in the database file itself: a log deleted, cut or damaged
        later then takes nothing acknowledged with it (at the usual load, a webhook every few
        hours, its changes reach the file a second later, not 1,000 pages later). Only from a
        log known good, since a checkpoint copies whatever the log's frames hold."""
        with contextlib.suppress(OSError):  # a log emptied under a commit is a cut one
            if (self.intact()
                    and statefile.wal_path(self.path).stat().st_size >= _WAL_HEADER_BYTES):
                with contextlib.suppress(sqlite3.Error), self._conn_lock:
                    self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _rescue(self) -> str:
        """Copy what this connection committed to a lost write-ahead log into the database
        file, which is intact, so that acknowledged changes survive the restart; says how it
        went. The open connection still reads the log's frames (a deleted log's inode, or the
        log replaced), where a new connection would not."""
        try:
            with self._conn_lock:
                busy, _, _ = self._conn.execute("PRAGMA wal_checkpoint(FULL)").fetchone()
        except sqlite3.Error as exc:
            return f" (its committed changes could not be copied into the database: {exc})"
        if busy:
            return " (a reader kept its committed changes from being copied into the database)"
        return " (its committed changes were copied into the database file)"


def lost_error() -> StoreError:
    return StoreError("state store write refused: the state database file is no longer the "
                      "one opened (logged when detected)")
