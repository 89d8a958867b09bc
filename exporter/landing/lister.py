"""The interface a store's lister implements, and the bounded tally of one listing.

A lister yields pages of (name, size, modified time) and says whether more follow; ``tally``
counts the pages a matching rule accepts and keeps nothing else, so a prefix holding a
million objects costs one page of memory. The bound (pages and seconds) ends a long listing
as ``truncated``; a store that gives no first page within the bound is an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from exporter.domain.destination import Destination, StoreKind
from exporter.domain.landing import Outcome


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    name: str
    size: int
    #: Epoch seconds.
    modified: float


@dataclass(frozen=True, slots=True)
class Page:
    objects: Sequence[ObjectInfo]
    #: The store has more objects under the prefix after this page.
    more: bool


class ListingError(Exception):
    """A listing the store refused or could not answer; ``detail`` carries no secret."""

    def __init__(self, outcome: Outcome, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail


class Lister(Protocol):
    """Lists one store's objects; one instance per client (credentials, endpoint)."""

    def pages(self, bucket: str, prefix: str, page_size: int) -> AsyncGenerator[Page, None]:
        """The objects whose names start with ``prefix``, in pages of at most ``page_size``;
        raises ``ListingError``."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Bound:
    """How much of a listing one attempt may take."""

    pages: int = 1000
    seconds: float = 60.0
    page_size: int = 1000


@dataclass(frozen=True, slots=True)
class Tally:
    objects: int
    bytes: int
    newest: float | None
    pages: int
    truncated: bool


async def tally(lister: Lister, bucket: str, prefix: str, bound: Bound,
                accept: Callable[[ObjectInfo], bool]) -> Tally:
    """Count the accepted objects under ``prefix`` within ``bound``; raises ``ListingError``."""
    objects = size = pages = 0
    newest: float | None = None
    more = False
    try:
        async with asyncio.timeout(bound.seconds):
            async with contextlib.aclosing(lister.pages(bucket, prefix, bound.page_size)) as it:
                async for page in it:
                    pages += 1
                    more = page.more
                    for o in page.objects:
                        if accept(o):
                            objects += 1
                            size += o.size
                            newest = o.modified if newest is None else max(newest, o.modified)
                    if not more or pages >= bound.pages:
                        break
    except TimeoutError:
        if pages == 0:
            raise ListingError(Outcome.ERROR, f"no answer within {bound.seconds:g}s") from None
        more = True
    return Tally(objects, size, newest, pages, more)


ListerFactory = Callable[[Destination], Lister]

#: The module of each store's lister, with the client library it imports.
_MODULES: Final = {StoreKind.S3: "exporter.landing.s3", StoreKind.GCS: "exporter.landing.gcs",
                   StoreKind.AZURE: "exporter.landing.azure"}


def preload(kinds: Iterable[StoreKind]) -> None:
    """Import the client libraries of ``kinds`` (botocore's takes a second of CPU): run in a
    thread before the first check of a kind (at start, or after a reload that adds it), so that
    check does not stall the event loop with it. A library not installed is left for
    ``open_lister`` to report."""
    for kind in kinds:
        with contextlib.suppress(ModuleNotFoundError):
            importlib.import_module(_MODULES[kind])


def open_lister(destination: Destination, env: Mapping[str, str]) -> Lister:
    """A lister for ``destination``'s store; the store's client library is imported here, so
    a server without a destination of that kind never loads it. Raises ``ListingError`` when
    the library is not installed, ``credentials.SecretError`` for an unreadable secret file."""
    kind = destination.kind
    try:
        if kind is StoreKind.S3:
            from exporter.landing.s3 import S3Lister

            return S3Lister(destination, env)
        if kind is StoreKind.GCS:
            from exporter.landing.gcs import GcsLister

            return GcsLister(destination, env)
        from exporter.landing.azure import AzureLister

        return AzureLister(destination, env)
    except ModuleNotFoundError as exc:
        raise ListingError(Outcome.ERROR, f"{exc.name} is not installed: pip install "
                           f"'clevertap-export-exporter[{kind.value}]'") from None
