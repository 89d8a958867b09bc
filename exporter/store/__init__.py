"""State backends behind one interface (``base.Store``): ``sqlite``, the embedded default for one
process, and ``postgres``, shared by several replicas.

Other layers may use the names in ``__all__``: the server opens a store with ``open_store``; the
domain writes through ``base`` (the interface and its rows). The backends and their helpers are
internal: the ``protected`` contract in pyproject.toml keeps them so.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from exporter.store.base import Refused, Store, StoreError, describe
from exporter.store.sqlite import SQLiteStore

__all__ = ["Refused", "Store", "StoreError", "base", "describe", "open_store"]


@contextlib.asynccontextmanager
async def open_store(path: Path, url: str | None = None, *, init: bool = False,
                     skip_corrupt: bool = False) -> AsyncIterator[Store]:
    """The state store: PostgreSQL at ``url`` when given, else the SQLite file at ``path``
    (``init`` and ``skip_corrupt``: ``--state-init``, ``--state-skip-corrupt``)."""
    if url is None:
        sqlite = SQLiteStore(path, init=init, skip_corrupt=skip_corrupt)
        try:
            yield sqlite
        finally:
            sqlite.close()
        return
    # Imported here: asyncpg is loaded only by the exporters that use PostgreSQL.
    from exporter.store.postgres import PostgresStore

    postgres = await PostgresStore.open(url)
    try:
        yield postgres
    finally:
        await postgres.close()
