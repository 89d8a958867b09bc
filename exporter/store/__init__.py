"""State backends behind one interface (``base.Store``): ``sqlite``, the embedded default."""

from __future__ import annotations

from pathlib import Path

from exporter.store.base import Store, StoreError
from exporter.store.sqlite import SQLiteStore

__all__ = ["Store", "StoreError", "open_store"]


def open_store(path: Path, *, init: bool = False, skip_corrupt: bool = False) -> Store:
    """The state store for ``--state-path``, ``--state-init`` and ``--state-skip-corrupt``."""
    return SQLiteStore(path, init=init, skip_corrupt=skip_corrupt)
