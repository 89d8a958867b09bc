"""State backends behind one interface (``base.Store``): ``sqlite``, the embedded default."""

from __future__ import annotations

from pathlib import Path

from exporter.store.base import Store, StoreError
from exporter.store.sqlite import SQLiteStore

__all__ = ["Store", "StoreError", "open_store"]


def open_store(path: Path) -> Store:
    """The state store for the ``--state-path`` file."""
    return SQLiteStore(path)
