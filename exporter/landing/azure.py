"""Azure Blob Storage, listed with azure-storage-blob's aio client (``pip install '...[azure]'``).

Credentials, the first set: ``EXPORTER_AZURE_STORAGE_CONNECTION_STRING``, a SAS token
``EXPORTER_AZURE_STORAGE_SAS_TOKEN`` (with the List permission, ``sp=l``), the account key
``EXPORTER_AZURE_STORAGE_KEY`` (each also as ``_FILE``), else ``DefaultAzureCredential``
(azure-identity: the ``AZURE_*`` service principal variables, workload identity, managed
identity, the Azure CLI's login). An ``endpoint`` replaces
``https://ACCOUNT.blob.core.windows.net`` (Azurite: ``http://127.0.0.1:10000/devstoreaccount1``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import Any, Final, cast

from azure.core.async_paging import AsyncPageIterator
from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobProperties
from azure.storage.blob.aio import BlobServiceClient

from exporter.domain.destination import Destination
from exporter.domain.landing import Outcome
from exporter.landing.credentials import secret
from exporter.landing.lister import ListingError, ObjectInfo, Page

#: The check retries with its own backoff; the client tries once, within these timeouts.
_CLIENT: Final[dict[str, Any]] = {"retry_total": 0, "connection_timeout": 10,
                                   "read_timeout": 30}


class AzureLister:
    def __init__(self, destination: Destination, env: Mapping[str, str]) -> None:
        account = destination.account or ""
        url = destination.endpoint or f"https://{account}.blob.core.windows.net"
        self._identity: Any = None
        connection = secret(env, "AZURE_STORAGE_CONNECTION_STRING")
        if connection:
            self._client = BlobServiceClient.from_connection_string(connection, **_CLIENT)
            return
        credential: Any
        if sas := secret(env, "AZURE_STORAGE_SAS_TOKEN"):
            credential = AzureSasCredential(sas.lstrip("?"))
        elif key := secret(env, "AZURE_STORAGE_KEY"):
            credential = AzureNamedKeyCredential(account, key)
        else:
            from azure.identity.aio import DefaultAzureCredential

            credential = self._identity = DefaultAzureCredential()
        self._client = BlobServiceClient(url, credential=credential, **_CLIENT)

    async def pages(self, bucket: str, prefix: str, page_size: int) -> AsyncGenerator[Page, None]:
        container = self._client.get_container_client(bucket)
        try:
            # by_page's type hides the continuation token the page iterator has.
            listing = cast(AsyncPageIterator[BlobProperties], container.list_blobs(
                name_starts_with=prefix, results_per_page=page_size).by_page())
            async for page in listing:
                objects = [ObjectInfo(b.name, b.size or 0, b.last_modified.timestamp())
                           async for b in page]
                yield Page(objects, bool(listing.continuation_token))
        except ResourceNotFoundError as exc:
            raise ListingError(Outcome.NOT_FOUND, _detail(exc)) from None
        except ClientAuthenticationError as exc:
            raise ListingError(Outcome.CANNOT_LIST_PERMISSION, _detail(exc)) from None
        except HttpResponseError as exc:
            outcome = (Outcome.CANNOT_LIST_PERMISSION if exc.status_code in (401, 403)
                       else Outcome.NOT_FOUND if exc.status_code == 404 else Outcome.ERROR)
            raise ListingError(outcome, _detail(exc)) from None
        except AzureError as exc:
            raise ListingError(Outcome.ERROR, _detail(exc)) from None

    async def close(self) -> None:
        await self._client.close()
        if self._identity is not None:
            await self._identity.close()


def _detail(exc: AzureError) -> str:
    """The error code and the first line of the message (the rest repeats the request)."""
    code = getattr(exc, "error_code", None)
    code = getattr(code, "value", code)  # an enum member, or the code as sent
    first = str(exc.message or exc.__class__.__name__).splitlines()[0][:300]
    return f"{code}: {first}" if code else first
