"""Google Cloud Storage, listed with gcloud-aio-storage (``pip install '...[gcs]'``).

Credentials: Application Default Credentials: ``GOOGLE_APPLICATION_CREDENTIALS`` (a service
account key or workload identity federation file), else gcloud's ADC file, else the metadata
server (GKE workload identity, GCE). An ``endpoint`` (or ``STORAGE_EMULATOR_HOST``) is an
emulator, which takes no token. The listing needs ``storage.objects.list`` only
(docs/landing.md).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from datetime import datetime
from typing import Any, Final

import aiohttp
from gcloud.aio.storage import Storage

from exporter.domain.destination import Destination
from exporter.domain.landing import Outcome
from exporter.landing.lister import ListingError, ObjectInfo, Page

_TIMEOUT: Final = 30
#: Only what the check reads: smaller answers for large listings.
_FIELDS: Final = "items(name,size,updated),nextPageToken"


class GcsLister:
    def __init__(self, destination: Destination, env: Mapping[str, str]) -> None:
        self._endpoint = destination.endpoint
        self._storage: Storage | None = None

    async def pages(self, bucket: str, prefix: str, page_size: int) -> AsyncGenerator[Page, None]:
        storage = self._open()
        params = {"prefix": prefix, "maxResults": str(page_size), "fields": _FIELDS}
        while True:
            data = await _list(storage, bucket, params)
            token = data.get("nextPageToken")
            yield Page([ObjectInfo(o["name"], int(o.get("size", 0)), _epoch(o["updated"]))
                        for o in data.get("items", ())], bool(token))
            if not token:
                return
            params["pageToken"] = str(token)

    def _open(self) -> Storage:
        if self._storage is None:
            self._storage = Storage(api_root=self._endpoint)
        return self._storage

    async def close(self) -> None:
        if self._storage is not None:
            await self._storage.close()
        self._storage = None


async def _list(storage: Storage, bucket: str, params: dict[str, str]) -> dict[str, Any]:
    try:
        return await storage.list_objects(bucket, params=dict(params), timeout=_TIMEOUT)
    except aiohttp.ClientResponseError as exc:
        detail = f"HTTP {exc.status}: {exc.message}"[:300]
        if exc.status in (401, 403):
            raise ListingError(Outcome.CANNOT_LIST_PERMISSION, detail) from None
        if exc.status == 404:
            raise ListingError(Outcome.NOT_FOUND, detail) from None
        raise ListingError(Outcome.ERROR, detail) from None
    except (aiohttp.ClientError, ValueError, KeyError) as exc:
        # ValueError, KeyError: an answer that is not the listing (or no credentials found).
        raise ListingError(Outcome.ERROR, f"{exc.__class__.__name__}: {exc}") from None


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
