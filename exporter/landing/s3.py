"""S3 and S3-compatible stores, listed with aiobotocore (``pip install '...[s3]'``).

Credentials: ``EXPORTER_S3_ACCESS_KEY_ID`` with ``EXPORTER_S3_SECRET_ACCESS_KEY`` (or its
``_FILE``) when set, else AWS's default chain: the ``AWS_*`` variables, the shared profile,
web identity (EKS, ``AWS_WEB_IDENTITY_TOKEN_FILE``), then the instance's role. The listing
needs ``s3:ListBucket`` only (docs/landing.md).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING, Final

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from exporter.domain.destination import Destination
from exporter.domain.landing import Outcome
from exporter.landing.credentials import secret
from exporter.landing.lister import ListingError, ObjectInfo, Page

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

_DENIED: Final = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
                            "ExpiredToken", "InvalidToken", "AllAccessDisabled", "403"})
_MISSING: Final = frozenset({"NoSuchBucket", "404"})


class S3Lister:
    def __init__(self, destination: Destination, env: Mapping[str, str]) -> None:
        # None for both: botocore's default chain.
        key_id = env.get("EXPORTER_S3_ACCESS_KEY_ID") or None
        key = secret(env, "S3_SECRET_ACCESS_KEY") if key_id else None
        config = AioConfig(connect_timeout=10, read_timeout=30,
                           retries={"max_attempts": 1, "mode": "standard"},
                           # An endpoint (MinIO, an emulator) is addressed by path.
                           s3={"addressing_style": "path" if destination.endpoint else "auto"})
        self._context = get_session().create_client(
            "s3", region_name=destination.region, endpoint_url=destination.endpoint,
            config=config, aws_access_key_id=key_id, aws_secret_access_key=key)
        self._client: S3Client | None = None

    async def pages(self, bucket: str, prefix: str, page_size: int) -> AsyncGenerator[Page, None]:
        if self._client is None:
            self._client = await self._context.__aenter__()
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            async for page in paginator.paginate(Bucket=bucket, Prefix=prefix,
                                                 PaginationConfig={"PageSize": page_size}):
                yield Page([ObjectInfo(o["Key"], o["Size"], o["LastModified"].timestamp())
                            for o in page.get("Contents", ())], page.get("IsTruncated", False))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            detail = f"{code}: {error.get('Message', '')}".rstrip(": ")
            if code in _DENIED:
                raise ListingError(Outcome.CANNOT_LIST_PERMISSION, detail) from None
            if code in _MISSING:
                raise ListingError(Outcome.NOT_FOUND, detail) from None
            raise ListingError(Outcome.ERROR, detail) from None
        except NoCredentialsError as exc:
            raise ListingError(Outcome.CANNOT_LIST_PERMISSION, str(exc)) from None
        except BotoCoreError as exc:
            raise ListingError(Outcome.ERROR, str(exc)) from None

    async def close(self) -> None:
        if self._client is not None:
            await self._context.__aexit__(None, None, None)
            self._client = None
